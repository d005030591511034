"""``lab doctor`` on this machine: real adb server, real store, real package lookups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from host.cli import app
from host.doctor import run_checks


def test_doctor_reports_every_stage_as_json(adb_server: object, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "doctor", "--json"])
    assert result.exit_code == 0, result.output
    checks = {(c["stage"], c["name"]): c for c in json.loads(result.stdout)}
    assert {stage for stage, _ in checks} == {"store", "build", "emulator", "devices", "bench", "docker"}
    assert checks[("build", "tensorflow")]["status"] == "ok"
    assert checks[("devices", "adb server")]["status"] == "ok"
    assert checks[("store", "database")]["detail"].endswith(": 0 run(s)")
    # nothing attached to the test's private adb server: a warning that says what to do
    devices = checks[("devices", "devices")]
    assert devices["status"] == "warning" and "USB debugging" in devices["fix"]
    missing_tool = checks[("bench", "benchmark_model arm64-v8a")]
    assert missing_tool["status"] == "warning" and "lab tools fetch --abi arm64-v8a" in missing_tool["fix"]


def test_doctor_lists_an_emulated_device(adb_server: object, emulated_device, tmp_path: Path) -> None:
    checks = {(c.stage, c.name): c for c in run_checks(tmp_path, f"sqlite:///{tmp_path / 'lab.db'}")}
    assert checks[("devices", "devices")].status == "ok"
    assert emulated_device.serial in checks[("devices", "devices")].detail


def test_doctor_fails_on_an_unusable_database(adb_server: object, tmp_path: Path) -> None:
    not_sqlite = tmp_path / "lab.db"
    not_sqlite.write_text("this is not a database\n" * 100)
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "doctor"])
    assert result.exit_code == 1
    assert "missing" in result.stdout and "database" in result.stdout


def test_doctor_says_the_arm64_device_is_not_prepared_and_how_to_prepare_it(adb_server: object, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LAB_QEMU_CACHE", str(tmp_path / "no-userland"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no C compiler either
    monkeypatch.delenv("CC", raising=False)
    checks = {(c.stage, c.name): c for c in run_checks(tmp_path, f"sqlite:///{tmp_path / 'lab.db'}")}
    arm = checks[("emulator", "arm64 emulated device")]
    assert arm.status == "warning" and f"not prepared: no prepared arm64 userland in {tmp_path / 'no-userland'}" in arm.detail
    assert arm.fix is not None and arm.fix.startswith("lab emulator prepare --arch arm64") and "no root" in arm.fix
    compiler = checks[("emulator", "C compiler")]
    assert compiler.status == "warning" and "counts no instructions" in compiler.detail and "gcc" in (compiler.fix or "")


@pytest.mark.qemu
def test_doctor_reports_the_prepared_arm64_device(adb_server: object, tmp_path: Path) -> None:
    from device_agent.qemu import default_dest, prepare

    userland = prepare(default_dest(), progress=lambda line: None)
    checks = {(c.stage, c.name): c for c in run_checks(tmp_path, f"sqlite:///{tmp_path / 'lab.db'}")}
    arm = checks[("emulator", "arm64 emulated device")]
    assert arm.status == "ok", arm
    assert arm.detail.startswith(f"prepared in {userland.root} (") and f"{userland.info['size_mb']} MB" in arm.detail
    assert arm.detail.endswith("instruction counts: yes")
