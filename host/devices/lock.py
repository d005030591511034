"""One run at a time per device: a lock folder on the device itself, and a work folder per run.

Two runs sharing a device would overwrite each other's output files and perturb each other's
timings, so a run takes ``/data/local/tmp/lab/lock`` before its first trial — made with ``mkdir``,
which succeeds for exactly one caller, on a phone's toybox as on the emulated device — and writes
who holds it into ``lock/owner``. Because the lock lives on the device, runs from ``lab bench``,
``lab run`` and ``lab agent`` see it whichever host they run on (a farm, adb forwarding). A lock
left by a process of this machine that no longer exists is broken; one from another host is
broken once older than ``STALE_AFTER_S``. Each run also writes its outputs into a folder of its
own (``runs/<token>``), removed afterwards.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from host.devices.errors import DeviceBusyError
from host.errors import DeviceError
from host.devices.push import REMOTE_DIR
from host.devices.shell import DeviceShell, command_line

__all__ = ["LOCK_DIR", "STALE_AFTER_S", "device_lock", "work_dir"]

LOCK_DIR = f"{REMOTE_DIR}/lock"
STALE_AFTER_S = 24 * 3600.0
UNWRITTEN_AFTER_S = 30.0  # a lock folder still without its owner file this long: its taker died in between
POLL_S = 1.0
_MAX_VANISHED = 100  # a lock that is gone whenever looked at, yet cannot be made: something else is wrong


def work_dir() -> str:
    """A device folder no other run uses (made by ``prepare_session``, removed at the end)."""
    return f"{REMOTE_DIR}/runs/{uuid.uuid4().hex[:16]}"


def _owner() -> str:
    return f"{socket.gethostname()} pid={os.getpid()} since={time.time():.0f}"


def _stale(owner: str) -> bool:
    """A lock whose holder is gone: a dead process of this machine, or any holder past STALE_AFTER_S."""
    fields = dict(part.split("=", 1) for part in owner.split()[1:] if "=" in part)
    host = owner.split()[0] if owner.split() else ""
    try:
        since, pid = float(fields.get("since", "")), int(fields.get("pid", ""))
    except ValueError:
        return True  # not written by the lab: nothing says it is held
    if time.time() - since > STALE_AFTER_S:
        return True
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


@contextmanager
def device_lock(
    shell: DeviceShell,
    serial: str,
    *,
    wait: bool = True,
    note: Callable[[str], None] = lambda message: None,
    stop: threading.Event | None = None,
) -> Iterator[None]:
    """Holds the device's lock for the ``with`` block.

    Raises:
        DeviceBusyError: another run holds it and ``wait`` is False (or ``stop`` was set while waiting).
        DeviceError: the device failed.
    """
    owner = _owner()
    made = shell.run(["mkdir", "-p", REMOTE_DIR])
    if made.returncode != 0:
        raise DeviceError(f"cannot make {REMOTE_DIR} on the device: {made.output.strip()}", serial)
    waited = False
    unwritten_since: float | None = None  # the lock exists but names nobody yet (being taken, or its taker died)
    vanished = 0  # the lock went away between our mkdir and our look: another run just released it
    while (taken := shell.run(f"mkdir {LOCK_DIR} && echo {command_line([owner])} > {LOCK_DIR}/owner")).returncode != 0:
        if shell.run(["ls", "-d", LOCK_DIR]).returncode != 0:
            vanished += 1
            if vanished > _MAX_VANISHED:
                raise DeviceError(f"cannot take the lock {LOCK_DIR} on the device: {taken.output.strip()}", serial)
            continue
        holder = shell.run(["cat", f"{LOCK_DIR}/owner"]).stdout.strip()
        if holder:
            unwritten_since = None
            stale = _stale(holder)
        else:
            unwritten_since = unwritten_since or time.monotonic()
            stale = time.monotonic() - unwritten_since > UNWRITTEN_AFTER_S
            holder = "a run still writing its name"
        if stale:
            note(f"breaking a stale lock ({holder})")
            shell.run(["rm", "-rf", LOCK_DIR])
            continue
        if not wait:
            raise DeviceBusyError(
                f"{serial} is in use by another run ({holder}); wait for it, or run without --no-wait to queue behind it",
                serial,
            )
        if not waited:
            note(f"in use by another run ({holder}): waiting for it to finish")
            waited = True
        if (stop or threading.Event()).wait(POLL_S):
            raise DeviceBusyError(f"{serial}: stopped while waiting for another run to finish", serial)
    try:
        yield
    finally:
        try:
            shell.run(["rm", "-rf", LOCK_DIR])
        except DeviceError:
            pass  # the device left: a later run finds this process gone and breaks the lock
