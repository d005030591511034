"""host.bench.stats against independent references (scipy, numpy) and constructed samples with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from host.bench.stats import (
    Estimate,
    clean,
    compare,
    holm,
    mann_whitney_u,
    median_ci,
    ratio_ci,
    trimmed_t,
    yuen_welch,
)


def test_clean_drops_missing_values_and_keeps_numbers() -> None:
    assert clean([1, None, float("nan"), 2.5, float("inf"), -float("inf"), 0]) == [1.0, 2.5, 0.0]


def test_median_ci_of_nothing_is_none() -> None:
    assert median_ci([]) is None
    assert median_ci([None, float("nan")]) is None


def test_median_ci_of_one_value_has_zero_width() -> None:
    assert median_ci([12.5]) == Estimate(12.5, 12.5, 12.5)


def test_median_ci_point_is_the_sample_median_and_inside_the_interval() -> None:
    values = [10.0, 30.0, 20.0, 50.0, 40.0, None]
    estimate = median_ci(values)
    assert estimate is not None
    assert estimate.value == 30.0
    assert 10.0 <= estimate.low <= 30.0 <= estimate.high <= 50.0


def test_median_ci_is_reproducible_with_a_seed() -> None:
    rng = np.random.default_rng(5)
    values = list(rng.normal(100, 10, 15))
    assert median_ci(values, seed=3) == median_ci(values, seed=3)


def test_median_ci_rejects_a_bad_confidence() -> None:
    with pytest.raises(ValueError, match="confidence"):
        median_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        median_ci([1.0, 2.0], n_boot=0)


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time() -> None:
    """Coverage on constructed samples: lognormal latencies whose true median is exp(mu) exactly."""
    rng = np.random.default_rng(20240601)
    mu, true_median = math.log(100.0), 100.0
    hits = 0
    repeats = 300
    for i in range(repeats):
        sample = rng.lognormal(mu, 0.2, 40)
        estimate = median_ci(sample, n_boot=1000, seed=i)
        assert estimate is not None
        hits += estimate.low <= true_median <= estimate.high
    coverage = hits / repeats
    assert 0.90 <= coverage <= 0.99, coverage


def test_ratio_ci_of_an_exactly_scaled_sample() -> None:
    base = [100.0, 102.0, 98.0, 101.0, 99.0, 100.5]
    other = [1.25 * v for v in base]
    ratio = ratio_ci(base, other)
    assert ratio is not None
    assert ratio.value == pytest.approx(1.25)
    assert ratio.low <= 1.25 <= ratio.high
    assert ratio.high - ratio.low < 0.06


def test_ratio_ci_is_none_without_values_or_with_a_zero_baseline() -> None:
    assert ratio_ci([], [1.0]) is None
    assert ratio_ci([1.0], [None]) is None
    assert ratio_ci([0.0, 0.0], [1.0]) is None


def test_ratio_ci_covers_the_true_ratio() -> None:
    rng = np.random.default_rng(7)
    hits, repeats = 0, 200
    for i in range(repeats):
        base = rng.lognormal(math.log(100), 0.1, 30)
        other = rng.lognormal(math.log(120), 0.1, 30)
        estimate = ratio_ci(base, other, n_boot=800, seed=i)
        assert estimate is not None
        hits += estimate.low <= 1.2 <= estimate.high
    assert 0.88 <= hits / repeats <= 0.995


@pytest.mark.parametrize("n1,n2", [(3, 3), (5, 5), (4, 9), (12, 10), (30, 40)])
def test_mann_whitney_exact_matches_scipy(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 * 100 + n2)
    for shift in (0.0, 0.5, 1.5):
        a, b = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
        expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue
        assert mann_whitney_u(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n1,n2", [(5, 5), (20, 25), (60, 70)])
def test_mann_whitney_asymptotic_with_ties_matches_scipy(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 + n2)
    a = np.round(rng.normal(10, 2, n1))  # rounding makes ties
    b = np.round(rng.normal(11, 2, n2))
    expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue
    assert mann_whitney_u(a, b) == pytest.approx(expected, rel=1e-9)
    assert mann_whitney_u(a, b, method="asymptotic") == pytest.approx(expected, rel=1e-9)


def test_mann_whitney_known_values() -> None:
    # complete separation of 3 vs 3: only 2 of the 20 orderings are as extreme
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert mann_whitney_u([4, 5, 6], [1, 2, 3]) == pytest.approx(0.1)
    # 5 vs 5 separated: 2 / C(10, 5)
    assert mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    assert mann_whitney_u([5.0] * 4, [5.0] * 6) == 1.0


def test_mann_whitney_needs_values_on_both_sides() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        mann_whitney_u([], [1.0])
    with pytest.raises(ValueError):
        mann_whitney_u([1.0], [None, float("nan")])


def test_compare_finds_a_clear_slowdown_and_speedup() -> None:
    base = [100.0, 101.0, 99.5, 100.5, 100.2]
    slow = [111.0, 110.5, 112.0, 110.2, 111.5]
    result = compare(base, slow)
    assert result.verdict == "slower"
    assert result.ratio is not None and result.ratio.value == pytest.approx(111.0 / 100.2)
    assert result.p_value == pytest.approx(2 / 252)
    assert compare(slow, base).verdict == "faster"


def test_compare_small_significant_change_is_no_change() -> None:
    base = [100.0, 100.1, 100.2, 100.3, 100.4]
    other = [101.0, 101.1, 101.2, 101.3, 101.4]  # +1%: significant but below the 5% minimum effect
    result = compare(base, other)
    assert result.p_value is not None and result.p_value < 0.05
    assert result.verdict == "no change"
    assert "within ±5.0%" in result.reason


def test_compare_with_too_few_trials_says_so() -> None:
    result = compare([100.0, 101.0], [150.0, 151.0])
    assert result.verdict == "no change"
    assert "can never reach" in result.reason


def test_compare_without_values_on_one_side() -> None:
    result = compare([], [1.0, 2.0])
    assert result.verdict == "no change"
    assert result.ratio is None and result.p_value is None
    assert "no successful trials" in result.reason


def test_compare_rejects_a_negative_minimum_effect() -> None:
    with pytest.raises(ValueError, match="min_effect"):
        compare([1.0], [1.0], min_effect=-0.1)


def test_compare_false_alarm_rate_on_identical_distributions_is_small() -> None:
    """A/A: same distribution on both sides; the verdict should almost never be 'slower'."""
    rng = np.random.default_rng(11)
    alarms = sum(
        compare(rng.lognormal(4.6, 0.05, 5), rng.lognormal(4.6, 0.05, 5), n_boot=200, seed=i).verdict == "slower"
        for i in range(300)
    )
    assert alarms / 300 <= 0.02


_TAILS = [(1.0 - 0.95) / 2.0, 1.0 - (1.0 - 0.95) / 2.0]  # as the first bootstrap spelled them


def _reference_ratio_ci(
    base: list[float], other: list[float], n_boot: int, seed: int, runs: list[int] | None = None
) -> tuple[float, float]:
    """The bootstrap as first written with numpy's median and quantile: the fast one must equal it."""
    rng = np.random.default_rng(seed)
    b, o = np.asarray(base), np.asarray(other)
    if runs is not None:  # two levels: runs, then trials within each
        groups = [b[np.asarray(runs) == run] for run in sorted(set(runs))]
        base_draws = np.empty(n_boot)
        for i in range(n_boot):
            chosen = rng.integers(0, len(groups), size=len(groups))
            parts = [groups[k][rng.integers(0, groups[k].size, size=groups[k].size)] for k in chosen]
            base_draws[i] = np.median(np.concatenate(parts))
    else:
        base_draws = np.median(b[rng.integers(0, b.size, size=(n_boot, b.size))], axis=1)
    other_draws = np.median(o[rng.integers(0, o.size, size=(n_boot, o.size))], axis=1)
    low, high = np.quantile(other_draws / base_draws, _TAILS)
    point = float(np.median(o)) / float(np.median(b))
    return min(float(low), point), max(float(high), point)


