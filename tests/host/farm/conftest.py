"""Fixtures of the farm tests: a fresh PostgreSQL database per test, private adb servers with
emulated devices, and ``lab agent`` processes (real processes, real sockets, real database).

The PostgreSQL server is the one ``.ci/postgres.sh`` starts: its URL comes from
``LAB_TEST_PG_URL``, else from the env file the script writes. Without one the PostgreSQL tests
are skipped — except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import adbutils
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from device_agent.emulator.launch import DeviceProcess, spawn

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"
_PG_ENV_FILE = Path(os.environ.get("LAB_CI_PG_ROOT", "/tmp/lab-ci-postgres")) / "env"


def _server_url() -> str | None:
    url = os.environ.get("LAB_TEST_PG_URL")
    if not url and _PG_ENV_FILE.is_file():
        for line in _PG_ENV_FILE.read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            if name.strip() == "LAB_TEST_PG_URL":
                url = value.strip()
    return url or None


@pytest.fixture(scope="session")
def pg_server() -> str:
    url = _server_url()
    if url is None:
        message = "no PostgreSQL: run `bash .ci/postgres.sh` and export the LAB_TEST_PG_URL it prints"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL of a new, empty database on the test server; dropped afterwards."""
    name = f"lab_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(pg_server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab(db_url: str, home: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``lab --db URL --home HOME ARGS…`` (with the farm's commands) as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "host.cli", "--db", db_url, "--home", str(home), *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


@dataclass
class FarmHost:
    """A simulated host: its own adb server, its emulated devices, and (when started) its agent."""

    name: str
    port: int
    home: Path
    client: adbutils.AdbClient
    devices: list[DeviceProcess] = field(default_factory=list)
    agent: subprocess.Popen[str] | None = None
    log: Path | None = None
    others: list[subprocess.Popen[str]] = field(default_factory=list)  # more agents on the same adb server

    @property
    def serials(self) -> list[str]:
        return [d.address for d in self.devices]

    def start_agent(self, db_url: str, *, lease: float = 4.0, heartbeat: float = 0.5, name: str | None = None,
                    extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
        """``lab agent`` for this host's devices; ``name`` other than the host's: one more agent on them."""
        log = self.home / f"agent-{name or self.name}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "host.cli", "--db", db_url, "--home", str(self.home), "agent",
             "--host-name", name or self.name, "--lease", str(lease), "--heartbeat", str(heartbeat), "--poll", "0.1",
             *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
            env={**os.environ, "ANDROID_ADB_SERVER_PORT": str(self.port)},
        )
        if name is None:
            self.agent, self.log = process, log
        else:
            self.others.append(process)
        return process

    def log_text(self) -> str:
        return self.log.read_text() if self.log and self.log.exists() else ""

    def stop_agent(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.agent is not None
        if self.agent.poll() is None:
            self.agent.send_signal(sig)
        try:
            return self.agent.wait(timeout)
        finally:
            if self.agent.stdout:
                self.agent.stdout.close()


LOADED_MACHINE = 3.0  # deadlines stretch this much: a busy shared CI box starts agents and devices slowly


def wait_until(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.2) -> object:
    """Polls ``condition`` until it is truthy (returned at once), failing after ``timeout`` × LOADED_MACHINE s.

    ``timeout`` is what the event takes on a quiet machine with room to spare; the deadline only
    bounds a test that fails, a passing one returns as soon as its event happens.
    """
    limit = timeout * LOADED_MACHINE
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {limit:g} s waiting for {what}")


@pytest.fixture
def farm_host_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., FarmHost]]:
    """``start(name, devices=N, model=NAME)``: a private adb server with N emulated devices."""
    hosts: list[FarmHost] = []
    adb = adbutils.adb_path()
    env = {**os.environ, "ADB_EMU": "0", "ADB_MDNS": "0"}

    def add_device(host: FarmHost, model: str | None = None) -> DeviceProcess:
        """One more emulated device on ``host``'s adb server, connected and ready."""
        index = len(host.devices)
        folder = host.home.parent
        launched = spawn(root=folder / f"device{index}", model=model, log_path=folder / f"device{index}.log")
        host.devices.append(launched)
        reply = host.client.connect(launched.address, timeout=20)
        assert "connected" in reply, reply
        wait_until(lambda: any(i.serial == launched.address and i.state == "device" for i in host.client.list()),
                   20, f"{launched.address} to be ready")
        return launched

    def start(name: str, devices: int = 1, model: str | None = None) -> FarmHost:
        folder = tmp_path_factory.mktemp(f"host-{name}")
        port = free_port()
        subprocess.run([adb, "-P", str(port), "start-server"], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60, check=True)
        client = adbutils.AdbClient(host="127.0.0.1", port=port)
        host = FarmHost(name, port, folder / "home", client)
        hosts.append(host)
        host.home.mkdir()
        for _ in range(devices):
            add_device(host, model)
        return host

    start.add_device = add_device  # type: ignore[attr-defined]
    yield start
    for host in hosts:
        for agent in [host.agent, *host.others]:
            if agent is not None and agent.poll() is None:
                agent.kill()
                agent.wait(10)
            if agent is not None and agent.stdout:
                agent.stdout.close()
        for device in host.devices:
            device.stop()
        subprocess.run([adb, "-P", str(host.port), "kill-server"], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60)
