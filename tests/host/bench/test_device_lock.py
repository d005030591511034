"""One run at a time per device: two runs on one emulated device never mix their outputs; a held
device is waited for or, with --no-wait, refused; a lock whose holder died is broken."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from host.bench import BenchOutcome
from host.devices.lock import LOCK_DIR
from host.devices.shell import DeviceShell

from .test_bench_emulated import MODELS, Recorder, bench


def test_two_runs_on_one_device_take_turns_and_each_stores_its_own_outputs(
    adb_server: Any, emulated_device: Any, tmp_path: Path
) -> None:
    outcomes: dict[str, BenchOutcome] = {}
    recorders = {"add": Recorder(), "conv": Recorder()}

    def run(name: str) -> None:
        folder = tmp_path / name
        folder.mkdir()
        outcomes[name] = bench(adb_server, folder, [MODELS / f"{name}.tflite"], [emulated_device.serial], trials=3,
                               progress=recorders[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in ("add", "conv")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert set(outcomes) == {"add", "conv"}
    for name, outcome in outcomes.items():
        assert outcome.exit_code == 0 and [t.status for t in outcome.trials] == ["ok"] * 3
        sha = outcome.trials[0].model.sha256
        assert all(f"{sha}.tflite" in t.raw_output for t in outcome.trials)  # its own model's output, never the other's
    first, second = sorted(outcomes.values(), key=lambda o: o.trials[0].started_at)
    assert max(t.started_at for t in first.trials) < min(t.started_at for t in second.trials)  # one after the other
    waited = [m for r in recorders.values() for _, m in r.notes if "in use by another run" in m]
    assert len(waited) == 1 and "waiting for it to finish" in waited[0]
    assert not (emulated_device.root / "lab" / "lock").exists()
    assert list((emulated_device.root / "lab" / "runs").iterdir()) == []  # each run's work folder removed


def test_no_wait_stores_the_trials_as_failed_naming_the_holder(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        shell = DeviceShell(adb_server.client, emulated_device.serial)
        assert shell.run(["mkdir", "-p", LOCK_DIR]).returncode == 0
        shell.run(f"echo 'other-host pid={holder.pid} since={int(__import__('time').time())}' > {LOCK_DIR}/owner")
        out = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial], trials=2,
                    wait_for_device=False)
        assert out.exit_code == 2 and [t.status for t in out.trials] == ["failed", "failed"]
        assert "in use by another run (other-host pid=" in (out.trials[0].error or "")
        assert (emulated_device.root / "lab" / "lock").is_dir()  # someone else's lock is left alone
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_dead_process_of_this_machine_is_broken(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    shell = DeviceShell(adb_server.client, emulated_device.serial)
    assert shell.run(["mkdir", "-p", LOCK_DIR]).returncode == 0
    host = os.uname().nodename
    shell.run(f"echo '{host} pid={dead.pid} since={int(__import__('time').time())}' > {LOCK_DIR}/owner")
    recorder = Recorder()
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial], trials=1,
                wait_for_device=False, progress=recorder)
    assert out.exit_code == 0
    assert any("breaking a stale lock" in message for _, message in recorder.notes)