def test_bootstrap_cis_equal_numpys_median_and_quantile_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    for i in range(300):
        n1, n2 = (int(n) for n in rng.integers(1, 41, size=2))
        base = rng.lognormal(4.6, 0.1, n1).round(int(rng.integers(0, 4))).tolist()  # ties too
        other = rng.lognormal(4.7, 0.1, n2).tolist()
        n_boot, seed = int(rng.choice([10, 999, 2000])), i % 3
        ratio = ratio_ci(base, other, n_boot=n_boot, seed=seed)
        assert ratio is not None and (ratio.low, ratio.high) == _reference_ratio_ci(base, other, n_boot, seed)
        if i % 10 == 0 and n1 > 1 and n_boot < 2000:
            runs = [k % 3 for k in range(n1)]
            pooled = ratio_ci(base, other, n_boot=n_boot, seed=seed, baseline_runs=runs)
            expected_pooled = _reference_ratio_ci(base, other, n_boot, seed, runs)
            assert pooled is not None and (pooled.low, pooled.high) == expected_pooled
        median = median_ci(other, n_boot=n_boot, seed=seed)
        draws = np.median(np.asarray(other)[np.random.default_rng(seed).integers(0, n2, size=(n_boot, n2))], axis=1)
        expected = np.quantile(draws, _TAILS) if n2 > 1 else [other[0], other[0]]
        assert median is not None and (median.low, median.high) == (float(expected[0]), float(expected[1]))


