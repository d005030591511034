"""The gate's per-trial statistic: robust to a busy machine, and the same on both sides of a comparison."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import numpy as np
import pytest

from host.report import check_run, compare_runs
from host.report._match import gate_values
from host.store import HistoryGroup, Store
from host.store.synthetic import add_synthetic_run, emulated_device, phone


def _group(**lists: list[float]) -> HistoryGroup:
    return HistoryGroup(
        run_id=1,
        run_status="ok",
        run_started_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
        model_sha256="a" * 64,
        model_name="m.tflite",
        role=None,
        device=phone(),
        trials_ok=len(lists["latencies_us"]),
        trials_failed=0,
        **lists,
    )


def test_gate_values_prefer_p5_then_min_then_average() -> None:
    full = _group(latencies_us=[10.0, 11.0], p5_us=[9.0, 9.5], min_us=[8.0, 8.5])
    no_p5 = _group(latencies_us=[10.0, 11.0], p5_us=[9.0], min_us=[8.0, 8.2])  # one trial printed no percentiles
    average_only = _group(latencies_us=[10.0, 11.0])
    assert gate_values(full, full) == ("p5", [9.0, 9.5], [9.0, 9.5])
    assert gate_values(full, no_p5) == ("min", [8.0, 8.5], [8.0, 8.2])  # the same figure on both sides
    assert gate_values(average_only, full) == ("avg", [10.0, 11.0], [10.0, 11.0])


@pytest.mark.parametrize("seed", range(5))
def test_a_busy_machine_neither_hides_a_slowdown_nor_raises_a_false_alarm(store: Store, seed: int) -> None:
    """5% of invokes preempted (2-10x longer): trial averages scatter, 5th-percentile invokes do not."""
    devices = (emulated_device(),)
    base = add_synthetic_run(store, devices=devices, seed=10 * seed, noise=0.02, preempt_rate=0.05)
    same = add_synthetic_run(store, devices=devices, seed=10 * seed + 1, noise=0.02, preempt_rate=0.05)
    slow = add_synthetic_run(store, devices=devices, seed=10 * seed + 2, noise=0.02, preempt_rate=0.05, slowdown=1.1)
    assert check_run(store, run_id=same, baseline=str(base)).exit_code == 0
    result = check_run(store, run_id=slow, baseline=str(base))
    assert result.exit_code == 1
    assert {r.statistic for r in result.rows} == {"p5"}
    comparison = compare_runs(store, base, slow)
    assert {r.verdict for r in comparison.rows} == {"slower"} and {r.statistic for r in comparison.rows} == {"p5"}


def test_trials_without_percentiles_are_judged_on_their_fastest_invoke(store: Store) -> None:
    """benchmark_model before 2.18 prints no p5: the gate falls back to min, labelled as such."""
    base = add_synthetic_run(store, devices=(phone(),), seed=1)
    slow = add_synthetic_run(store, devices=(phone(),), seed=2, slowdown=1.2)
    for run_id in (base, slow):
        trials = store.load_trials(run_id)
        stripped = []
        for t in trials:
            runs = dataclasses.replace(t.result.runs, p5_us=None)
            # another raw output: another content hash, so the copy is stored as new trials
            result = dataclasses.replace(t.result, runs=runs)
            stripped.append(dataclasses.replace(t, result=result, raw_output=t.raw_output + " "))
        copy = store.start_run("bench", {"copy_of": run_id})
        store.save_trials([dataclasses.replace(t, run_id=copy) for t in stripped])
        store.finish_run(copy, "ok")
    result = check_run(store, run_id=slow + 2, baseline=str(base + 2))
    assert result.exit_code == 1 and {r.statistic for r in result.rows} == {"min"}
    assert np.isfinite([r.baseline for r in result.rows]).all()
