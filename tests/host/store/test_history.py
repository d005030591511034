"""History: filters by model, device and dates, newest first, limits."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import create_engine, update

from host.store import HistoryFilter, Store
from host.store._models import SqlRun, to_db_time
from tests.host.synthetic import emulated_device, model_file, phone, synthetic_trial

DAY0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def filled(store: Store, db_url: str) -> Store:
    """Three runs a day apart; dense+pruned on a phone and an emulated device; one failed trial in run 2."""
    rng = np.random.default_rng(0)
    dense, pruned = model_file(), model_file("pruned.tflite", "pruned")
    for day in range(3):
        run_id = store.start_run("run", {"day": day})
        trials = []
        for i in range(3):
            for device in (phone(), emulated_device()):
                for model, latency in ((dense, 100.0), (pruned, 70.0)):
                    trials.append(synthetic_trial(run_id, device, model, latency_us=latency, rng=rng, index=i,
                                                  position=len(trials), started_at=DAY0 + timedelta(days=day)))
        if day == 1:
            trials.append(synthetic_trial(run_id, phone(), dense, latency_us=0, rng=rng, index=3, position=99,
                                          status="failed", started_at=DAY0 + timedelta(days=1)))
        store.save_trials(trials)
        store.finish_run(run_id, "ok")
    # runs' start times are "now"; spread them over the days for the date filters
    engine = create_engine(db_url)
    with engine.begin() as connection:
        for run_id in (1, 2, 3):
            moved = to_db_time(DAY0 + timedelta(days=run_id - 1))
            connection.execute(update(SqlRun).where(SqlRun.id == run_id).values(started_at=moved))
    engine.dispose()
    return store


def test_everything_newest_first(filled: Store) -> None:
    groups = filled.history(HistoryFilter())
    assert len(groups) == 12
    assert [g.run_id for g in groups[:4]] == [3, 3, 3, 3]
    assert [g.run_id for g in groups[-4:]] == [1, 1, 1, 1]
    first = groups[0]
    assert first.trials_ok == 3 and len(first.figures) == 3 and first.figure_runs == [first.run_id] * 3
    assert first.threads == [1] and first.use_xnnpack == [True] and len(first.tools) == 1


def test_filter_by_model_name_role_or_sha_prefix(filled: Store) -> None:
    pruned = model_file("pruned.tflite", "pruned")
    for model in ("pruned.tflite", "pruned", pruned.sha256[:8], pruned.sha256.upper()[:12]):
        groups = filled.history(HistoryFilter(model=model))
        assert {g.model_name for g in groups} == {"pruned.tflite"}, model
        assert len(groups) == 6
    assert filled.history(HistoryFilter(model="nothing.tflite")) == []
    assert filled.history(HistoryFilter(model="abc")) == []  # too short to be a sha prefix


def test_filter_by_device_serial_or_model(filled: Store) -> None:
    by_serial = filled.history(HistoryFilter(device="1A2B3C4D5E"))
    by_model = filled.history(HistoryFilter(device="pixel 7"))
    assert len(by_serial) == len(by_model) == 6
    assert {g.device.serial for g in by_model} == {"1A2B3C4D5E"}
    assert filled.history(HistoryFilter(device="nope")) == []


def test_filters_combine_and_failed_trials_are_counted(filled: Store) -> None:
    groups = filled.history(HistoryFilter(model="dense.tflite", device="1A2B3C4D5E"))
    assert [g.run_id for g in groups] == [3, 2, 1]
    assert [(g.trials_ok, g.trials_failed) for g in groups] == [(3, 0), (3, 1), (3, 0)]


def test_since_until_and_limit(filled: Store) -> None:
    since = filled.history(HistoryFilter(since=DAY0 + timedelta(days=1)))
    assert {g.run_id for g in since} == {2, 3}
    until = filled.history(HistoryFilter(until=DAY0 + timedelta(hours=1)))
    assert {g.run_id for g in until} == {1}
    window = filled.history(HistoryFilter(since=DAY0 + timedelta(hours=12), until=DAY0 + timedelta(days=1, hours=1)))
    assert {g.run_id for g in window} == {2}
    limited = filled.history(HistoryFilter(limit=5))
    assert len(limited) == 5 and {g.run_id for g in limited} == {3, 2}
    assert len(filled.history(HistoryFilter(limit=None))) == 12


def test_empty_store(store: Store) -> None:
    assert store.history(HistoryFilter()) == []


def test_run_groups(filled: Store) -> None:
    groups = filled.run_groups([2])
    assert len(groups) == 4 and {g.run_id for g in groups} == {2}
    assert filled.run_groups([99]) == []


def test_a_device_renamed_by_adb_over_tcp_is_a_new_serial_same_hardware(store: Store) -> None:
    rng = np.random.default_rng(1)
    run_id = store.start_run("bench", {})
    wifi = dataclasses.replace(phone(), serial="192.168.1.20:5555")
    store.save_trials([
        synthetic_trial(run_id, phone(), model_file(), latency_us=10, rng=rng, position=0),
        synthetic_trial(run_id, wifi, model_file(), latency_us=10, rng=rng, position=1),
    ])
    serials = {g.device.serial for g in store.history(HistoryFilter(device="Pixel 7"))}
    assert serials == {"1A2B3C4D5E", "192.168.1.20:5555"}
