"""The emulated-device image: a container on the host's network answers the host's adb server
(adbutils' bundled adb, ``adb connect 127.0.0.1:PORT``) and ``lab bench`` benchmarks the models
the builder container made on it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from host.cli.main import app

from .conftest import DockerBuild

pytestmark = pytest.mark.docker

_READY_S = 60.0


@dataclass
class DeviceContainer:
    container: Any
    port: int
    serial: str


def _listening_port(container: Any) -> int:
    """The port from the device agent's ``listening on HOST:PORT`` line (it was given --port 0)."""
    deadline = time.monotonic() + _READY_S
    while time.monotonic() < deadline:
        container.reload()
        logs = container.logs().decode(errors="replace")
        found = re.search(r"^listening on 127\.0\.0\.1:(\d+)$", logs, re.M)
        if found:
            return int(found.group(1))
        if container.status == "exited":
            break
        time.sleep(0.2)
    raise RuntimeError(f"the emulated device did not start (status {container.status}):\n{logs}")


@pytest.fixture
def device_container(emulator_image: str, docker_client: Any, adb_server: Any) -> Iterator[DeviceContainer]:
    # Host networking, loopback only, a port the device agent picks itself: no fixed port, no race.
    # The device authenticates adb: it gets the key of the host's adb server (~/.android/adbkey.pub).
    from device_agent.emulator.auth import default_key_path

    container = docker_client.containers.run(
        emulator_image,
        command=["--port", "0", "--host", "127.0.0.1", "--model", "docker test device"],
        network_mode="host",
        detach=True,
        labels={"lab.test": "emulator"},
        volumes={str(default_key_path().with_name("adbkey.pub")): {"bind": "/home/lab/.android/adbkey.pub",
                                                                    "mode": "ro"}},
    )
    try:
        port = _listening_port(container)
        serial = f"127.0.0.1:{port}"
        connected = adb_server.run("connect", serial)
        assert "connected to" in connected.stdout, connected.stdout + connected.stderr
        waited = adb_server.run("-s", serial, "wait-for-device", timeout=_READY_S)
        assert waited.returncode == 0, waited.stderr
        yield DeviceContainer(container, port, serial)
        adb_server.run("disconnect", serial)
    finally:
        container.remove(force=True)


def test_the_emulator_image_answers_adb_from_the_host(device_container: DeviceContainer, adb_server: Any) -> None:
    states = {info.serial: info.state for info in adb_server.client.list()}
    assert states[device_container.serial] == "device"
    device = adb_server.client.device(device_container.serial)
    assert device.getprop("ro.lab.emulated") == "1"
    assert device.getprop("ro.product.model") == "docker test device"
    assert device.shell("echo hello from the container") == "hello from the container"
    listing = device.shell2("ls /data/local/tmp; echo rc=$?")
    assert listing.returncode == 0 and "rc=0" in listing.output


def test_lab_bench_benchmarks_the_built_models_in_the_container(
    device_container: DeviceContainer, docker_build: DockerBuild, tmp_path: Path
) -> None:
    result = docker_build.result
    args = ["--home", str(tmp_path), "bench", str(result.dense), str(result.pruned), "--device",
            device_container.serial, "--trials", "2", "--runs", "20", "--warmup", "2", "--json"]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output + device_container.container.logs().decode(errors="replace")
    doc = json.loads(run.stdout)
    assert doc["status"] == "ok" and doc["trials"] == doc["trials_ok"] == 4 and doc["failures"] == []
    dense, pruned = doc["results"]
    assert dense["model"]["name"] == "dense.tflite" and pruned["model"]["name"] == "pruned.tflite"
    assert dense["device"]["kind"] == "emulated" and dense["latency_us"]["value"] > 0
    assert pruned["ratio"]["low"] <= pruned["ratio"]["value"] <= pruned["ratio"]["high"]
    assert doc["tools"][device_container.serial]["builtin"] is True
    # the models really crossed into the container's sandbox (pushed under their sha256)
    listing = device_container.container.exec_run(["sh", "-c", "ls -R /tmp/lab-device-*"]).output.decode()
    for role in ("dense", "pruned"):
        assert f"{result.manifest['files'][role]['sha256']}.tflite" in listing
