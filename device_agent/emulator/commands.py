"""The emulated shell's command table: toybox-like builtins, and benchmark_model.

Each builtin takes a :class:`~device_agent.emulator.shio.Call` and returns its exit status.
Messages follow Android's toybox (``ls: /x: No such file or directory``, status 1). Everything
touches files through the sandbox only.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import platform
import posixpath
import re
import stat
import time
from typing import TYPE_CHECKING, Callable

from device_agent.facts import format_cpu_list
from device_agent.emulator.process import run_process
from device_agent.emulator.sandbox import Entry, SandboxError
from device_agent.emulator.shio import Builtin, Call, ExitShell, read_all

if TYPE_CHECKING:
    from device_agent.emulator.phone import Phone

__all__ = ["COMMANDS"]

log = logging.getLogger("device_agent.emulator")

COMMANDS: dict[str, Builtin] = {}


def _command(*names: str) -> Callable[[Builtin], Builtin]:
    def register(fn: Builtin) -> Builtin:
        for name in names:
            COMMANDS[name] = fn
        return fn

    return register


class _UsageError(Exception):
    pass


def _flags(args: list[str], allowed: str) -> tuple[set[str], list[str]]:
    """Split leading short options (``-rf`` style, up to ``--``) from operands."""
    flags: set[str] = set()
    for index, arg in enumerate(args):
        if arg == "--":
            return flags, args[index + 1:]
        if not arg.startswith("-") or arg == "-":
            return flags, args[index:]
        for letter in arg[1:]:
            if letter not in allowed:
                raise _UsageError(f"Unknown option '{letter}'")
            flags.add(letter)
    return flags, []


def _with_usage(fn: Builtin) -> Builtin:
    def run(call: Call) -> int:
        try:
            return fn(call)
        except _UsageError as e:
            return call.error(str(e))

    return run


# -- the shell's own ---------------------------------------------------------------------


@_command("true")
def _true(call: Call) -> int:
    return 0


@_command("false")
def _false(call: Call) -> int:
    return 1


@_command("exit")
def _exit(call: Call) -> int:
    if not call.args:
        raise ExitShell(call.shell.status)
    try:
        raise ExitShell(int(call.args[0]) & 0xFF)
    except ValueError:
        return call.error(f"{call.args[0]}: bad number", 2)


@_command("cd")
def _cd(call: Call) -> int:
    target = call.args[0] if call.args else "/"
    try:
        vpath = call.sandbox.normalize(target, call.cwd)
        if not call.sandbox.stat(vpath).is_dir:
            return call.error(f"{target}: Not a directory")
    except SandboxError as e:
        return call.error(f"{target}: {e.detail}")
    call.shell.cwd = vpath
    return 0


_ULIMIT_BLOCK = 512  # mksh's unit for -f (POSIX blocks)


@_command("ulimit")
def _ulimit(call: Call) -> int:
    """mksh's ``ulimit [-f] [BLOCKS|unlimited]``: the size redirections may write, in 512-byte blocks.

    The one resource limit the lab sets (the runner's output file); others are refused by name.
    """
    args = list(call.args)
    if args[:1] == ["-f"]:
        args.pop(0)
    elif args and args[0].startswith("-"):
        return call.error(f"{args[0]}: not supported on the emulated device (only -f, the file size)")
    shell = call.shell
    if not args:
        limit = shell.file_size_limit
        call.out("unlimited\n" if limit is None else f"{limit // _ULIMIT_BLOCK}\n")
        return 0
    if args[0] == "unlimited":
        shell.file_size_limit = None
    elif args[0].isdigit():
        shell.file_size_limit = int(args[0]) * _ULIMIT_BLOCK
    else:
        return call.error(f"{args[0]}: bad number")
    return 0


@_command("pwd")
def _pwd(call: Call) -> int:
    call.out(call.cwd + "\n")
    return 0


@_command("echo")
def _echo(call: Call) -> int:
    args, newline, escapes = list(call.args), True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0] or (escapes and "E" not in args[0])
        args.pop(0)
    text = " ".join(args)
    if escapes:
        text, stop = _echo_escapes(text)
        newline = newline and not stop
    call.out(text + ("\n" if newline else ""))
    return 0


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b", "\\": "\\"}


def _echo_escapes(text: str) -> tuple[str, bool]:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "c":
                return "".join(out), True
            if nxt == "0":
                digits = re.findall(r"^[0-7]{0,3}", text[i + 2:])[0]
                out.append(chr(int(digits or "0", 8)))
                i += 2 + len(digits)
                continue
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
        out.append(text[i])
        i += 1
    return "".join(out), False


@_command("sleep")
def _sleep(call: Call) -> int:
    total = 0.0
    for arg in call.args or ["?"]:
        match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", arg)
        if not match:
            return call.error(f"invalid number '{arg}'")
        total += float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    call.shell.wait(total)
    return 0


@_command("test", "[")
def _test(call: Call) -> int:
    args = list(call.args)
    if call.name == "[":
        if not args or args[-1] != "]":
            return call.error("missing ]", 2)
        args.pop()
    try:
        return 0 if _evaluate_test(call, args) else 1
    except ValueError as e:
        return call.error(str(e), 2)


def _evaluate_test(call: Call, args: list[str]) -> bool:
    if not args:
        return False
    if args[0] == "!":
        return not _evaluate_test(call, args[1:])
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, operand = args
        if op == "-z":
            return operand == ""
        if op == "-n":
            return operand != ""
        if op in ("-L", "-h"):
            link = _entry(call, operand, follow=False)
            return link is not None and stat.S_ISLNK(link.mode)
        tests: dict[str, Callable[[Entry], bool]] = {
            "-e": lambda e: True, "-f": lambda e: stat.S_ISREG(e.mode), "-d": lambda e: e.is_dir,
            "-s": lambda e: e.size > 0, "-r": lambda e: True, "-x": lambda e: bool(e.mode & 0o111),
            "-w": lambda e: call.sandbox.in_sandbox(call.sandbox.normalize(operand, call.cwd)),
        }
        if op not in tests:
            raise ValueError(f"unknown operator {op}")
        entry = _entry(call, operand)
        return entry is not None and tests[op](entry)
    if len(args) == 3:
        left, op, right = args
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        numeric = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-le": int.__le__,
                   "-gt": int.__gt__, "-ge": int.__ge__}
        if op in numeric:
            try:
                return bool(numeric[op](int(left), int(right)))
            except ValueError:
                raise ValueError(f"integer expression expected: {left} {op} {right}") from None
        raise ValueError(f"unknown operator {op}")
    raise ValueError("too many arguments")


def _entry(call: Call, path: str, follow: bool = True) -> Entry | None:
    try:
        return call.sandbox.stat(path, call.cwd, follow=follow)
    except SandboxError:
        return None


# -- device facts ----------------------------------------------------------------------------


@_command("getprop")
def _getprop(call: Call) -> int:
    props = call.shell.device.props
    if not call.args:
        call.out("".join(f"[{key}]: [{value}]\n" for key, value in sorted(props.items())))
    else:
        default = call.args[1] if len(call.args) > 1 else ""
        call.out(props.get(call.args[0], default) + "\n")
    return 0


@_command("nproc")
@_with_usage
def _nproc(call: Call) -> int:
    phone = call.shell.device.phone
    if phone is not None and "nproc" not in phone.profile.commands:
        return _not_found(call)
    if call.args and call.args != ["--all"]:
        raise _UsageError(f"Unknown option '{call.args[0]}'")
    if phone is not None:
        count = phone.profile.cpu_count if call.args or call.cpus is None else len(call.cpus)
    else:
        count = os.cpu_count() if call.args else len(os.sched_getaffinity(0))
    call.out(f"{count}\n")
    return 0


@_command("uname")
@_with_usage
def _uname(call: Call) -> int:
    flags, extra = _flags(call.args, "snrvmoa")
    if extra:
        raise _UsageError(f"Unknown argument '{extra[0]}'")
    info = platform.uname()
    fields = {"s": info.system, "n": "localhost", "r": info.release, "v": info.version,
              "m": info.machine, "o": "Toybox"}
    chosen = "snrvmo" if "a" in flags else "".join(f for f in "snrvmo" if f in flags) or "s"
    call.out(" ".join(fields[f] for f in chosen) + "\n")
    return 0


@_command("df")
@_with_usage
def _df(call: Call) -> int:
    flags, _ = _flags(call.args, "hkP")
    total, used, free = call.sandbox.disk_usage()
    percent = f"{(100 * used + total - 1) // total if total else 0}%"
    if "h" in flags:
        sizes = [_human(n) for n in (total, used, free)]
        call.out(f"Filesystem      Size  Used Avail Use% Mounted on\n/dev/block/lab {sizes[0]:>5} {sizes[1]:>5} "
                 f"{sizes[2]:>5} {percent:>4} /data\n")
    else:
        call.out("Filesystem     1K-blocks      Used Available Use% Mounted on\n"
                 f"/dev/block/lab {total // 1024:>9} {used // 1024:>9} {free // 1024:>9} {percent:>4} /data\n")
    return 0


def _human(n: int) -> str:
    value = float(n)
    for unit in "BKMGTP":
        if value < 1024 or unit == "P":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 10 else f"{value:.1f}{unit}"
        value /= 1024
    return str(n)


# -- files -------------------------------------------------------------------------------------


@_command("ls")
@_with_usage
def _ls(call: Call) -> int:
    flags, paths = _flags(call.args, "aAl1d")
    paths = paths or ["."]
    status = 0
    files: list[tuple[str, Entry]] = []
    folders: list[str] = []
    for path in paths:
        entry = None
        try:
            entry = call.sandbox.stat(path, call.cwd)
        except SandboxError as e:
            status = call.error(f"{path}: {e.detail}")
        if entry is not None:
            if entry.is_dir and "d" not in flags:
                folders.append(path)
            else:
                files.append((path, entry))
    lines = [_ls_line(name, entry, "l" in flags) for name, entry in files]
    for path in folders:
        try:
            entries = call.sandbox.listdir(path, call.cwd)
        except SandboxError as e:
            status = call.error(f"{path}: {e.detail}")
            continue
        if "a" in flags:
            here = call.sandbox.stat(path, call.cwd)
            parent = call.sandbox.stat(posixpath.dirname(call.sandbox.normalize(path, call.cwd)) or "/")
            entries = [(".", here), ("..", parent), *entries]
        elif "A" not in flags:
            entries = [(name, entry) for name, entry in entries if not name.startswith(".")]
        if len(paths) > 1:
            lines.append(("\n" if lines else "") + f"{path}:")
        lines.extend(_ls_line(name, entry, "l" in flags) for name, entry in entries)
    call.out("".join(line + "\n" for line in lines))
    return status


def _ls_line(name: str, entry: Entry, long: bool) -> str:
    if not long:
        return name
    owner = "root" if entry.uid == 0 else "shell"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime))
    return f"{stat.filemode(entry.mode)} {entry.nlink:>2} {owner:<5} {owner:<5} {entry.size:>8} {when} {name}"


@_command("cat")
def _cat(call: Call) -> int:
    status = 0
    for path in call.args or ["-"]:
        if path == "-":
            call.stdout.write(read_all(call.stdin))
            continue
        try:
            with call.sandbox.open_read(path, call.cwd) as f:
                while chunk := f.read(256 * 1024):
                    call.stdout.write(chunk)
        except SandboxError as e:
            status = call.error(f"{path}: {e.detail}")
        except OSError as e:
            status = call.error(f"{path}: {e.strerror}")
    return status


def _digest(algorithm: str) -> Builtin:
    @_with_usage
    def digest(call: Call) -> int:
        flags, paths = _flags(call.args, "b")
        brief = "b" in flags
        status = 0
        lines = []
        for path in paths or ["-"]:
            h = hashlib.new(algorithm)
            try:
                if path == "-":
                    h.update(read_all(call.stdin))
                else:
                    with call.sandbox.open_read(path, call.cwd) as f:
                        while chunk := f.read(1024 * 1024):
                            h.update(chunk)
            except SandboxError as e:
                status = call.error(f"{path}: {e.detail}")
                continue
            lines.append(h.hexdigest() if brief else f"{h.hexdigest()}  {path}")
        call.out("".join(line + "\n" for line in lines))
        return status

    return digest


COMMANDS["sha256sum"] = _digest("sha256")
COMMANDS["md5sum"] = _digest("md5")


@_command("mkdir")
def _mkdir(call: Call) -> int:
    parents, mode = False, 0o777
    paths: list[str] = []
    args = iter(call.args)
    for arg in args:
        if arg in ("-p", "--parents"):
            parents = True
        elif arg == "-m" or (arg.startswith("-m") and len(arg) > 2):
            spec = arg[2:] or next(args, "")
            if not re.fullmatch(r"[0-7]{1,4}", spec):
                return call.error(f"bad mode '{spec}'")
            mode = int(spec, 8)
        elif arg.startswith("-") and arg != "-" and not paths:
            return call.error(f"Unknown option '{arg}'")
        else:
            paths.append(arg)
    if not paths:
        return call.error("Needs 1 argument")
    status = 0
    for path in paths:
        try:
            call.sandbox.mkdir(path, call.cwd, parents=parents, mode=mode)
        except SandboxError as e:
            status = call.error(f"{path}: {e.detail}")
    return status


@_command("rm")
@_with_usage
def _rm(call: Call) -> int:
    flags, paths = _flags(call.args, "rRfdv")
    if not paths:
        return 0 if "f" in flags else call.error("Needs 1 argument")
    status = 0
    for path in paths:
        try:
            call.sandbox.remove(path, call.cwd, recursive=bool(flags & {"r", "R"}))
        except SandboxError as e:
            if not ("f" in flags and e.errno == errno.ENOENT):
                status = call.error(f"{path}: {e.detail}")
    return status


@_command("chmod")
@_with_usage
def _chmod(call: Call) -> int:
    _, operands = _flags(call.args, "")
    if len(operands) < 2:
        return call.error("Needs 2 arguments")
    spec, paths = operands[0], operands[1:]
    try:
        new_mode = _mode_change(spec)
    except ValueError:
        return call.error(f"bad mode '{spec}'")
    status = 0
    for path in paths:
        try:
            call.sandbox.chmod(path, call.cwd, new_mode)
        except SandboxError as e:
            status = call.error(f"{path}: {e.detail}")
    return status


def _mode_change(spec: str) -> Callable[[int], int]:
    """``755`` or ``u+x,go-w`` as a function of the old mode. Raises ValueError."""
    if re.fullmatch(r"[0-7]{1,4}", spec):
        mode = int(spec, 8)
        return lambda old: mode
    clauses = []
    for clause in spec.split(","):
        match = re.fullmatch(r"([ugoa]*)([-+=])([rwxX]*)", clause)
        if not match:
            raise ValueError(spec)
        clauses.append(match.groups())

    def apply(old: int) -> int:
        mode = old & 0o7777
        for who, op, perms in clauses:
            shifts = [{"u": 6, "g": 3, "o": 0}[w] for w in (who or "a").replace("a", "ugo")]
            mask = sum(0o7 << s for s in shifts)
            bits = 0
            for perm in perms:
                value = {"r": 4, "w": 2, "x": 1}.get(perm, 0)
                if perm == "X" and (stat.S_ISDIR(old) or old & 0o111):
                    value = 1
                bits |= sum(value << s for s in shifts)
            mode = mode | bits if op == "+" else mode & ~bits if op == "-" else (mode & ~mask) | bits
        return mode

    return apply


# -- the benchmark runner ---------------------------------------------------------------------


@_command("benchmark_model")
def _benchmark_model(call: Call) -> int:
    """benchmark_model on the device's PATH: the device agent's LiteRT runner (``python -m device_agent bench``),
    on this machine's CPU or, on an arm64 device, inside the arm64 userland under QEMU. On a profiled
    device it heats the phone while it runs and is padded to the speed of the cluster it runs on."""
    runner = call.shell.device.runner
    phone = call.shell.device.phone
    if phone is None:
        return run_process(call, list(runner.head), dict(runner.env), address_space=runner.address_space)
    env = {**dict(runner.env), "LAB_PHONE_CPUS": format_cpu_list(call.cpus) if call.cpus else ""}
    with phone.running(set(call.cpus) if call.cpus else None):
        return run_process(call, list(runner.head), env, address_space=runner.address_space)


# -- a phone's own commands (profiled devices only) ------------------------------------------


def _not_found(call: Call) -> int:
    call.stderr.write(f"/system/bin/sh: {call.name}: inaccessible or not found\n".encode("utf-8", "surrogateescape"))
    return 127


def _phone(call: Call) -> Phone | None:
    """The device's phone when it has command ``call.name``; None (a plain emulated device, or a
    phone whose shell lacks it)."""
    phone = call.shell.device.phone
    return phone if phone is not None and call.name in phone.profile.commands else None


@_command("taskset")
def _taskset(call: Call) -> int:
    """toybox's ``taskset MASK COMMAND [ARGS…]``: run COMMAND on the CPUs of hex MASK."""
    phone = _phone(call)
    if phone is None:
        return _not_found(call)
    args = list(call.args)
    if len(args) < 2 or args[0].startswith("-"):
        return call.error("usage: taskset MASK COMMAND [ARGS...] (only launching a command is supported here)")
    try:
        mask = int(args[0], 16)
    except ValueError:
        return call.error(f"bad mask '{args[0]}'")
    cpus = frozenset(cpu for cpu in range(phone.profile.cpu_count) if mask >> cpu & 1)
    if not cpus:
        return call.error("sched_setaffinity: Invalid argument")
    inner = Call(call.shell, args[1], args[2:], call.env, call.stdin, call.stdout, call.stderr, cpus)
    return call.shell.dispatch(inner)


