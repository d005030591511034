"""The result store's representative operations on SQLite and on PostgreSQL, with the same results:
open (migrations), save and load trials, history, export and import, NaN figures."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from host.store import HistoryFilter, Store, open_store
from host.store._migrate import current_revision, head_revision
from tests.host.synthetic import add_synthetic_run, emulated_device, guide_models, phone, synthetic_trial


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lab.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def test_open_migrates_to_head_once(store_url: str, store: Store) -> None:
    with store._engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    with open_store(store_url) as again:  # already at head: opens without migrating
        assert again.list_runs() == []


def test_trials_round_trip_with_samples(store: Store) -> None:
    rng = np.random.default_rng(7)
    dense, pruned = guide_models()
    run_id = store.start_run("bench", {"threads": 1, "note": "ü"})
    trials = [synthetic_trial(run_id, phone(), m, latency_us=100.0, rng=rng, index=i, position=i)
              for i, m in enumerate((dense, pruned))]
    ids = [store.save_trial(t) for t in trials]
    assert store.save_trial(trials[0]) == ids[0]  # idempotent
    store.finish_run(run_id, "ok")
    loaded = store.load_trials(run_id)
    assert [t.model.sha256 for t in loaded] == [dense.sha256, pruned.sha256]
    assert loaded[0].result is not None and trials[0].result is not None
    assert loaded[0].result.runs.avg_us == pytest.approx(trials[0].result.runs.avg_us)
    assert loaded[0].samples_us == pytest.approx(trials[0].samples_us)
    info = store.get_run(run_id)
    assert (info.status, info.trials_ok, info.config["note"]) == ("ok", 2, "ü")


def test_nan_figures_survive(store: Store) -> None:
    rng = np.random.default_rng(3)
    run_id = store.start_run("bench", {})
    trial = synthetic_trial(run_id, emulated_device(), guide_models()[0], latency_us=50.0, rng=rng)
    assert trial.result is not None and trial.result.runs is not None
    runs = dataclasses.replace(trial.result.runs, std_us=math.nan)
    trial = dataclasses.replace(trial, result=dataclasses.replace(trial.result, runs=runs, init_us=math.nan))
    store.save_trial(trial)
    loaded = store.load_trials(run_id)[0]
    assert loaded.result is not None and loaded.result.runs is not None
    assert math.isnan(loaded.result.runs.std_us) and math.isnan(loaded.result.init_us)


def test_history_and_transfer(store: Store, tmp_path: Path) -> None:
    first = add_synthetic_run(store, trials=3, seed=1)
    second = add_synthetic_run(store, slowdown=1.2, trials=3, seed=2)
    groups = store.history(HistoryFilter(model="dense.tflite", device="Pixel 7"))
    assert [g.run_id for g in groups] == [second, first]
    assert [g.trials_ok for g in groups] == [3, 3]
    lines = list(store.export_lines())
    again = store.import_lines(lines)  # the store's own export: everything is already there
    assert (again.runs_added, again.runs_present) == (0, 2)
    with open_store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        assert copy.import_lines(lines).runs_added == 2
        copied = copy.history(HistoryFilter(model="dense.tflite", device="Pixel 7"))
        assert [g.figures for g in copied] == [g.figures for g in groups]
        third = add_synthetic_run(copy, trials=2, seed=3)
        third_uid = copy.get_run(third).uid
        from_copy = list(copy.export_lines())
    merged = store.import_lines(from_copy)  # and the other way: a SQLite export into this store
    assert (merged.runs_added, merged.runs_present) == (1, 2)
    assert third_uid in {r.uid for r in store.list_runs(limit=None)}


def test_nan_inside_json_columns_survives(store: Store) -> None:
    """NaN in the warm-up line and in a thermal zone (JSON columns): PostgreSQL's JSON has no NaN."""
    rng = np.random.default_rng(5)
    run_id = store.start_run("bench", {})
    trial = synthetic_trial(run_id, phone(), guide_models()[0], latency_us=80.0, rng=rng)
    assert trial.result is not None and trial.result.warmup is not None and trial.state_before is not None
    warmup = dataclasses.replace(trial.result.warmup, std_us=math.nan)
    state = dataclasses.replace(trial.state_before, thermal_c={"cpu": math.nan, "battery": 30.0})
    trial = dataclasses.replace(trial, result=dataclasses.replace(trial.result, warmup=warmup), state_before=state)
    store.save_trial(trial)
    loaded = store.load_trials(run_id)[0]
    assert loaded.result is not None and loaded.result.warmup is not None and loaded.state_before is not None
    assert math.isnan(loaded.result.warmup.std_us)
    assert math.isnan(loaded.state_before.thermal_c["cpu"]) and loaded.state_before.thermal_c["battery"] == 30.0


def test_history_check_and_report_commands(store: Store, store_url: str) -> None:
    from typer.testing import CliRunner

    from host.cli.main import app

    add_synthetic_run(store, trials=5, seed=1)
    latest = add_synthetic_run(store, slowdown=1.3, trials=5, seed=2)
    runner = CliRunner()
    history = runner.invoke(app, ["--db", store_url, "history", "--json"])
    assert history.exit_code == 0, history.output
    assert "dense.tflite" in history.output
    check = runner.invoke(app, ["--db", store_url, "check", "--json"])
    assert check.exit_code == 1, check.output  # the injected 30% slow-down is a regression
    assert f'"id": {latest}' in check.output
    report = runner.invoke(app, ["--db", store_url, "report", "--format", "md"])
    assert report.exit_code == 0, report.output
    assert "pruned.tflite" in report.output
