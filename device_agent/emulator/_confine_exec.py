"""Run one command confined: ``python -I -S _confine_exec.py SPEC_JSON -- ARGV…`` (standard library only).

The emulated device starts every real process (pushed executables, its benchmark_model) through
this file, run by path with ``-I -S`` so that nothing in the environment or the sandbox can change
what it imports. SPEC (JSON, made by ``confine.Confinement``) says:

``mode``
    ``namespaces`` (the device runs as root): a private mount and PID namespace, a new root that
    holds read-only binds of the system folders and the agent's install, the sandbox read-write,
    a fresh /proc and a minimal /dev; the command runs as ``uid``/``gid`` (the device's shell user).
    ``userns`` (not root, user namespaces allowed): the same inside a user namespace, where the
    command runs as ``uid`` mapped onto the real user, without capabilities.
    ``none``: resource limits only.
``limits``
    ``cpu_s`` (CPU seconds of the whole command, children included, counted by the namespace's
    init; RLIMIT_CPU per process in mode none), ``as`` (RLIMIT_AS, 0: none), ``fsize``, ``nproc``.
``ro``, ``rw``, ``cwd``
    Host paths to bind read-only and read-write, and the folder to start in.

With a namespace this process forks the namespace's init, which forks the command, reaps orphans,
enforces the CPU budget over the whole tree and, when the command ends, kills what is left (a
fork bomb dies with its namespace). The exit status is the command's (128 + N for signal N; 152,
SIGXCPU's, when the CPU budget ran out). A setup failure exits 125 with one line on stderr.
With ``probe`` in SPEC it sets everything up, runs nothing and exits 0.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
ST_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME,
            4096: MS_RELATIME}
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
SETUP_FAILED = 125
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/sys")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


class SetupError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)} (errno {errno.errorcode.get(err, err)})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
           f"mount {source or fstype} on {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _bind(source: str, target: str, *, writable: bool) -> None:
    """Bind ``source`` on ``target`` (created as a folder or an empty file), read-only unless
    ``writable``, keeping the source's nosuid/nodev/noexec (a user namespace must keep them)."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    if not writable:
        flags = os.statvfs(source).f_flag
        kept = 0
        for st_bit, ms_bit in ST_FLAGS.items():
            if flags & st_bit:
                kept |= ms_bit
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def _new_root(spec: dict, stage: str) -> None:
    """Build the command's file system under ``stage`` and chroot into it (caller is in its own
    mount namespace, as the namespace's init)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Sources are opened before the staging tmpfs can hide any of them (the sandbox may be under /tmp).
    fds = {}
    for path in [*SYSTEM_DIRS, *spec["ro"], *spec["rw"]]:
        if os.path.lexists(path) and path not in fds:
            fds[path] = os.open(path, os.O_PATH | os.O_CLOEXEC | (os.O_NOFOLLOW if os.path.islink(path) else 0))
    links = {path: os.readlink(path) for path in SYSTEM_DIRS if os.path.islink(path)}
    _mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    bound: list[str] = []
    ro = sorted({p for p in [*SYSTEM_DIRS, *spec["ro"]] if p in fds and p not in links}, key=len)
    for path in ro:
        if any(path == b or path.startswith(b.rstrip("/") + "/") for b in bound):
            continue  # already visible through a folder above it
        _bind(f"/proc/self/fd/{fds[path]}", stage + path, writable=False)
        bound.append(path)
    for path, target in links.items():
        if not os.path.lexists(stage + path):
            os.symlink(target, stage + path)
    for path in spec["rw"]:
        _bind(f"/proc/self/fd/{fds[path]}", stage + path, writable=True)
    for fd in fds.values():
        os.close(fd)
    os.makedirs(stage + "/proc", exist_ok=True)
    _mount("proc", stage + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(stage + "/dev", exist_ok=True)
    _mount("tmpfs", stage + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            _bind("/dev/" + name, f"{stage}/dev/{name}", writable=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{stage}/dev/{name}")
    _mount(None, stage + "/dev", None, MS_REMOUNT | MS_NOSUID | MS_NOEXEC | MS_RDONLY, "mode=0755,size=64k")
    _mount(None, stage, None, MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0755,size=1m")
    os.chroot(stage)
    os.chdir("/")


def _set_limits(limits: dict, nproc_base: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.get("cpu_s"):
        # The init counts the whole tree; this per-process cap (a bit above) is the backstop.
        cpu = int(limits["cpu_s"]) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    for name, key in (("as", resource.RLIMIT_AS), ("fsize", resource.RLIMIT_FSIZE)):
        if limits.get(name):
            resource.setrlimit(key, (int(limits[name]), int(limits[name])))
    if limits.get("nproc"):
        value = nproc_base + int(limits["nproc"])
        resource.setrlimit(resource.RLIMIT_NPROC, (value, value))


def _tasks_of(uid: int) -> int:
    """Tasks (threads) the real user ``uid`` runs now: RLIMIT_NPROC counts them all."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
        except (OSError, ValueError, KeyError):
            continue
    return count


