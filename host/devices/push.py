"""Putting files on a device under /data/local/tmp/lab/, skipped when the device already has them.

Models go to ``/data/local/tmp/lab/<sha256>.tflite`` and binaries to ``…/lab/bin/``, so a file's
name on the device never comes from the user; every command is still quoted with shlex.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from host.devices.errors import NoSpaceError
from host.devices.shell import DeviceShell, command_line
from host.errors import DeviceError

__all__ = [
    "REMOTE_DIR",
    "REMOTE_BIN_DIR",
    "PushItem",
    "PushResult",
    "remote_model_path",
    "remote_sha256s",
    "parse_df_available",
    "free_bytes",
    "parse_size",
    "push_files",
]

REMOTE_DIR = "/data/local/tmp/lab"
REMOTE_BIN_DIR = f"{REMOTE_DIR}/bin"
_SPACE_MARGIN_BYTES = 1 << 20
_SHA_LINE = re.compile(r"^([0-9a-f]{64})\s+\*?(.+)$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)i?B?$", re.IGNORECASE)
_MULTIPLIERS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


@dataclass(frozen=True)
class PushItem:
    """A local file, its sha256 and where it goes; ``executable`` files get ``chmod 755``."""

    local: Path
    sha256: str
    remote: str
    executable: bool = False


@dataclass(frozen=True)
class PushResult:
    remote: str
    pushed: bool  # False: the device already had it (sha256 matched)
    size_bytes: int


def remote_model_path(sha256: str) -> str:
    return f"{REMOTE_DIR}/{sha256}.tflite"


def remote_sha256s(
    shell: DeviceShell, remotes: Sequence[str], timeout: float = 60.0, mkdirs: Sequence[str] = ()
) -> dict[str, str]:
    """sha256 of each remote file that exists (one ``sha256sum`` call; missing files are left out).

    ``mkdirs`` are created (``mkdir -p``) in the same round trip, before the files are hashed.
    """
    if not remotes:
        return {}
    line = command_line(["sha256sum", *remotes])
    if mkdirs:
        line = f"{command_line(['mkdir', '-p', *mkdirs])} ; {line}"
    result = shell.run(line, timeout=timeout)
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        match = _SHA_LINE.match(line.strip())
        if match:
            found[match.group(2)] = match.group(1)
    return found


def parse_size(text: str, unit: int = 1) -> int | None:
    """Bytes of ``12``, ``9.5G``, ``16MiB`` (binary multiples; a bare number counts ``unit``s), or None."""
    match = _SIZE.match(text)
    if not match:
        return None
    number, suffix = float(match.group(1)), match.group(2).upper()
    return int(number * (_MULTIPLIERS[suffix] if suffix else unit))


def parse_df_available(text: str) -> int | None:
    """Free bytes from ``df PATH`` output, or None when it cannot be read.

    Reads toybox (``Filesystem 1K-blocks Used Available Use% Mounted on``), GNU coreutils and the
    old toolbox form (``Filesystem Size Used Free Blksize`` with ``9.5G``-style sizes).
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    header = lines[0].replace("Mounted on", "Mounted_on").split()
    column = next((i for i, name in enumerate(header) if name.lower() in ("available", "avail", "free")), None)
    if column is None:
        return None
    unit_match = re.search(r"(\d+)[Kk]-blocks", lines[0])
    unit = int(unit_match.group(1)) * 1024 if unit_match else (512 if "512-blocks" in lines[0] else 1)
    row = " ".join(lines[1:]).split()  # a long filesystem name may wrap the row
    if len(row) != len(header):
        return None
    return parse_size(row[column], unit)


def free_bytes(shell: DeviceShell, folder: str = REMOTE_DIR, timeout: float = 60.0) -> int | None:
    """Free bytes under ``folder`` on the device (``df``), or None when df cannot tell."""
    result = shell.run(["df", folder], timeout=timeout)
    return parse_df_available(result.stdout) if result.returncode == 0 else None


def _ensure_space(shell: DeviceShell, needed: int, timeout: float) -> None:
    available = free_bytes(shell, REMOTE_DIR, timeout)
    if available is not None and available < needed + _SPACE_MARGIN_BYTES:
        raise NoSpaceError(
            f"not enough space on {shell.serial}: {needed / 2**20:.1f} MiB to push and "
            f"{_SPACE_MARGIN_BYTES / 2**20:.0f} MiB kept free for outputs, {available / 2**20:.1f} MiB free under "
            f"{REMOTE_DIR}; free some space on the device",
            shell.serial,
        )


def push_files(shell: DeviceShell, items: Sequence[PushItem], timeout: float = 60.0) -> list[PushResult]:
    """Pushes what the device lacks, in order; returns one result per item.

    A file is skipped when the device's ``sha256sum`` of its target matches. Free space is checked
    (``df``) before anything is written; each pushed file is checked by sha256 afterwards.

    Raises:
        NoSpaceError: the files do not fit.
        DeviceError: a push failed or the device holds different bytes afterwards.
        DeviceGoneError, ShellTimeoutError: the device stopped answering.
    """
    directories = sorted({item.remote.rsplit("/", 1)[0] for item in items} | {REMOTE_DIR})
    have = remote_sha256s(shell, [item.remote for item in items], timeout, mkdirs=directories)
    todo = [item for item in items if have.get(item.remote) != item.sha256]
    if todo:
        _ensure_space(shell, sum(item.local.stat().st_size for item in todo), timeout)
    for item in todo:
        shell.push(item.local, item.remote, 0o755 if item.executable else 0o644)
    executables = [item.remote for item in todo if item.executable]
    if executables:
        chmod = shell.run(["chmod", "755", *executables], timeout=timeout)
        if chmod.returncode != 0:
            raise DeviceError(f"chmod 755 failed on {shell.serial}: {chmod.output.strip()}", shell.serial)
    if todo:
        after = remote_sha256s(shell, [item.remote for item in todo], timeout)
        for item in todo:
            if after.get(item.remote, item.sha256) != item.sha256:
                raise DeviceError(
                    f"{item.local.name} arrived damaged on {shell.serial}:{item.remote} (sha256 differs); retry",
                    shell.serial,
                )
    return [PushResult(item.remote, item in todo, item.local.stat().st_size) for item in items]
