"""Which CPU a binary is for, from its ELF header, so a wrong one is caught before it is pushed."""

from __future__ import annotations

from pathlib import Path

from host.errors import ToolError

__all__ = ["SCRIPT", "binary_abi", "KNOWN_ABIS"]

SCRIPT = "script"
"""``binary_abi`` of a ``#!`` script: it runs wherever its interpreter exists."""

KNOWN_ABIS = ("arm64-v8a", "armeabi-v7a", "x86_64", "x86", "riscv64")

# e_machine -> Android ABI (https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html)
_MACHINES = {183: "arm64-v8a", 40: "armeabi-v7a", 62: "x86_64", 3: "x86", 243: "riscv64"}


def binary_abi(path: Path) -> str:
    """The Android ABI an executable is built for, or ``SCRIPT`` for a ``#!`` script.

    Reads e_machine (offset 18, in the byte order EI_DATA gives) of the ELF header.

    Raises:
        ToolError: the file is missing, unreadable, or neither an ELF executable nor a script.
    """
    try:
        with path.open("rb") as f:
            head = f.read(20)
    except OSError as exc:
        raise ToolError(f"cannot read benchmark binary {path}: {exc.strerror or exc}") from exc
    if head.startswith(b"#!"):
        return SCRIPT
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise ToolError(f"{path} is not a benchmark_model executable (no ELF header and no #! line)")
    order = "little" if head[5] == 1 else "big"
    machine = int.from_bytes(head[18:20], order)
    abi = _MACHINES.get(machine)
    if abi is None:
        raise ToolError(f"{path} is an ELF binary for an unsupported CPU (e_machine {machine})")
    return abi