def _tree_cpu_s() -> float:
    """CPU seconds of every process in this PID namespace (this init's /proc), reaped ones included."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or entry == "1":
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            continue
    times = os.times()
    return total / tick + times.children_user + times.children_system


def _status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def _exec(spec: dict, argv: list[str], drop_to: tuple[int, int] | None) -> None:
    """Become the command (never returns)."""
    try:
        if drop_to is not None:
            os.setgroups([])
            os.setgid(drop_to[1])
            os.setuid(drop_to[0])
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        os.chdir(spec["cwd"])
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.execve(argv[0], argv, os.environ)
    except OSError as e:
        message = e.strerror or str(e)
        if e.errno == errno.ENOEXEC:
            message = "Exec format error"
        sys.stderr.write(f"/system/bin/sh: {argv[0]}: can't execute: {message}\n")
        sys.stderr.flush()
        os._exit(126 if e.errno != errno.ENOENT else 127)


def _init(spec: dict, argv: list[str], drop_to: tuple[int, int] | None) -> int:
    """PID 1 of the command's namespace: run it, reap, enforce the CPU budget, clean up."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    forwarded = {}
    child = os.fork()
    if child == 0:
        _exec(spec, argv, drop_to)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        forwarded[sig] = signal.signal(sig, lambda signum, frame: os.kill(child, signum))
    budget = float(spec["limits"].get("cpu_s") or 0)
    status: int | None = None
    while status is None:
        signal.sigtimedwait({signal.SIGCHLD}, 0.2)
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid == child:
                status = _status(wait_status)
        if status is None and budget and _tree_cpu_s() > budget:
            sys.stderr.write(f"{os.path.basename(argv[0])}: CPU time limit of {budget:g} s reached "
                             "(the device's --cpu-seconds); killed\n")
            sys.stderr.flush()
            os.kill(-1, signal.SIGKILL)
            status = 128 + signal.SIGXCPU
    try:
        os.kill(-1, signal.SIGKILL)  # whatever the command left behind dies with it
    except ProcessLookupError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    return status


def run(spec: dict, argv: list[str]) -> int:
    mode = spec["mode"]
    uid, gid = os.getuid(), os.getgid()
    limits = spec["limits"]
    if mode == "none":
        _set_limits(limits, _tasks_of(uid) if limits.get("nproc") and uid != 0 else 0)
        if spec.get("probe"):
            return 0
        _exec(spec, argv, None)
    inner_uid, inner_gid = int(spec["uid"]), int(spec["gid"])
    flags = CLONE_NEWNS | CLONE_NEWPID | (CLONE_NEWUSER if mode == "userns" else 0)
    nproc_base = _tasks_of(uid) if mode == "userns" else _tasks_of(inner_uid)
    _check(_libc.unshare(flags), "unshare")
    if mode == "userns":
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{inner_uid} {uid} 1\n")
        _write("/proc/self/gid_map", f"{inner_gid} {gid} 1\n")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    init = os.fork()
    if init == 0:
        try:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
            _new_root(spec, spec["stage"])
            _set_limits(limits, nproc_base)
            if spec.get("probe"):
                os._exit(0)
            os._exit(_init(spec, argv, (inner_uid, inner_gid) if mode == "namespaces" else None))
        except SetupError as e:
            sys.stderr.write(f"emulated device: cannot confine the command: {e}\n")
            sys.stderr.flush()
            os._exit(SETUP_FAILED)
        except BaseException as e:  # never fall through into the parent's code
            sys.stderr.write(f"emulated device: cannot confine the command: {e!r}\n")
            sys.stderr.flush()
            os._exit(SETUP_FAILED)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: os.kill(init, signum))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    while True:
        try:
            _, wait_status = os.waitpid(init, 0)
            return _status(wait_status)
        except InterruptedError:
            continue


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        sys.stderr.write("usage: python -I -S _confine_exec.py SPEC_JSON -- ARGV...\n")
        return 2
    spec = json.loads(sys.argv[1])
    argv = sys.argv[3:]
    if not argv and not spec.get("probe"):
        sys.stderr.write("nothing to run\n")
        return 2
    try:
        return run(spec, argv)
    except SetupError as e:
        sys.stderr.write(f"emulated device: cannot confine the command: {e}\n")
        return SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main())
