"""The gate: one statistic from table to gate, failures fail it, Holm over its tests, a tail test."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import numpy as np
import pytest

from host.figures import TrialFigures
from host.report import check_run, compare_runs
from host.report._match import gate_values
from host.report.check import check_groups
from host.store import HistoryGroup, Store
from tests.host.synthetic import add_synthetic_run, emulated_device, guide_models, phone


def _group(figures: list[TrialFigures]) -> HistoryGroup:
    return HistoryGroup(
        run_id=1,
        run_status="ok",
        run_started_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
        model_sha256="a" * 64,
        model_name="m.tflite",
        role=None,
        device=phone(),
        trials_ok=len(figures),
        trials_failed=0,
        figures=figures,
        figure_runs=[1] * len(figures),
    )


def test_gate_values_use_the_p5_invoke_else_the_fastest_else_the_average_on_both_sides() -> None:
    full = _group([TrialFigures(avg_us=10.0, p5_us=8.5, min_us=8.0), TrialFigures(avg_us=11.0, p5_us=9.0, min_us=8.2)])
    old = _group([TrialFigures(avg_us=10.0, min_us=7.9), TrialFigures(avg_us=12.0, min_us=8.1)])  # no percentiles
    averages = _group([TrialFigures(avg_us=10.0), TrialFigures(avg_us=12.0)])
    assert gate_values(full, full) == ("p5", [8.5, 9.0], [8.5, 9.0])
    assert gate_values(full, old) == ("min", [8.0, 8.2], [7.9, 8.1])  # one statistic for both sides
    assert gate_values(full, averages) == ("avg", [10.0, 11.0], [10.0, 12.0])


@pytest.mark.parametrize("seed", range(5))
def test_a_busy_machine_neither_hides_a_slowdown_nor_raises_a_false_alarm(store: Store, seed: int) -> None:
    """5% of invokes preempted (2-10x longer): trial averages scatter, p5 invokes do not."""
    devices = (emulated_device(),)
    base = add_synthetic_run(store, devices=devices, seed=10 * seed, noise=0.02, preempt_rate=0.05)
    same = add_synthetic_run(store, devices=devices, seed=10 * seed + 1, noise=0.02, preempt_rate=0.05)
    slow = add_synthetic_run(store, devices=devices, seed=10 * seed + 2, noise=0.02, preempt_rate=0.05, slowdown=1.1)
    assert check_run(store, run_id=same, baseline=str(base)).exit_code == 0
    result = check_run(store, run_id=slow, baseline=str(base))
    assert result.exit_code == 1
    latency = [r for r in result.rows if r.test == "latency"]
    assert {r.statistic for r in latency} == {"p5"} and all(r.outcome == "regression" for r in latency)
    comparison = compare_runs(store, base, slow)
    assert {r.verdict for r in comparison.rows} == {"slower"} and {r.statistic for r in comparison.rows} == {"p5"}


def test_trials_without_percentiles_are_judged_on_their_fastest_invoke_labelled_so(store: Store) -> None:
    """benchmark_model before 2.18 prints no percentiles: the gate falls back to the fastest invoke, and says so."""
    base = add_synthetic_run(store, devices=(phone(),), seed=1)
    slow = add_synthetic_run(store, devices=(phone(),), seed=2, slowdown=1.2)
    for run_id in (base, slow):
        stripped = []
        for t in store.load_trials(run_id):
            runs = dataclasses.replace(t.result.runs, p5_us=None, median_us=None, p95_us=None)
            # another raw output: another content hash, so the copy is stored as new trials
            stripped.append(dataclasses.replace(t, result=dataclasses.replace(t.result, runs=runs), raw_output=t.raw_output + " "))
        copy = store.start_run("bench", {"copy_of": run_id})
        store.save_trials([dataclasses.replace(t, run_id=copy) for t in stripped])
        store.finish_run(copy, "ok")
    result = check_run(store, run_id=slow + 2, baseline=str(base + 2))
    assert result.exit_code == 1
    assert {r.statistic for r in result.rows if r.test == "latency"} == {"min"}
    assert any("typical not tested" in reason for reason in result.reasons)
    assert np.isfinite([r.baseline for r in result.rows]).all()


def test_a_model_that_stopped_running_fails_the_gate(store: Store) -> None:
    base = add_synthetic_run(store, devices=(phone(),), seed=1)
    broken = add_synthetic_run(store, devices=(phone(),), seed=2, failing=("pruned.tflite",))
    result = check_run(store, run_id=broken, baseline=str(base))
    assert result.exit_code == 1
    (failed,) = [r for r in result.rows if r.outcome == "failed"]
    assert failed.model_name == "pruned.tflite" and "no successful trial" in failed.reason
    assert "CONV_2D" in failed.reason  # the trials' own error
    assert all(r.outcome == "ok" for r in result.rows if r.model_name == "dense.tflite")


def test_a_candidate_whose_every_trial_failed_exits_1_not_2(store: Store) -> None:
    base = add_synthetic_run(store, devices=(phone(),), seed=1)
    dead = add_synthetic_run(store, devices=(phone(),), seed=2, failing=("dense.tflite", "pruned.tflite"))
    result = check_run(store, run_id=dead, baseline=str(base))
    assert result.exit_code == 1 and {r.outcome for r in result.rows} == {"failed"}


def test_a_model_missing_from_the_candidate_fails_unless_allowed(store: Store) -> None:
    dense, pruned = guide_models()
    base = add_synthetic_run(store, devices=(phone(),), seed=1)
    removed = add_synthetic_run(store, devices=(phone(),), models=(dense,), seed=2)
    result = check_run(store, run_id=removed, baseline=str(base))
    assert result.exit_code == 1
    (missing,) = [r for r in result.rows if r.outcome == "missing"]
    assert missing.model_name == "pruned.tflite" and "--allow-missing" in missing.reason
    allowed = check_run(store, run_id=removed, baseline=str(base), allow_missing=True)
    assert allowed.exit_code == 0 and any("allowed by --allow-missing" in r for r in allowed.reasons)


def test_disjoint_models_exit_2_naming_both_sides(store: Store) -> None:
    dense, _ = guide_models()
    other = dataclasses.replace(dense, name="other.tflite", sha256="f" * 64, role=None)
    base = add_synthetic_run(store, devices=(phone(),), models=(dense,), seed=1)
    cand = add_synthetic_run(store, devices=(phone(),), models=(other,), seed=2)
    dense_only = dataclasses.replace(dense, role=None)
    del dense_only
    result = check_run(store, run_id=cand, baseline=str(base))
    assert result.exit_code == 2
    assert "dense.tflite" in result.reasons[0] and "other.tflite" in result.reasons[0]


def test_holm_controls_the_family_and_is_stated(store: Store) -> None:
    base = add_synthetic_run(store, seed=1)
    slow = add_synthetic_run(store, seed=2, slowdown=1.2)
    result = check_run(store, run_id=slow, baseline=str(base))
    tested = [r for r in result.rows if r.p_value is not None]
    assert len(tested) == 8  # 2 models × 2 devices × (latency, typical)
    assert "Holm over 8 test(s)" in result.family
    assert all(r.p_adjusted is not None and r.p_adjusted >= r.p_value for r in tested)
    assert result.exit_code == 1


def test_check_groups_on_loaded_groups_gives_check_runs_result(store: Store) -> None:
    """The results site gates every run from groups it loaded for many runs at once: the same rows,
    p-values, CIs, verdicts and reasons as `lab check`, a missing model allowed or not."""
    dense, _ = guide_models()
    base = add_synthetic_run(store, seed=1)
    slow = add_synthetic_run(store, seed=2, slowdown=1.2)
    fewer = add_synthetic_run(store, models=(dense,), seed=3)
    for cand, prev, allow in ((slow, base, False), (fewer, slow, True), (fewer, slow, False)):
        expected = check_run(store, run_id=cand, baseline=str(prev), allow_missing=allow)
        groups = store.run_groups([prev, cand])
        result = check_groups(
            store.get_run(cand),
            [store.get_run(prev)],
            [g for g in groups if g.run_id == prev],
            [g for g in groups if g.run_id == cand],
            allow_missing=allow,
        )
        assert result == expected


def test_a_slowdown_that_spares_the_fastest_invokes_is_caught_by_the_median_test(store: Store) -> None:
    """Stalls in most invokes (a slow core, late throttling): the p5 barely moves, the median does."""
    devices = (phone(),)
    dense, _ = guide_models()
    base = add_synthetic_run(store, devices=devices, models=(dense,), seed=1, noise=0.02, trials=8)
    stalls = add_synthetic_run(store, devices=devices, models=(dense,), seed=2, noise=0.02, trials=8, preempt_rate=0.6)
    result = check_run(store, run_id=stalls, baseline=str(base))
    by_test = {r.test: r for r in result.rows}
    assert by_test["latency"].outcome == "ok" and by_test["latency"].statistic == "p5"  # the fastest invokes held
    assert by_test["typical"].outcome == "regression" and by_test["typical"].statistic == "median"
    assert result.exit_code == 1
    assert "tail" not in by_test  # the p95 is gated only when asked
    tail = check_run(store, run_id=stalls, baseline=str(base), max_tail_regression=0.5)
    assert {r.test: r.outcome for r in tail.rows}["tail"] == "regression"


def test_init_and_memory_are_gated_only_when_asked(store: Store) -> None:
    base = add_synthetic_run(store, devices=(phone(),), seed=1)
    same = add_synthetic_run(store, devices=(phone(),), seed=2)
    plain = check_run(store, run_id=same, baseline=str(base))
    assert {r.test for r in plain.rows} == {"latency", "typical"}
    gated = check_run(store, run_id=same, baseline=str(base), max_init_regression=0.5, max_memory_regression=0.1)
    assert {r.test for r in gated.rows} == {"latency", "typical", "init", "memory"}
    assert gated.exit_code == 0
    memory = [r for r in gated.rows if r.test == "memory"]
    assert all(r.statistic == "memory" and r.baseline == pytest.approx(47.7) for r in memory)


def test_last_n_resamples_runs_so_run_to_run_shifts_widen_the_ci(store: Store) -> None:
    devices = (phone(),)
    dense, _ = guide_models()
    runs = [add_synthetic_run(store, devices=devices, models=(dense,), seed=s, slowdown=f)
            for s, f in ((1, 1.0), (2, 1.12), (3, 0.95))]
    cand = add_synthetic_run(store, devices=devices, models=(dense,), seed=4, slowdown=1.08)
    pooled = check_run(store, run_id=cand, baseline="last:3")
    assert {b.id for b in pooled.baselines} == set(runs)
    (row,) = [r for r in pooled.rows if r.test == "latency"]
    single = check_run(store, run_id=cand, baseline=str(runs[0]))
    (one,) = [r for r in single.rows if r.test == "latency"]
    # the run-level CI spans the baseline runs' spread; one run's CI only its trials'
    assert (row.ratio.high - row.ratio.low) > 3 * (one.ratio.high - one.ratio.low)
    assert row.outcome == "ok"
