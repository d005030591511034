"""host.bench.summary over hand-built trials."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from host.bench.summary import summarize, trial_figures, trial_peak_memory_mb
from tests.host.synthetic import emulated_device, model_file, phone, synthetic_trial


def _trials(latencies: dict[tuple[str, str], float], n: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    devices = {"emu": emulated_device(), "phone": phone()}
    models = {"dense": model_file("dense.tflite", "dense"), "pruned": model_file("pruned.tflite", "pruned")}
    trials = []
    for i in range(n):
        for (dev, mod), latency in latencies.items():
            trials.append(synthetic_trial(1, devices[dev], models[mod], latency_us=latency, rng=rng, index=i,
                                          noise=0.01))
    return trials, models


def test_summarize_groups_by_device_and_model_in_order_of_appearance() -> None:
    trials, models = _trials({("emu", "dense"): 100.0, ("emu", "pruned"): 100.0,
                              ("phone", "dense"): 200.0, ("phone", "pruned"): 140.0})
    summaries = summarize(trials)
    assert [(s.device.serial, s.model_name) for s in summaries] == [
        ("emulator-5554", "dense.tflite"), ("emulator-5554", "pruned.tflite"),
        ("1A2B3C4D5E", "dense.tflite"), ("1A2B3C4D5E", "pruned.tflite"),
    ]
    dense_phone, pruned_phone = summaries[2], summaries[3]
    assert dense_phone.ratio is None  # the baseline itself
    assert pruned_phone.ratio is not None
    assert pruned_phone.ratio.value == pytest.approx(0.7, rel=0.02)
    assert pruned_phone.baseline_sha256 == models["dense"].sha256
    assert dense_phone.latency_us is not None and dense_phone.latency_us.value == pytest.approx(200, rel=0.02)
    assert dense_phone.trials_ok == 5 and dense_phone.trials_failed == 0
    assert len(dense_phone.values_us) == 5


def test_summarize_statistics_follow_the_trials() -> None:
    trials, _ = _trials({("emu", "dense"): 100.0}, n=3)
    (summary,) = summarize(trials)
    p5s = [t.result.runs.p5_us for t in trials]
    assert summary.statistic == "p5"
    assert summary.latency_us is not None and summary.latency_us.value == pytest.approx(sorted(p5s)[1])
    assert summary.values_us == p5s
    assert summary.typical_us == pytest.approx(sorted(t.result.runs.median_us for t in trials)[1])
    assert summary.tail_us == pytest.approx(sorted(t.result.runs.p95_us for t in trials)[1])
    assert summary.min_us == min(t.result.runs.min_us for t in trials)
    assert summary.init_us == pytest.approx(sorted(t.result.init_us for t in trials)[1])


def test_failed_trials_are_counted_with_their_errors_and_no_latency() -> None:
    trials, models = _trials({("emu", "dense"): 100.0}, n=3)
    failed = synthetic_trial(1, emulated_device(), models["dense"], latency_us=0, rng=np.random.default_rng(),
                             index=3, status="failed")
    (summary,) = summarize([*trials, failed, failed])
    assert summary.trials_ok == 3 and summary.trials_failed == 2
    assert summary.errors == ["Didn't find op for builtin opcode 'CONV_2D' version '6'"]
    assert trial_figures(failed).median_us is None


def test_trials_without_percentiles_fall_back_to_the_fastest_invoke_and_say_so() -> None:
    trials, _ = _trials({("emu", "dense"): 100.0}, n=4)
    old = [dataclasses.replace(t, result=dataclasses.replace(
        t.result, runs=dataclasses.replace(t.result.runs, p5_us=None, median_us=None, p95_us=None))) for t in trials]
    (summary,) = summarize(old)
    assert summary.statistic == "min"
    assert summary.values_us == [t.result.runs.min_us for t in trials]
    assert summary.tail_us is None and summary.typical_us is None
    mixed = summarize([*trials[:2], *old[2:]])[0]
    assert mixed.statistic == "min"  # one statistic per row: the one every trial has


def test_a_trial_dragged_by_slow_invokes_is_flagged_disturbed_not_dropped() -> None:
    trials, _ = _trials({("emu", "dense"): 100.0}, n=5)
    runs = trials[0].result.runs
    dragged = dataclasses.replace(trials[0], result=dataclasses.replace(
        trials[0].result, runs=dataclasses.replace(runs, avg_us=runs.median_us * 1.5)))
    (summary,) = summarize([dragged, *trials[1:]])
    assert summary.disturbed == 1
    assert summary.trials_ok == 5 and len(summary.values_us) == 5


def test_explicit_baseline_and_a_device_without_it() -> None:
    trials, models = _trials({("emu", "dense"): 100.0, ("emu", "pruned"): 50.0, ("phone", "pruned"): 60.0})
    summaries = summarize(trials, baseline_sha256=models["pruned"].sha256)
    by = {(s.device.serial, s.model_name): s for s in summaries}
    assert by[("emulator-5554", "dense.tflite")].ratio.value == pytest.approx(2.0, rel=0.03)
    assert by[("emulator-5554", "pruned.tflite")].ratio is None
    assert by[("1A2B3C4D5E", "pruned.tflite")].ratio is None  # the baseline model itself


def test_peak_memory_takes_the_largest_figure_reported() -> None:
    trials, _ = _trials({("emu", "dense"): 100.0}, n=2)
    trials[0] = dataclasses.replace(trials[0], result=dataclasses.replace(
        trials[0].result, peak_memory_overall_mb=12.0, periodic_peak_memory_mb=None))
    trials[1] = dataclasses.replace(trials[1], result=dataclasses.replace(trials[1].result, periodic_peak_memory_mb=55.5))
    assert trial_peak_memory_mb(trials[0]) == 12.0
    (summary,) = summarize(trials)
    assert summary.peak_memory_mb == 55.5


def test_summarize_nothing() -> None:
    assert summarize([]) == []
