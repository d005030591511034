"""``lab run`` end to end: real TensorFlow build, real adb server, emulated devices, SQLite store.

The build is made once per session in a shared LAB_HOME (the second run reuses it from cache),
so the whole file costs one quick build plus a few short benchmarks.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from host.cli import app

LabProcess = Callable[..., subprocess.CompletedProcess[str]]  # the lab_process fixture (tests/conftest.py)

pytestmark = [pytest.mark.tf, pytest.mark.slow]

QUICK = ["--quick", "--dataset", "synthetic", "--trials", "2", "--runs", "20", "--warmup", "2"]


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-home")



def test_run_quick_on_emulated_devices_then_history(lab_process: LabProcess, adb_server: object, lab_home: Path) -> None:
    # No device is attached to the private adb server: --emulator auto starts the x86_64 emulated
    # device and the arm64 one (prepared on first use, or left out with the reason) and stops them after.
    result = lab_process(lab_home, "run", *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dense.tflite" in result.stdout and "pruned.tflite" in result.stdout
    assert "speed-up" in result.stdout
    assert "starting an emulated x86_64 device" in result.stderr
    assert "starting an emulated ARM core" in result.stderr or "no emulated ARM core in this run: " in result.stdout
    assert f"stored in sqlite:///{lab_home / 'lab.db'}" in result.stderr
    assert "XNNPACK" in result.stdout  # the honest note: x86 with AVX runs no sparse kernels
    assert "finding: On this x86 CPU the pruned model" in result.stdout
    assert "outputs on device" in result.stdout and "ok (16, top-1 100%)" in result.stdout  # checked by default

    history = lab_process(lab_home, "history", "--json")
    assert history.returncode == 0, history.stderr
    rows = json.loads(history.stdout)
    assert {row["role"] for row in rows} == {"dense", "pruned"}, rows
    assert all(row["run_status"] == "ok" and row["trials_ok"] == 2 for row in rows), rows
    assert all(row["device_kind"] == "emulated" for row in rows), rows

    # the emulated device it started is gone again
    status = lab_process(lab_home, "emulator", "status", "--json")
    assert json.loads(status.stdout) == []


def test_run_json_reuses_the_cached_build(lab_process: LabProcess, adb_server: object, lab_home: Path) -> None:
    first = lab_process(lab_home, "run", *QUICK, "--emulator", "x86", "--no-verify", "--json")  # builds, unless cached
    assert first.returncode == 0 and json.loads(first.stdout)["bench"]["output_checks"] == []
    result = lab_process(lab_home, "run", *QUICK, "--emulator", "x86", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    assert document["build"]["cached"] is True
    assert len(document["emulated_devices_started"]) == 1 and document["notes"] == []
    results = document["bench"]["results"]
    assert {r["model"]["role"] for r in results} == {"dense", "pruned"}
    assert all(r["trials_ok"] == 2 for r in results)
    checks = document["bench"]["output_checks"]
    assert [(c["model"]["role"], c["status"], c["inputs"]) for c in checks] == [("dense", "ok", 16), ("pruned", "ok", 16)]
    assert all(c["reference"].startswith(f"build {document['build']['build_id']}") for c in checks)


def test_no_device_and_emulator_never_is_a_usage_error(adb_server: object, lab_home: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(lab_home), "run", *QUICK, "--emulator", "never"])
    assert result.exit_code == 2
    assert "no device attached and --emulator never" in result.output


def test_always_is_the_old_name_of_x86(lab_process: LabProcess, adb_server: object, lab_home: Path) -> None:
    result = lab_process(lab_home, "run", *QUICK, "--emulator", "always", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note: --emulator always is now --emulator x86" in result.stderr
    devices = json.loads(result.stdout)["report"]["devices"]
    assert [(d["device"]["abis"][0], d["device"]["emulation"]) for d in devices] == [("x86_64", "native")]


def test_both_without_a_mirror_is_a_config_error_naming_it(adb_server: object, lab_home: Path, tmp_path: Path, monkeypatch) -> None:
    import socket

    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        mirror = f"http://127.0.0.1:{closed.getsockname()[1]}/debian"
        monkeypatch.setenv("LAB_DEBIAN_MIRROR", mirror)
        monkeypatch.setenv("LAB_QEMU_CACHE", str(tmp_path / "empty-cache"))
        result = CliRunner().invoke(app, ["--home", str(lab_home), "run", *QUICK, "--emulator", "both"])
    assert result.exit_code == 2, result.output
    assert f"the emulated ARM core cannot be prepared: the Debian mirror {mirror} cannot be used (" in result.output


def test_unknown_device_is_refused(adb_server: object, lab_home: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(lab_home), "run", *QUICK, "--device", "no-such-serial"])
    assert result.exit_code == 2
    assert "no-such-serial" in result.output


def test_missing_tensorflow_names_the_extra(adb_server: object, tmp_path: Path) -> None:
    # An interpreter where `import tensorflow` fails, as on a machine without the build extra.
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.argv = ['lab'] + sys.argv[1:]; "
        "from host.cli import main; main()"
    )
    env = {**os.environ, "LAB_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code, "run", *QUICK], env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "pip install 'lab[build]'" in result.stderr


def _measurements(db: Path, serial: str) -> int:
    with sqlite3.connect(db) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "measurement" not in tables:
            return 0
        return connection.execute(
            "SELECT count(*) FROM measurement m JOIN device d ON d.id = m.device_id WHERE d.serial = ?", (serial,)
        ).fetchone()[0]


def test_a_device_failing_mid_run_keeps_the_others_results(
    adb_server: object, emulated_device_factory, lab_home: Path, tmp_path: Path
) -> None:
    steady = emulated_device_factory()
    doomed = emulated_device_factory()
    db = tmp_path / "mid-run.db"
    env = {**os.environ, "LAB_HOME": str(lab_home), "LAB_DB_URL": f"sqlite:///{db}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "run", "--quick", "--dataset", "synthetic", "--trials", "3",
         "--runs", "3000", "--warmup", "1", "--device", steady.serial, "--device", doomed.serial, "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while _measurements(db, doomed.serial) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    doomed.process.kill()
    out, err = process.communicate(timeout=600)
    assert process.returncode == 1, err[-3000:]
    document = json.loads(out)
    by_serial: dict[str, list[dict]] = {}
    for row in document["bench"]["results"]:
        by_serial.setdefault(row["device"]["serial"], []).append(row)
    assert all(r["trials_ok"] == 3 for r in by_serial[steady.serial])
    assert any(r["trials_failed"] > 0 for r in by_serial[doomed.serial])
    assert document["bench"]["failures"], "the failed trials are reported"
    with sqlite3.connect(db) as connection:
        statuses = dict(connection.execute(
            "SELECT d.serial, group_concat(DISTINCT m.status) FROM measurement m JOIN device d ON d.id = m.device_id "
            "GROUP BY d.serial"
        ).fetchall())
    assert statuses[steady.serial] == "ok"
    assert "failed" in statuses[doomed.serial] or "timeout" in statuses[doomed.serial]


def test_variants_are_built_benched_and_reported_beside_dense_and_pruned(
    lab_process: LabProcess, adb_server: object, lab_home: Path
) -> None:
    result = lab_process(lab_home, "run", *QUICK, "--emulator", "x86", "--variants", "dense-fp16,dense-int8", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    (section,) = doc["report"]["devices"]
    rows = {row["role"]: row for row in section["rows"]}
    assert set(rows) == {"dense", "pruned", "dense-fp16", "dense-int8"}
    for role in ("pruned", "dense-fp16", "dense-int8"):  # each against dense fp32, with its CI
        speedup = rows[role]["speedup"]
        assert speedup is not None and speedup["low"] <= speedup["value"] <= speedup["high"], rows[role]
        assert rows[role]["accuracy"] is not None  # the host's accuracy of that very file
    assert {role: row["outputs"]["status"] for role, row in rows.items()} == dict.fromkeys(rows, "ok")
    assert rows["dense-int8"]["outputs"]["precision"] == "int8"
    history = json.loads(lab_process(lab_home, "history", "--json").stdout)
    assert {"dense-fp16", "dense-int8"} <= {row["role"] for row in history}


def test_an_unknown_variant_is_one_line_naming_the_valid_ones(lab_home: Path) -> None:
    for command in ("build", "run"):
        result = CliRunner().invoke(app, ["--home", str(lab_home), command, "--quick", "--dataset", "synthetic",
                                          "--variants", "dense-fp8"])
        assert result.exit_code == 2, result.output
        assert "unknown variant(s) dense-fp8: choose from dense, pruned, dense-fp16" in result.stderr
