"""Saving and loading trials: every field survives the round trip; bad input is refused clearly."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from device_agent.output import BenchmarkResult, RunStats
from host.bench.summary import summarize
from host.errors import NotFoundError, StoreError
from host.records import Trial
from host.store import Store
from tests.host.synthetic import emulated_device, model_file, phone, synthetic_trial


def _run_with(store: Store, rng: np.random.Generator, n: int = 3) -> tuple[int, list[Trial]]:
    run_id = store.start_run("bench", {"models": ["dense.tflite", "pruned.tflite"], "trials": n})
    trials = []
    for i in range(n):
        for j, (model, latency) in enumerate([(model_file(), 100.0), (model_file("pruned.tflite", "pruned"), 70.0)]):
            start = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=2 * i + j)
            trials.append(synthetic_trial(run_id, phone(), model, latency_us=latency, rng=rng, index=i,
                                          position=2 * i + j, started_at=start))
    for trial in trials:
        store.save_trial(trial)
    store.finish_run(run_id, "ok")
    return run_id, trials


def test_trials_round_trip_exactly(store: Store, rng: np.random.Generator) -> None:
    run_id, trials = _run_with(store, rng)
    loaded = store.load_trials(run_id)
    assert loaded == trials
    assert loaded[0].samples_us == trials[0].samples_us
    assert loaded[0].result.warmup == trials[0].result.warmup
    assert loaded[0].state_before.thermal_c == {"cpu-0-0": 41.5, "battery": 30.1}


def test_summaries_of_a_stored_run_equal_those_of_the_original_trials(store: Store, rng: np.random.Generator) -> None:
    run_id, trials = _run_with(store, rng, n=5)
    assert summarize(store.load_trials(run_id)) == summarize(trials)


def test_nan_is_kept_as_nan_not_as_a_number(store: Store, rng: np.random.Generator, db_url: str) -> None:
    run_id = store.start_run("bench", {})
    trial = synthetic_trial(run_id, phone(), model_file(), latency_us=50, rng=rng)
    runs = dataclasses.replace(trial.result.runs, std_us=math.nan)
    trial = dataclasses.replace(trial, result=dataclasses.replace(trial.result, runs=runs, init_us=math.nan))
    measurement_id = store.save_trial(trial)
    (loaded,) = store.load_trials(run_id)
    assert math.isnan(loaded.result.runs.std_us) and math.isnan(loaded.result.init_us)
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as raw:
        std, flags = raw.execute("SELECT std_us, nan_fields FROM measurement WHERE id = ?", (measurement_id,)).fetchone()
    assert std is None and "std_us" in flags


def test_failed_trial_without_result_round_trips(store: Store, rng: np.random.Generator) -> None:
    run_id = store.start_run("bench", {})
    failed = synthetic_trial(run_id, emulated_device(), model_file(), latency_us=0, rng=rng, status="failed")
    timeout = dataclasses.replace(failed, status="timeout", position=1, error="timed out after 300 s", tool=None)
    store.save_trial(failed)
    store.save_trial(timeout)
    assert store.load_trials(run_id) == [failed, timeout]
    info = store.get_run(run_id)
    assert (info.trials_ok, info.trials_failed) == (0, 2)


def test_a_result_field_unknown_to_the_columns_is_kept(store: Store, rng: np.random.Generator) -> None:
    """Short and (all same) summary lines: RunStats with only count and curr, warm-up None, no samples."""
    run_id = store.start_run("bench", {})
    result = BenchmarkResult(runs=RunStats(count=1, curr_us=812.0), warnings=("no stats",), use_xnnpack=False)
    trial = dataclasses.replace(
        synthetic_trial(run_id, phone(), model_file(), latency_us=1, rng=rng, keep_samples=False), result=result
    )
    store.save_trial(trial)
    assert store.load_trials(run_id) == [trial]


def test_saving_the_same_trial_twice_keeps_one_row(store: Store, rng: np.random.Generator) -> None:
    run_id = store.start_run("bench", {})
    trial = synthetic_trial(run_id, phone(), model_file(), latency_us=10, rng=rng)
    first = store.save_trial(trial)
    assert store.save_trial(trial) == first
    assert store.save_trials([trial, trial]) == [first, first]
    assert store.count_measurements() == 1


def test_devices_artifacts_and_tools_are_upserted(store: Store, rng: np.random.Generator) -> None:
    run_id = store.start_run("bench", {})
    plain = model_file(role=None)
    built = dataclasses.replace(plain, role="dense", build_id="b123", manifest={"files": {"dense": {"accuracy": 0.7}}})
    updated_phone = dataclasses.replace(phone(), release="15", sdk=35)
    store.save_trial(synthetic_trial(run_id, phone(), plain, latency_us=10, rng=rng, position=0))
    store.save_trial(synthetic_trial(run_id, updated_phone, built, latency_us=10, rng=rng, position=1))
    first, second = store.load_trials(run_id)
    assert first.model == second.model == built  # a later build fills the role and manifest in
    assert first.device.release == "15" and first.device.sdk == 35  # OS facts follow the latest trial


def test_bulk_save_returns_ids_in_order(store: Store, rng: np.random.Generator) -> None:
    run_id = store.start_run("bench", {})
    trials = [synthetic_trial(run_id, phone(), model_file(), latency_us=10, rng=rng, position=i) for i in range(40)]
    ids = store.save_trials(trials)
    assert ids == sorted(ids) and len(set(ids)) == 40
    assert store.load_trials(run_id) == trials


def test_saving_a_trial_without_run_or_of_an_unknown_run_fails(store: Store, rng: np.random.Generator) -> None:
    trial = synthetic_trial(None, phone(), model_file(), latency_us=10, rng=rng)
    with pytest.raises(StoreError, match="no run_id: start a run"):
        store.save_trial(trial)
    with pytest.raises(NotFoundError, match="run 999 is not in"):
        store.save_trial(dataclasses.replace(trial, run_id=999))
    with pytest.raises(StoreError, match="trial status 'weird'"):
        store.save_trial(dataclasses.replace(trial, run_id=store.start_run("bench", {}), status="weird"))
    assert store.count_measurements() == 0


def test_run_lifecycle_and_bad_input(store: Store) -> None:
    run_id = store.start_run("run", {"path": __file__, "when": datetime(2025, 1, 1)})
    info = store.get_run(run_id)
    assert info.status == "running" and info.kind == "run" and info.pid is not None
    assert info.config["when"] == "2025-01-01T00:00:00"
    store.finish_run(run_id, "partial")
    assert store.get_run(run_id).status == "partial"
    assert store.get_run(run_id).finished_at is not None
    with pytest.raises(StoreError, match="run kind 'nightly'"):
        store.start_run("nightly", {})
    with pytest.raises(StoreError, match="finishes as one of ok, partial, failed, interrupted"):
        store.finish_run(run_id, "done")
    for call in (lambda: store.finish_run(42, "ok"), lambda: store.get_run(42), lambda: store.load_trials(42)):
        with pytest.raises(NotFoundError, match="run 42 is not in"):
            call()


def test_list_runs_newest_first_and_latest(store: Store) -> None:
    assert store.latest_run_id() is None and store.list_runs() == []
    ids = [store.start_run("bench", {"i": i}) for i in range(4)]
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs(limit=2)] == ids[:1:-1]
    assert store.latest_run_id() == ids[-1]
    assert store.count_runs() == 4
    for run_id in ids:
        store.finish_run(run_id, "ok")
    assert [r.id for r in store.runs_before(ids[-1], 2)] == [ids[2], ids[1]]
    assert store.runs_before(ids[0], 3) == []
