"""``lab doctor`` on this machine: real adb server, real store, real package lookups."""

from __future__ import annotations

import json
from pathlib import Path

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
