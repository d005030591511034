"""Emulated devices the lab starts for itself: ``lab emulator start|stop|status`` and
``lab run --emulator auto``.

Each one is ``python -m device_agent emulator`` in its own session (it outlives the command that
started it), connected to the adb server as ``127.0.0.1:PORT``. It lives in a numbered slot under
``LAB_HOME/emulators/<slot>/``: ``device.json`` (pid, port, serial, root), ``emulator.log``, and
``root/`` — its /data/local/tmp, kept across restarts so pushed files stay cached. It authenticates
adb as a phone does, trusting ``~/.android/adbkey.pub`` of the user who starts it: the key the adb
server of the same user signs with.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import adbutils

from device_agent.emulator.auth import default_key_path
from device_agent.emulator.launch import EmulatorStartError, spawn
from host import config
from host.devices.adb import adb_client
from host.errors import DeviceError, NotFoundError, UsageError

__all__ = [
    "EmulatedDeviceHandle",
    "start_emulated_device",
    "stop_emulated_device",
    "list_emulated_devices",
    "EMULATED_ARCHS",
]

EMULATED_ARCHS = ("x86_64", "arm64")
"""x86_64: this machine's CPU; arm64: benchmark_model in an arm64 userland under QEMU (``lab emulator prepare``)."""
_STATE_FILE = "device.json"
_LOG_FILE = "emulator.log"
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class EmulatedDeviceHandle:
    slot: int
    serial: str  # "127.0.0.1:PORT", as the adb server lists it
    port: int
    pid: int
    root: str  # the device's /data/local/tmp on this machine
    arch: str
    log: str
    started_at: str

    @property
    def running(self) -> bool:
        return _is_our_process(self.pid)


