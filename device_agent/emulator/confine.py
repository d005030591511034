"""How the emulated device confines the real processes its shell starts (pushed executables and its
benchmark_model): a clean environment, resource limits and, where the kernel allows it, namespaces.

=============  ==============================================================================
mode           what a command gets
=============  ==============================================================================
namespaces     the device runs as root: a private mount and PID namespace with a new root
               (system folders and the agent's install read-only, the sandbox read-write, a
               fresh /proc, a minimal /dev), run as the device's shell user (uid 2000, as
               ``adb shell`` on a phone), resource limits; the command's whole process tree
               dies with it
userns         the device runs as another user and user namespaces are allowed: the same,
               inside a user namespace (uid 2000 there, the real user outside, no capabilities)
none           resource limits and the clean environment only (no namespaces: a container
               without them, or ``--confinement none``)
=============  ==============================================================================

The mode is found once, at start, by running the real setup (``probe``) and stepping down until
one works; ``getprop ro.lab.confinement`` says which one is active, with the limits. Every
command then starts through ``_confine_exec.py`` (standard library only, run with ``-I -S``).

The environment of a command is fixed: PATH, HOME and TMPDIR (the sandbox), LANG, the runner's
own settings, and the ``NAME=value`` prefixes typed before it, except those that change how
programs load code (``LD_*``, ``PYTHON*`` and the rest of glibc's list of unsafe variables), which
are refused with a message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from device_agent.emulator import limits as L
from device_agent.emulator.sandbox import SHELL_UID

__all__ = ["Confinement", "Limits", "MODES", "HELPER", "UNSAFE_ENV_PREFIXES", "UNSAFE_ENV", "unsafe_env_name",
           "base_environment", "agent_paths"]

MODES = ("namespaces", "userns", "none")
HELPER = Path(__file__).with_name("_confine_exec.py")
UNSAFE_ENV_PREFIXES = ("LD_", "PYTHON", "DYLD_")
# glibc's "unsecure" variables (ignored for setuid programs), and shells' start-up files.
UNSAFE_ENV = frozenset({
    "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_TRACE", "NIS_PATH", "NLSPATH",
    "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR", "BASH_ENV", "ENV", "PERL5LIB", "PERL5OPT", "RUBYLIB", "RUBYOPT",
    "NODE_OPTIONS", "NODE_PATH", "GLIBC_TUNABLES",
})
_STAGE = "/tmp"  # where the namespace's new root is built (a tmpfs mounted there, in that namespace only)
_PROBE_TIMEOUT_S = 20.0


def unsafe_env_name(name: str) -> bool:
    """Whether a ``NAME=value`` prefix would change how a program loads code (refused)."""
    return name.startswith(UNSAFE_ENV_PREFIXES) or name in UNSAFE_ENV


def base_environment(sandbox_root: Path) -> dict[str, str]:
    """The environment every device process starts from (nothing of the agent's own)."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(sandbox_root),
        "TMPDIR": str(sandbox_root),
        "LANG": "C.UTF-8",
    }


def agent_paths() -> list[str]:
    """What a confined runner needs to read: this Python, its prefixes, the device agent's package."""
    import device_agent

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), os.path.dirname(sys.executable),
             str(Path(device_agent.__file__).resolve().parent)}
    return sorted(os.path.realpath(p) if os.path.isdir(os.path.realpath(p)) else p for p in paths if p)


@dataclass(frozen=True)
class Limits:
    cpu_s: int = L.DEFAULT_CPU_SECONDS
    address_space: int = L.DEFAULT_ADDRESS_SPACE  # bytes; 0: none
    file_size: int = L.DEFAULT_FILE_SIZE
    processes: int = L.DEFAULT_PROCESSES

    def spec(self, *, address_space: bool = True) -> dict[str, int]:
        return {"cpu_s": self.cpu_s, "as": self.address_space if address_space else 0,
                "fsize": self.file_size, "nproc": self.processes}

    def describe(self) -> str:
        def size(n: int) -> str:
            return f"{n // L.GiB}GiB" if n % L.GiB == 0 else f"{n // L.MiB}MiB"
        return (f"cpu={self.cpu_s}s,as={size(self.address_space) if self.address_space else 'none'},"
                f"fsize={size(self.file_size)},nproc={self.processes}")


@dataclass
class Confinement:
    mode: str
    sandbox_root: Path
    limits: Limits = field(default_factory=Limits)
    uid: int = SHELL_UID
    gid: int = SHELL_UID
    read_only: list[str] = field(default_factory=list)
    note: str = ""  # why a stronger mode was not available

    @property
    def owner(self) -> tuple[int, int] | None:
        """Who must own the sandbox's files so that commands can write there (None: the agent's user)."""
        return (self.uid, self.gid) if self.mode == "namespaces" else None

    def describe(self) -> str:
        """``ro.lab.confinement``: the active mode and limits, e.g.
        ``namespaces(mount,pid),uid=2000,rlimits(cpu=600s,as=8GiB,fsize=4GiB,nproc=256)``."""
        head = {"namespaces": f"namespaces(mount,pid),uid={self.uid}",
                "userns": f"userns(user,mount,pid),uid={self.uid}", "none": "none"}[self.mode]
        return f"{head},rlimits({self.limits.describe()})"

    def spec(self, cwd: Path, *, address_space: bool = True, probe: bool = False) -> dict:
        spec = {"mode": self.mode, "uid": self.uid, "gid": self.gid, "stage": _STAGE,
                "limits": self.limits.spec(address_space=address_space), "ro": self.read_only,
                "rw": [str(self.sandbox_root)], "cwd": str(cwd)}
        if probe:
            spec["probe"] = True
        return spec

    def command(self, argv: list[str], cwd: Path, *, address_space: bool = True) -> list[str]:
        """The argv that runs ``argv`` confined, starting in host folder ``cwd``."""
        spec = json.dumps(self.spec(cwd, address_space=address_space), separators=(",", ":"))
        return [sys.executable, "-I", "-S", str(HELPER), spec, "--", *argv]

    @classmethod
    def detect(cls, sandbox_root: Path, *, requested: str = "auto", limits: Limits | None = None,
               read_only: list[str] | None = None) -> Confinement:
        """The strongest mode that works here (``requested`` "auto"), or the one asked for.

        Raises:
            RuntimeError: a mode asked for by name does not work here (the message says why).
        """
        limits = limits or Limits()
        read_only = sorted(set(agent_paths() + list(read_only or [])))
        if requested == "auto":
            candidates = ["namespaces" if os.geteuid() == 0 else "userns", "none"]
        else:
            candidates = [requested]
        notes = []
        for mode in candidates:
            confinement = cls(mode, sandbox_root, limits, read_only=read_only)
            problem = confinement._probe()
            if problem is None:
                confinement.note = "; ".join(notes)
                return confinement
            notes.append(f"{mode}: {problem}")
            if requested != "auto":
                raise RuntimeError(f"--confinement {mode} does not work here: {problem}")
        raise RuntimeError("no confinement works here: " + "; ".join(notes))

    def _probe(self) -> str | None:
        """None when a command can be confined this way here, else what failed."""
        spec = json.dumps(self.spec(self.sandbox_root, probe=True))
        try:
            result = subprocess.run([sys.executable, "-I", "-S", str(HELPER), spec, "--"], capture_output=True,
                                    text=True, timeout=_PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL,
                                    env=base_environment(self.sandbox_root))
        except (OSError, subprocess.TimeoutExpired) as e:
            return str(e)
        if result.returncode != 0:
            return result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        return None