@_command("dumpsys")
def _dumpsys(call: Call) -> int:
    phone = _phone(call)
    if phone is None:
        return _not_found(call)
    if not call.args:
        call.out("".join(f"  {name}\n" for name in sorted(phone.profile.services)))
        return 0
    text, status = phone.dumpsys(call.args[0])
    call.out(text)
    return status


_FIXED_PERFORMANCE = "set-fixed-performance-mode-enabled"
_FIXED_PERFORMANCE_MIN_SDK = 30  # PowerManagerShellCommand has it from Android 11


@_command("cmd")
def _cmd(call: Call) -> int:
    """``cmd power set-fixed-performance-mode-enabled true|false`` (Android 11+); other services are unknown."""
    phone = _phone(call)
    if phone is None:
        return _not_found(call)
    if not call.args or call.args[0] not in phone.profile.services:
        call.stderr.write(f"cmd: Can't find service: {call.args[0] if call.args else ''}\n".encode())
        return 20
    if call.args[0] != "power" or call.args[1:2] != [_FIXED_PERFORMANCE] or phone.profile.sdk < _FIXED_PERFORMANCE_MIN_SDK:
        call.stderr.write(f"Unknown command: {call.args[1] if len(call.args) > 1 else ''}\n".encode())
        return 255
    value = call.args[2] if len(call.args) > 2 else ""
    if value not in ("true", "false"):
        call.stderr.write(f"Error: expected true or false, got '{value}'\n".encode())
        return 255
    phone.set_fixed_performance(value == "true")
    log.info("fixed-performance mode %s", "on" if value == "true" else "off")
    return 0