def test_trimmed_t_on_logs_matches_scipy_and_handles_the_edges() -> None:
    a, b = [100.0, 101.0, 99.5, 100.4, 100.9], [104.0, 105.2, 103.9, 104.8, 104.1]
    expected = scipy_stats.ttest_ind(np.log(a), np.log(b), equal_var=False, trim=0.2).pvalue
    assert trimmed_t(a, b) == pytest.approx(expected, rel=1e-12)
    assert trimmed_t([1.0], b) is None  # fewer than two values a side: no test
    assert trimmed_t([5.0, 5.0], [5.0, 5.0]) == 1.0 and trimmed_t([5.0, 5.0], [6.0, 6.0]) == 0.0


def _close(ours: float, theirs: float) -> bool:
    if math.isinf(theirs) or math.isinf(ours):
        return ours == theirs
    return ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy's, on nearly equal values
@pytest.mark.parametrize("trim", [0.0, 0.1, 0.2, 0.25, 0.32])
def test_yuen_welch_matches_scipy_on_random_samples(trim: float) -> None:
    """The closed form against ``scipy.stats.ttest_ind(trim=)``: sizes 2-40, spreads from 1e-4 to 1,
    outliers, ties, shifts large and none; the same statistic and p-value."""
    rng = np.random.default_rng(2024)
    for i in range(500):
        n1, n2 = rng.integers(2, 41, size=2)
        x = rng.normal(0.0, 10 ** rng.uniform(-4, 0), n1)
        y = rng.normal(rng.choice([0.0, 1e-3, 0.05, 1.0]), 10 ** rng.uniform(-4, 0), n2)
        if i % 7 == 0:
            x[0] += 5.0  # an outlier
        if i % 11 == 0:
            y = np.round(y, 1)  # ties
        t, p = yuen_welch(x.tolist(), y.tolist(), trim)
        expected = scipy_stats.ttest_ind(x, y, equal_var=False, trim=trim)
        assert _close(t, float(expected.statistic)) and _close(p, float(expected.pvalue)), (i, n1, n2)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's on constant samples
def test_yuen_welch_edges_match_scipy() -> None:
    cases = [
        ([1.0, 2.0, 2.0, 2.0, 3.0], [1.0, 2.0, 2.0, 2.0, 3.0]),  # winsorized to constant, equal means: NaN
        ([1.0, 2.0, 2.0, 2.0, 3.0], [1.0, 4.0, 4.0, 4.0, 9.0]),  # winsorized to constant, means differ: p = 0
        ([1.0, 2.0, 2.0, 2.0, 3.0], [3.0, 4.0, 5.0, 6.0, 7.0]),  # one side constant after winsorizing
        ([4.0, 5.0], [6.0, 9.0]),
    ]
    for x, y in cases:
        t, p = yuen_welch(x, y, 0.2)
        expected = scipy_stats.ttest_ind(x, y, equal_var=False, trim=0.2)
        for ours, theirs in ((t, float(expected.statistic)), (p, float(expected.pvalue))):
            assert (math.isnan(ours) and math.isnan(theirs)) or _close(ours, theirs), (x, y)
    with pytest.raises(ValueError, match="two values"):
        yuen_welch([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="trim"):
        yuen_welch([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], trim=0.4)


def test_one_disturbed_trial_neither_hides_a_slowdown_nor_fakes_one() -> None:
    """A whole trial slowed by other work (measured: p5 up 5-15% in one of five trials)."""
    base = [477.0, 503.0, 478.0, 476.0, 477.0]  # one disturbed baseline trial
    slower = [500.0, 501.0, 500.0, 500.0, 501.0]  # a real 5% slowdown
    assert trimmed_t(base, slower) < 0.01
    same = [476.0, 478.0, 477.0, 530.0, 477.0]  # a disturbed candidate trial, no slowdown
    assert trimmed_t(base, same) > 0.3


def test_holm_adjusts_step_down_and_keeps_the_order() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == []
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1


def test_ratio_ci_resamples_runs_when_the_baseline_pools_several() -> None:
    baseline = [100.0, 100.5, 99.8, 112.0, 111.4, 112.3]  # two runs that disagree by 12%
    other = [106.0, 105.8, 106.3]
    runs = [1, 1, 1, 2, 2, 2]
    pooled = ratio_ci(baseline, other)
    by_run = ratio_ci(baseline, other, baseline_runs=runs)
    assert pooled is not None and by_run is not None and pooled.value == by_run.value
    assert (by_run.high - by_run.low) > (pooled.high - pooled.low)
