"""Which devices are attached, what each one is, and which ones a command runs on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import adbutils

from host.devices.facts import read_facts_and_notes
from host.devices.shell import DeviceShell
from host.errors import DeviceError, DeviceNotFoundError, NoDeviceError
from host.records import DeviceFacts

__all__ = ["DeviceEntry", "list_devices", "select_devices", "skipped_devices", "state_problem"]

# adb's device states other than "device", and what the user can do about each.
_PROBLEMS = {
    "unauthorized": (
        "unauthorized: a phone: unlock it and accept the 'Allow USB debugging?' prompt, then retry; an emulated "
        "device: its authorized keys lack this adb server's key (~/.android/adbkey.pub of the user running adb): "
        "add that line to the device's --authorized-keys file, or restart it with `lab emulator start` as that "
        "user, then `adb reconnect offline`"
    ),
    "offline": "offline: reconnect the cable, or run `adb reconnect offline` (network devices: `adb connect HOST:PORT`)",
    "authorizing": "authorizing: wait a few seconds for adb to finish the key exchange, then retry",
    "connecting": "connecting: wait a few seconds, then retry",
    "no": "no permissions: add a udev rule for this USB device (see developer.android.com/studio/run/device), then replug",
    "bootloader": "in the bootloader: reboot it into Android",
    "recovery": "in recovery: reboot it into Android",
    "sideload": "in sideload mode: reboot it into Android",
    "rescue": "in rescue mode: reboot it into Android",
}


@dataclass(frozen=True)
class DeviceEntry:
    """One device adb knows. ``facts`` is None when the device is not ready (see ``problem``)."""

    serial: str
    state: str
    facts: DeviceFacts | None
    problem: str | None
    notes: tuple[str, ...] = ()  # what to know about its figures (an emulated phone's simulated speed)

    @property
    def ready(self) -> bool:
        return self.facts is not None


def state_problem(state: str) -> str | None:
    """What is wrong with a device in adb state ``state`` and what to do; None when it is ready."""
    if state == "device":
        return None
    return _PROBLEMS.get(state, f"{state}: not ready for commands")


def _entry(client: adbutils.AdbClient, serial: str, state: str) -> DeviceEntry:
    if state != "device":
        return DeviceEntry(serial, state, None, state_problem(state))
    try:
        facts, notes = read_facts_and_notes(DeviceShell(client, serial))
        return DeviceEntry(serial, state, facts, None, notes)
    except DeviceError as exc:
        return DeviceEntry(serial, state, None, f"facts unreadable: {exc}")


def _adb_list(client: adbutils.AdbClient) -> list[adbutils.AdbDeviceInfo]:
    try:
        return client.list()
    except (adbutils.AdbError, OSError) as exc:
        raise DeviceError(f"the adb server at {client.host}:{client.port} did not list devices: {exc}") from exc


def list_devices(client: adbutils.AdbClient) -> list[DeviceEntry]:
    """Every device the adb server knows, ready or not, with facts read in parallel."""
    infos = _adb_list(client)
    if not infos:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(infos))) as pool:
        return list(pool.map(lambda info: _entry(client, info.serial, info.state), infos))


def select_devices(client: adbutils.AdbClient, serials: Sequence[str] | None) -> list[DeviceFacts]:
    """The devices a command runs on, by an explicit rule.

    ``serials`` when given, else ``$ANDROID_SERIAL`` (comma-separated allowed), else every ready
    device. Never picks one of several devices silently.

    Raises:
        DeviceNotFoundError: a requested serial is not attached, or is attached but not ready.
        NoDeviceError: no serial was requested and no device is ready.
    """
    wanted = list(dict.fromkeys(serials or []))
    source = "--device"
    if not wanted and os.environ.get("ANDROID_SERIAL"):
        wanted = [s.strip() for s in os.environ["ANDROID_SERIAL"].split(",") if s.strip()]
        source = "ANDROID_SERIAL"
    infos = {info.serial: info.state for info in _adb_list(client)}
    if not wanted:
        entries = list_devices(client)
        ready = [entry.facts for entry in entries if entry.facts is not None]
        if not ready:
            not_ready = "; ".join(f"{e.serial}: {e.problem}" for e in entries)
            detail = f" (attached but not ready — {not_ready})" if not_ready else ""
            raise NoDeviceError(
                f"no device ready{detail}: attach a phone with USB debugging, or start one with `lab emulator start`"
            )
        return ready
    missing = [serial for serial in wanted if serial not in infos]
    if missing:
        known = ", ".join(sorted(infos)) or "none"
        raise DeviceNotFoundError(
            f"device {', '.join(missing)} ({source}) is not attached; attached: {known} (see `lab devices`)",
            missing[0],
        )
    with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
        entries = list(pool.map(lambda serial: _entry(client, serial, infos[serial]), wanted))
    for entry in entries:
        if entry.facts is None:
            raise DeviceNotFoundError(f"device {entry.serial} is {entry.problem}", entry.serial)
    return [entry.facts for entry in entries if entry.facts is not None]


def skipped_devices(client: adbutils.AdbClient, serials: Sequence[str] | None) -> dict[str, str]:
    """The attached devices a command without ``--device`` (nor ``$ANDROID_SERIAL``) passes over,
    each with what is wrong and what to do (unauthorized, offline…); empty when devices were named,
    since then a device that is not ready is an error (``select_devices``)."""
    if serials or os.environ.get("ANDROID_SERIAL"):
        return {}
    return {info.serial: state_problem(info.state) or "" for info in _adb_list(client) if info.state != "device"}
