"""Parallel writers (threads and processes) and a writer killed with SIGKILL mid-write."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from host.store import Store, open_store
from tests.host.synthetic import emulated_device, model_file, synthetic_trial

WRITER = Path(__file__).with_name("writer.py")
REPO = Path(__file__).resolve().parents[3]


def _writer(url: str, batches: int, size: int, seed: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, str(batches), str(size), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _save_from_threads(stores: list[Store], run_id: int, per_thread: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def work(index: int) -> None:
        rng = np.random.default_rng(index)
        device = emulated_device(serial=f"emulator-{5554 + 2 * index}")
        try:
            for i in range(per_thread):
                trial = synthetic_trial(run_id, device, model_file(), latency_us=50, rng=rng, position=i, runs=20)
                stores[index % len(stores)].save_trial(trial)
        except BaseException as exc:  # collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_threads_sharing_one_store(store: Store) -> None:
    run_id = store.start_run("bench", {})
    assert _save_from_threads([store], run_id, 15) == []
    trials = store.load_trials(run_id)
    assert len(trials) == 90
    assert len({t.device.serial for t in trials}) == 6


def test_threads_with_their_own_stores(db_url: str) -> None:
    stores = [open_store(db_url) for _ in range(3)]
    try:
        run_id = stores[0].start_run("bench", {})
        assert _save_from_threads(stores, run_id, 10) == []
        assert len(stores[1].load_trials(run_id)) == 60
    finally:
        for opened in stores:
            opened.close()


def test_two_processes_write_at_once(db_url: str) -> None:
    writers = [_writer(db_url, 8, 5, seed) for seed in (1, 2)]
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert out.strip().endswith("saved 40")
    with open_store(db_url) as store:
        runs = store.list_runs()
        assert [r.status for r in runs] == ["ok", "ok"]
        assert [r.trials_ok for r in runs] == [40, 40]
        assert store.count_measurements() == 80


def test_kill_9_mid_write_leaves_a_consistent_store_and_an_interrupted_run(db_url: str) -> None:
    size = 25
    writer = _writer(db_url, 0, size, 7)
    assert writer.stdout is not None
    run_line = writer.stdout.readline()
    assert run_line.startswith("run "), writer.stderr.read() if writer.stderr else ""
    run_id = int(run_line.split()[1])
    for _ in range(3):  # a few batches are in; the process is busy writing the next one
        assert writer.stdout.readline().startswith("saved")
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdout.close()
    writer.stderr.close()
    path = db_url.removeprefix("sqlite:///")
    with open_store(db_url) as store:
        run = store.get_run(run_id)
        assert run.status == "interrupted" and run.finished_at is not None
        trials = store.load_trials(run_id)
        assert len(trials) >= 3 * size
        assert len(trials) % size == 0  # each batch is one transaction: all of it or none
        assert all(t.samples_us is not None and len(t.samples_us) == 200 for t in trials)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        orphans = raw.execute(
            "SELECT COUNT(*) FROM measurement m LEFT JOIN sample s ON s.measurement_id = m.id "
            "WHERE s.measurement_id IS NULL"
        ).fetchone()[0]
        assert orphans == 0


def test_a_running_run_of_a_live_process_is_left_alone(db_url: str) -> None:
    with open_store(db_url) as first:
        run_id = first.start_run("bench", {})
        with open_store(db_url) as second:  # same process, still alive: not interrupted
            assert second.get_run(run_id).status == "running"
