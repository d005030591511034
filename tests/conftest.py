"""Shared fixtures: a private adb server and emulated Android devices (real processes, real sockets).

``adb_server`` (session scope)
    adbutils' bundled adb (``adbutils.adb_path()``) started with ``adb -P PORT start-server`` on a
    free port, with emulator port scanning off (``ADB_EMU=0``: devices other tests or engineers run
    on 5555-5585 never join). ``ANDROID_ADB_SERVER_PORT`` is set to PORT for the session and
    restored after; ``adb -P PORT kill-server`` ends it. Yields an :class:`AdbServer`:
    ``.port``, ``.adb`` (path of the adb binary), ``.client`` (``adbutils.AdbClient`` on
    127.0.0.1:PORT) and ``.run(*args, **kwargs)`` (the adb command line against this server,
    a ``subprocess.CompletedProcess`` with text output).

``emulated_device_factory`` (function scope)
    ``start(**options) -> EmulatedDevice`` runs ``python -m device_agent emulator --port 0 --root
    TMP`` in a subprocess, ``adb connect 127.0.0.1:PORT`` and waits until adb reports state
    ``device``. The device authenticates the adb server as adbd does: its default authorized key
    is ``~/.android/adbkey.pub``, the key this adb server made (or found) when it started. Options: ``root`` (Path; default a fresh tmp folder), ``model``, ``facts_root``
    (Path of a captured /proc + /sys tree), ``trace`` (bool, log every packet), ``extra_args``
    (more emulator options) and ``connect`` (default True; False only starts the process, for raw
    socket tests). At teardown every device is disconnected and terminated.

``emulated_device`` (function scope)
    One started, connected device.

``lab_process`` (session scope)
    ``lab_process(home, *args)`` runs ``python -m host.cli ARGS…`` as a user would, with LAB_HOME
    set to ``home`` (and no LAB_DB_URL): a ``subprocess.CompletedProcess`` with text output.

Environment: ``DOCKER_HOST`` defaults to the engine ``.ci/setup`` starts (from the env file it writes),
and ``LAB_BUILD_BACKEND`` is ``local`` so that only tests asking for Docker build in containers.

:class:`EmulatedDevice`: ``.serial`` ("127.0.0.1:PORT"), ``.port``, ``.root`` (the sandbox folder
behind /data/local/tmp), ``.process`` (Popen), ``.device`` (``adbutils.AdbDevice``),
``.log_text()`` (its stderr so far) and ``.stop()``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import adbutils
import pytest

from device_agent.emulator.launch import DeviceProcess, spawn

_READY_TIMEOUT_S = 20.0
_CI_DOCKER_ENV = Path(os.environ.get("LAB_CI_DOCKER_ROOT", "/var/lib/lab-ci-docker")) / "env"
"""``export NAME=VALUE`` lines .ci/docker.sh writes: its engine's DOCKER_HOST, the CA bundle images build with."""


def pytest_configure(config: pytest.Config) -> None:
    # The engine .ci/setup starts listens on a socket of its own: find it without exporting anything.
    if "DOCKER_HOST" not in os.environ and _CI_DOCKER_ENV.is_file():
        for line in _CI_DOCKER_ENV.read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            if value:
                os.environ.setdefault(name.strip(), value.strip())
    # Builds run locally unless a test asks for Docker: an engine being up must not change other tests.
    os.environ["LAB_BUILD_BACKEND"] = "local"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AdbServer:
    port: int
    adb: str
    client: adbutils.AdbClient

    def run(self, *args: str, timeout: float = 60.0, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """``adb -P PORT ARGS…`` with stdin closed; output captured as text."""
        return subprocess.run([self.adb, "-P", str(self.port), *args], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def adb_server() -> Iterator[AdbServer]:
    adb = adbutils.adb_path()
    port = _free_port()
    env = {**os.environ, "ADB_EMU": "0", "ADB_MDNS": "0"}
    started = subprocess.run([adb, "-P", str(port), "start-server"], env=env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60)
    if started.returncode != 0:
        pytest.fail(f"adb start-server on port {port} failed: {started.stderr.strip()}")
    previous = os.environ.get("ANDROID_ADB_SERVER_PORT")
    os.environ["ANDROID_ADB_SERVER_PORT"] = str(port)
    try:
        yield AdbServer(port, adb, adbutils.AdbClient(host="127.0.0.1", port=port))
    finally:
        subprocess.run([adb, "-P", str(port), "kill-server"], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60)
        if previous is None:
            os.environ.pop("ANDROID_ADB_SERVER_PORT", None)
        else:
            os.environ["ANDROID_ADB_SERVER_PORT"] = previous


@dataclass
class EmulatedDevice:
    serial: str
    port: int
    root: Path
    process: subprocess.Popen[bytes]
    client: adbutils.AdbClient
    launched: DeviceProcess
    connected: bool

    @property
    def device(self) -> adbutils.AdbDevice:
        return self.client.device(self.serial)

    def log_text(self) -> str:
        return self.launched.log_text()

    def stop(self) -> int:
        """Disconnect from adb (if connected) and terminate; returns the exit status."""
        if self.connected:
            self.client.disconnect(self.serial)
            self.connected = False
        return self.launched.stop()


def _wait_for_device(client: adbutils.AdbClient, serial: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    state = "absent"
    while time.monotonic() < deadline and process.poll() is None:
        state = next((info.state for info in client.list() if info.serial == serial), "absent")
        if state == "device":
            return
        time.sleep(0.05)
    raise RuntimeError(f"adb did not report {serial} as 'device' (last state {state!r}, "
                       f"emulator exit status {process.poll()})")


@pytest.fixture
def emulated_device_factory(
    adb_server: AdbServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., EmulatedDevice]]:
    started: list[EmulatedDevice] = []

    def start(
        *,
        root: Path | None = None,
        model: str | None = None,
        facts_root: Path | None = None,
        trace: bool = False,
        extra_args: tuple[str, ...] = (),
        connect: bool = True,
    ) -> EmulatedDevice:
        folder = tmp_path_factory.mktemp("emulated-device")
        root = root or folder / "root"
        args = list(extra_args)
        if facts_root is not None:
            args += ["--facts-root", str(facts_root)]
        if trace:
            args.append("--trace")
        launched = spawn(root=root, model=model, log_path=folder / "emulator.log", extra_args=tuple(args))
        serial = launched.address
        emulated = EmulatedDevice(serial, launched.port, root, launched.process, adb_server.client, launched, False)
        started.append(emulated)
        if connect:
            reply = adb_server.client.connect(serial, timeout=_READY_TIMEOUT_S)
            # "failed to authenticate": adb answers so once its signatures failed and it offered its
            # key; a device run with --accept-new-keys takes the key and goes online just after.
            if "connected" not in reply and "failed to authenticate" not in reply:
                raise RuntimeError(f"adb connect {serial}: {reply}")
            emulated.connected = True
            _wait_for_device(adb_server.client, serial, launched.process)
        return emulated

    yield start
    for emulated in started:
        emulated.stop()


@pytest.fixture
def emulated_device(emulated_device_factory: Callable[..., EmulatedDevice]) -> EmulatedDevice:
    return emulated_device_factory()


@pytest.fixture(scope="session")
def lab_process() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(home: Path, *args: str, timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LAB_HOME": str(home)}
        env.pop("LAB_DB_URL", None)
        return subprocess.run([sys.executable, "-m", "host.cli", *args], env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    return run
