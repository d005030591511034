"""Errors of the QEMU userland.

    AgentError (device_agent.errors)
    └── QemuError                a QEMU userland problem (an unknown CPU, a failed run of a tool)
        ├── MissingToolError     a host tool is missing; names the Debian package that has it
        ├── MissingUserlandError no prepared userland in a folder; gives the command that prepares it
        ├── PrepareError         a preparation step failed; quotes the end of the tool's output
        ├── MirrorError          the Debian mirror cannot be reached or answered wrongly; names it and why
        └── NoSpaceError         not enough free disk for the userland; says how much it needs
"""

from __future__ import annotations

from pathlib import Path

from device_agent.errors import AgentError

__all__ = ["QemuError", "MissingToolError", "MissingUserlandError", "PrepareError", "MirrorError", "NoSpaceError"]


class QemuError(AgentError):
    pass


class MissingToolError(QemuError):
    """``tools`` maps each missing program to the Debian package that provides it."""

    def __init__(self, tools: dict[str, str], why: str) -> None:
        packages = " ".join(dict.fromkeys(tools.values()))
        names = ", ".join(f"{tool} (Debian package {package})" for tool, package in tools.items())
        super().__init__(f"{why} needs {names}: install with `apt-get install -y {packages}`")
        self.tools = tools


class MissingUserlandError(QemuError):
    def __init__(self, dest: Path, detail: str = "") -> None:
        what = f"no prepared arm64 userland in {dest}" + (f" ({detail})" if detail else "")
        super().__init__(
            f"{what}: prepare it with `lab emulator prepare --arch arm64` "
            f"or `python -m device_agent qemu prepare {dest}`"
        )
        self.dest = dest


class PrepareError(QemuError):
    """``output`` is the end of the failed tool's output."""

    def __init__(self, step: str, output: str = "") -> None:
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-3:] if line.strip())
        super().__init__(f"preparing the arm64 userland failed while {step}" + (f": {tail}" if tail else ""))
        self.output = output


class MirrorError(QemuError):
    """``mirror`` is the mirror's URL, ``reason`` what went wrong (connection refused, HTTP 404, a bad hash)."""

    def __init__(self, mirror: str, reason: str) -> None:
        super().__init__(
            f"the Debian mirror {mirror} cannot be used ({reason}): the arm64 userland is downloaded from it once; "
            f"set LAB_DEBIAN_MIRROR to another mirror, or retry when online"
        )
        self.mirror = mirror
        self.reason = reason


class NoSpaceError(QemuError):
    """``needed`` and ``free`` in bytes, for the folder ``dest``."""

    def __init__(self, dest: Path, needed: int, free: int) -> None:
        super().__init__(
            f"not enough disk space for the arm64 userland in {dest}: it needs about {needed / 1e6:,.0f} MB, "
            f"{free / 1e6:,.0f} MB are free (set LAB_QEMU_CACHE to a folder on a larger disk)"
        )
        self.dest = dest
        self.needed = needed
        self.free = free