def _is_our_process(pid: int) -> bool:
    """Whether ``pid`` is alive and still an emulated device (a recycled pid is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the recorded pid
    return b"device_agent" in cmdline and b"emulator" in cmdline


def _slots(home: Path) -> Path:
    return config.emulators_dir(home)


def _read_handle(folder: Path) -> EmulatedDeviceHandle | None:
    try:
        return EmulatedDeviceHandle(**json.loads((folder / _STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def list_emulated_devices(home: Path) -> list[EmulatedDeviceHandle]:
    """The emulated devices started under ``home`` that are still running, by slot.

    A slot whose process is gone is cleared (its root folder stays).
    """
    root = _slots(home)
    if not root.is_dir():
        return []
    handles: list[EmulatedDeviceHandle] = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        handle = _read_handle(folder)
        if handle is None:
            continue
        if handle.running:
            handles.append(handle)
        else:
            (folder / _STATE_FILE).unlink(missing_ok=True)
    return handles


def _free_slot(home: Path) -> int:
    taken = {h.slot for h in list_emulated_devices(home)}
    slot = 0
    while slot in taken:
        slot += 1
    return slot


def _connect(client: adbutils.AdbClient, serial: str) -> None:
    try:
        answer = client.connect(serial, timeout=_START_TIMEOUT_S)
        if "failed to authenticate" in answer:
            raise DeviceError(
                f"the emulated device at {serial} does not accept the adb server's key: it trusts "
                f"{default_key_path().with_name('adbkey.pub')} (this user's), and the adb server at "
                f"{client.host}:{client.port} signs with another one; run the adb server as this user "
                "(`adb kill-server`, then retry), or add its ~/.android/adbkey.pub to that file"
            )
        if "connected" not in answer:
            raise DeviceError(f"adb could not connect to the emulated device at {serial}: {answer}")
        client.wait_for(serial, state="device", timeout=_START_TIMEOUT_S)
    except adbutils.AdbError as exc:
        raise DeviceError(f"adb could not connect to the emulated device at {serial}: {exc}") from exc


def start_emulated_device(
    home: Path,
    *,
    port: int | None = None,
    arch: str = "x86_64",
    cpu: str | None = None,
    client: adbutils.AdbClient | None = None,
    profile: str | None = None,
) -> EmulatedDeviceHandle:
    """Starts an emulated device in the background and connects it to the adb server.

    ``profile`` makes it answer as a phone (``device_agent/profiles``: properties, clusters,
    thermal zones that heat and throttle, fixed-performance mode, taskset).

    ``port`` None picks a free one. The device listens on 127.0.0.1 only. ``arch`` arm64 runs
    benchmark_model under QEMU on ``cpu`` (default neoverse-n1) in the userland that
    ``lab emulator prepare --arch arm64`` made; a missing userland fails with that command.

    Raises:
        UsageError: an architecture the emulated device cannot run, or an unknown profile.
        DeviceError: it did not start, or adb could not connect to it.
    """
    if arch not in EMULATED_ARCHS:
        raise UsageError(f"emulated devices run {', '.join(EMULATED_ARCHS)} only, not {arch!r}")
    if profile is not None:
        from device_agent.profiles import profile_names

        if profile not in profile_names():
            raise UsageError(f"unknown phone profile {profile!r}: choose from {', '.join(profile_names())}")
    client = client or adb_client()
    slot = _free_slot(home)
    folder = _slots(home) / str(slot)
    device_root = folder / "root"
    device_root.mkdir(parents=True, exist_ok=True)
    log = folder / _LOG_FILE
    log.unlink(missing_ok=True)
    try:
        launched = spawn(
            port=port or 0, root=device_root, log_path=log, extra_args=(*_arch_args(arch, cpu), *(["--profile", profile] if profile else [])),
            timeout=_START_TIMEOUT_S, detach=True,
        )
    except EmulatorStartError as exc:
        raise DeviceError(f"{exc} (log: {log})") from exc
    actual_port, process = launched.port, launched.process
    handle = EmulatedDeviceHandle(
        slot=slot,
        serial=f"127.0.0.1:{actual_port}",
        port=actual_port,
        pid=process.pid,
        root=str(device_root),
        arch=arch,
        log=str(log),
        started_at=datetime.now(timezone.utc).isoformat(),
    )
    (folder / _STATE_FILE).write_text(json.dumps(asdict(handle), indent=2) + "\n")
    try:
        _connect(client, handle.serial)
    except DeviceError:
        _stop(handle, client)
        raise
    return handle


def _arch_args(arch: str, cpu: str | None) -> list[str]:
    if arch == "x86_64":
        if cpu:
            raise UsageError("--cpu applies to arm64 emulated devices only")
        return []
    return ["--arch", "arm64", *(["--cpu", cpu] if cpu else [])]


def _terminate(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = 0 if _is_our_process(pid) else pid
        if finished == pid:
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (OSError, ChildProcessError):
        pass


def _stop(handle: EmulatedDeviceHandle, client: adbutils.AdbClient | None) -> None:
    if client is not None:
        client.disconnect(handle.serial)
    if _is_our_process(handle.pid):
        _terminate(handle.pid)
    (Path(handle.log).parent / _STATE_FILE).unlink(missing_ok=True)


def stop_emulated_device(
    handle_or_serial: EmulatedDeviceHandle | str, *, home: Path | None = None, client: adbutils.AdbClient | None = None
) -> EmulatedDeviceHandle:
    """Disconnects an emulated device from adb and stops its process (its files stay).

    Raises:
        NotFoundError: no running emulated device with that serial under ``home``.
    """
    if isinstance(handle_or_serial, EmulatedDeviceHandle):
        handle = handle_or_serial
    else:
        running = list_emulated_devices(home or config.lab_home())
        found = [h for h in running if h.serial == handle_or_serial]
        if not found:
            known = ", ".join(h.serial for h in running) or "none"
            raise NotFoundError(f"no emulated device {handle_or_serial} is running (running: {known})")
        handle = found[0]
    try:
        client = client or adb_client()
    except DeviceError:
        client = None  # no adb server: nothing to disconnect from
    _stop(handle, client)
    return handle
