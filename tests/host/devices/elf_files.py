"""Tiny executables for tests: an ELF header for a given CPU, and shell-script 'binaries'."""

from __future__ import annotations

import struct
from pathlib import Path

EM_AARCH64 = 183
EM_ARM = 40
EM_X86_64 = 62


def elf_header(machine: int, bits: int = 64) -> bytes:
    """The first 64 bytes of a little-endian ELF executable for ``machine`` (enough for the check)."""
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHI", 2, machine, 1) + bytes(64 - 16 - 8)


def write_elf(path: Path, machine: int) -> Path:
    path.write_bytes(elf_header(machine) + b"\0" * 256)
    path.chmod(0o755)
    return path


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path
