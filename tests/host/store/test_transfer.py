"""Export and import: merging without duplicates; a bad line is reported by number and nothing is imported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from host.errors import StoreError
from host.store import ImportFileError, Store, open_store
from tests.host.synthetic import emulated_device, model_file, phone, synthetic_trial


def _fill(store: Store, seed: int, runs: int = 2) -> list[int]:
    rng = np.random.default_rng(seed)
    ids = []
    for _ in range(runs):
        run_id = store.start_run("bench", {"seed": seed})
        store.save_trials([
            synthetic_trial(run_id, device, model, latency_us=80, rng=rng, position=i * 4 + j * 2 + k)
            for i in range(2)
            for j, device in enumerate((phone(), emulated_device()))
            for k, model in enumerate((model_file(), model_file("pruned.tflite", "pruned")))
        ])
        store.finish_run(run_id, "ok")
        ids.append(run_id)
    return ids


@pytest.fixture
def other(tmp_path: Path) -> Store:
    with open_store(f"sqlite:///{tmp_path / 'other' / 'lab.db'}") as opened:
        yield opened


def test_export_then_import_into_another_store(store: Store, other: Store) -> None:
    ids = _fill(store, 1)
    lines = list(store.export_lines())
    assert json.loads(lines[0])["type"] == "lab-export"
    assert sum(json.loads(line)["type"] == "trial" for line in lines) == 16
    summary = other.import_lines(lines)
    assert (summary.runs_added, summary.trials_added, summary.runs_present, summary.trials_present) == (2, 16, 0, 0)
    for source_id, imported in zip(ids, reversed(other.list_runs())):
        assert other.load_trials(imported.id) == [
            _with_run(t, imported.id) for t in store.load_trials(source_id)
        ]
        assert imported.uid == store.get_run(source_id).uid


def _with_run(trial, run_id):  # type: ignore[no-untyped-def]
    import dataclasses

    return dataclasses.replace(trial, run_id=run_id)


def test_import_is_idempotent_and_merges_both_ways(store: Store, other: Store) -> None:
    _fill(store, 1)
    _fill(other, 2, runs=1)
    lines = list(store.export_lines())
    other.import_lines(lines)
    again = other.import_lines(lines)
    assert (again.runs_added, again.trials_added, again.runs_present, again.trials_present) == (0, 0, 2, 16)
    assert other.count_measurements() == 24
    back = store.import_lines(list(other.export_lines()))  # the merged store back into the first
    assert (back.runs_added, back.trials_added, back.runs_present) == (1, 8, 2)
    assert store.count_measurements() == other.count_measurements() == 24


def test_a_run_exported_while_running_takes_its_final_status_later(store: Store, other: Store) -> None:
    rng = np.random.default_rng(0)
    run_id = store.start_run("bench", {})
    store.save_trial(synthetic_trial(run_id, phone(), model_file(), latency_us=5, rng=rng, position=0))
    other.import_lines(list(store.export_lines()))
    store.save_trial(synthetic_trial(run_id, phone(), model_file(), latency_us=5, rng=rng, position=1))
    store.finish_run(run_id, "ok")
    summary = other.import_lines(list(store.export_lines()))
    assert (summary.trials_added, summary.trials_present) == (1, 1)
    (run,) = other.list_runs()
    assert run.status == "ok" and run.trials_ok == 2


def test_export_since(store: Store) -> None:
    _fill(store, 1)
    from datetime import datetime, timedelta, timezone

    assert len(list(store.export_lines(datetime.now(timezone.utc) + timedelta(hours=1)))) == 1  # the header only


@pytest.mark.parametrize(
    "mutate,line,reason",
    [
        (lambda ls: ls.__setitem__(3, ls[3][:-5]), 4, "not JSON"),
        (lambda ls: ls.__setitem__(3, "[1, 2]"), 4, "not a lab export record"),
        (lambda ls: ls.__setitem__(0, '{"type": "run"}'), 1, "first line must be its header"),
        (lambda ls: ls.__setitem__(0, '{"type": "lab-export", "format": 99}'), 1, "export format 99"),
        (lambda ls: ls.__setitem__(3, ls[3].replace('"avg_us":', '"avg_us":"fast","x":')), 4,
         "trial.result.runs.avg_us: expected a number"),
        (lambda ls: ls.__setitem__(3, ls[3].replace('"status":"ok"', '"status":"great"')), 4,
         "trial.status: expected one of 'ok', 'failed', 'timeout'"),
        (lambda ls: ls.__setitem__(2, ls[2].replace('"sha256":', '"sha":')), 3, "trial.model.sha256: missing"),
        (lambda ls: ls.__setitem__(1, ls[1].replace('"kind":"bench"', '"kind":"nightly"')), 2, "run.kind"),
        (lambda ls: ls.__setitem__(3, ls[3].replace('"type":"trial","run":"', '"type":"trial","run":"x')), 4,
         "which no earlier line defines"),
        (lambda ls: ls.__setitem__(3, '{"type": "metric"}'), 4, "unknown record type 'metric'"),
        (lambda ls: ls.insert(2, ls[1]), 3, "appears twice"),
    ],
)
def test_a_bad_line_is_reported_by_number_and_nothing_is_imported(  # type: ignore[no-untyped-def]
    store: Store, other: Store, mutate, line, reason
) -> None:
    _fill(store, 1, runs=1)
    lines = list(store.export_lines())
    mutate(lines)
    with pytest.raises(ImportFileError) as exc:
        other.import_lines(lines, "runs.jsonl")
    assert exc.value.line == line
    assert f"runs.jsonl, line {line}: " in str(exc.value) and reason in str(exc.value)
    assert str(exc.value).endswith("nothing was imported")
    assert other.count_runs() == 0 and other.count_measurements() == 0


def test_an_empty_file_is_refused(other: Store) -> None:
    with pytest.raises(ImportFileError, match="line 1: empty file"):
        other.import_lines(["", "  "], "empty.jsonl")


def test_a_failure_in_the_last_trial_rolls_back_the_whole_import(store: Store, other: Store) -> None:
    """Valid JSON everywhere, but the last trial breaks a database rule: the runs before it are not kept."""
    _fill(store, 1)
    lines = list(store.export_lines())
    record = json.loads(lines[-1])
    record["trial"]["params"]["threads"] = 10**30  # does not fit SQLite's 64-bit integers
    lines[-1] = json.dumps(record)
    with pytest.raises(StoreError, match="too large"):
        other.import_lines(lines)
    assert other.count_runs() == 0 and other.count_measurements() == 0
