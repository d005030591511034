"""Statistics over trial latencies: medians with bootstrap CIs, ratios, Mann–Whitney U, verdicts.

Pure functions over lists of floats: no I/O, no store. ``None`` and NaN are missing data and
are dropped before anything is computed. numpy does the bootstrap; the rank test is plain Python
(its exact distribution uses integer arithmetic, so it needs no scipy).

The unit of comparison is one *trial* (one benchmark_model invocation, summarised by one figure,
``host.figures``): invokes inside a trial share warm caches and clocks, so they are not
independent; trials, interleaved across models, are. Trials pooled from several runs are not
independent of their run: ``ratio_ci`` then resamples runs first.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import numpy as np

__all__ = [
    "ALPHA",
    "Estimate",
    "Comparison",
    "Verdict",
    "clean",
    "median_ci",
    "ratio_ci",
    "mann_whitney_u",
    "compare",
    "decide",
    "holm",
    "trimmed_t",
    "yuen_welch",
]

ALPHA = 0.05  # significance level of every test; a check controls it over all its tests (Holm)
TRIM = 0.2  # share of trials trimmed from each end by the gate's test (one of five)

Verdict = Literal["faster", "slower", "no change"]
"""``no change`` means *not shown to differ*: too few trials, a difference the test cannot tell
from noise, or one smaller than the minimum effect size. It never claims the two are equal."""

# Exact Mann–Whitney distribution up to this many (n1 * n2) pairs when there are no ties;
# above it the normal approximation is within ~1e-3 of the exact p-value.
_EXACT_MAX_PAIRS = 2500


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval (95% unless the caller asked otherwise)."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing ``other`` with ``baseline`` (ratio > 1: other is slower)."""

    verdict: Verdict
    ratio: Estimate | None  # median(other) / median(baseline) with a bootstrap CI
    p_value: float | None  # two-sided Mann–Whitney U; None when a side has no values
    n_baseline: int
    n_other: int
    reason: str  # one line saying why this verdict


def clean(values: Iterable[float | None]) -> list[float]:
    """The finite values of ``values``: None, NaN and ±inf are missing data, not numbers."""
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


_CACHED_SIZE = 32  # samples up to this many values have their resampling indices kept (64 sets at most)


def _draw_indices(seed: int, n_boot: int, sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The indices ``default_rng(seed)`` draws to resample samples of ``sizes``, one after the other."""
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, size, size=(n_boot, size)) for size in sizes)


@lru_cache(maxsize=64)
def _kept_indices(seed: int, n_boot: int, sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    drawn = _draw_indices(seed, n_boot, sizes)
    for indices in drawn:
        indices.setflags(write=False)  # shared by every later call
    return drawn


def _resample_indices(seed: int, n_boot: int, sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """``_draw_indices``, drawn once per seed and sizes when the samples are small: they depend on
    nothing else, and the gate and the results site bootstrap many samples of a few trials each
    with the same seed."""
    if max(sizes) <= _CACHED_SIZE:
        return _kept_indices(seed, n_boot, sizes)
    return _draw_indices(seed, n_boot, sizes)


_NETWORK_MAX = 6  # samples up to this size get their bootstrap medians from a sorting network


def _bootstrap_medians(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``np.median(values[indices], axis=1)`` bit for bit: each resample's middle value, or the mean
    of its middle two.

    numpy's median (and sorting rows) pays per row, which on n_boot rows of a few trials is most of
    a bootstrap; for samples up to ``_NETWORK_MAX`` values a sorting network orders the resamples'
    columns instead (min and max select values, so the order statistics are exact).
    """
    n = values.size
    mid = n // 2
    if n > _NETWORK_MAX:
        draws = values[indices]
        draws.sort(axis=1)
        return draws[:, mid] if n % 2 else (draws[:, mid - 1] + draws[:, mid]) / 2.0
    columns = [values[column] for column in indices.T]
    for last in range(n - 1, 0, -1):  # bubble network: after each pass the largest left is at ``last``
        for j in range(last):
            low, high = columns[j], columns[j + 1]
            columns[j], columns[j + 1] = np.minimum(low, high), np.maximum(low, high)
    return columns[mid] if n % 2 else (columns[mid - 1] + columns[mid]) / 2.0


def _bootstrap_grouped_medians(groups: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of a two-level bootstrap: draw the groups (runs) with replacement, then values within each."""
    draws = np.empty(n_boot)
    for i in range(n_boot):
        chosen = rng.integers(0, len(groups), size=len(groups))
        parts = [groups[k][rng.integers(0, groups[k].size, size=groups[k].size)] for k in chosen]
        draws[i] = np.median(np.concatenate(parts))
    return draws


def _quantile(ordered: np.ndarray, q: float) -> float:
    """``np.quantile(draws, q)`` bit for bit (numpy's default "linear" method: (n - 1) * q, then
    numpy's own interpolation), on the draws with the order statistics it reads in place."""
    virtual = (ordered.size - 1) * q
    if virtual >= ordered.size - 1:
        return float(ordered[-1])
    below = math.floor(virtual)
    a, b = float(ordered[below]), float(ordered[below + 1])
    t = virtual - below
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """``np.quantile(draws, [tail, 1 - tail])`` bit for bit; only the four order statistics it
    interpolates between are put in place (a partition, not a sort)."""
    tail = (1.0 - confidence) / 2.0
    last = draws.size - 1
    below = [math.floor(last * q) for q in (tail, 1.0 - tail)]
    ordered = np.partition(draws, sorted({min(k, last) for b in below for k in (b, b + 1)}))
    return _quantile(ordered, tail), _quantile(ordered, 1.0 - tail)


def _check_confidence(confidence: float, n_boot: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")


def median_ci(
    values: Sequence[float | None], confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> Estimate | None:
    """The median of ``values`` with a percentile-bootstrap confidence interval.

    Returns None when there is no finite value. One value gives a zero-width interval. With few
    values (the usual 5 trials) the percentile bootstrap is narrow-ish: its interval is bounded by
    the sample's own extremes, so read it as "where the trials fell", not as a guarantee.
    """
    _check_confidence(confidence, n_boot)
    kept = clean(values)
    if not kept:
        return None
    data = np.asarray(kept, dtype=float)
    point = statistics.median(kept)  # np.median's value: the middle one, or the mean of the middle two
    if data.size == 1:
        return Estimate(point, point, point)
    (indices,) = _resample_indices(seed, n_boot, (data.size,))
    low, high = _interval(_bootstrap_medians(data, indices), confidence)
    return Estimate(point, low, high)


def ratio_ci(
    baseline: Sequence[float | None],
    other: Sequence[float | None],
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    baseline_runs: Sequence[int] | None = None,
) -> Estimate | None:
    """median(other) / median(baseline), with a CI from resampling both sides independently.

    ``baseline_runs`` labels each baseline value with the run it came from when the baseline pools
    several runs: the CI then resamples runs first and trials within them, so run-to-run variation
    (another day, another load) widens it instead of passing for trial-to-trial noise.

    Returns None when a side has no finite value or the baseline median is not positive
    (a ratio to zero latency means nothing).
    """
    _check_confidence(confidence, n_boot)
    pairs = [(v, r) for v, r in zip(baseline, baseline_runs or [0] * len(baseline)) if clean([v])]
    base_values, other_values = [float(v) for v, _ in pairs], clean(other)
    if not base_values or not other_values:
        return None
    base_median = statistics.median(base_values)  # as np.median
    if base_median <= 0.0:
        return None
    point = statistics.median(other_values) / base_median
    base, oth = np.asarray(base_values), np.asarray(other_values)
    runs = sorted({r for _, r in pairs})
    if len(runs) > 1:
        rng = np.random.default_rng(seed)
        groups = [np.asarray([float(v) for v, r in pairs if r == run]) for run in runs]
        base_draws = _bootstrap_grouped_medians(groups, n_boot, rng)
        other_draws = _bootstrap_medians(oth, rng.integers(0, oth.size, size=(n_boot, oth.size)))
    else:
        base_indices, other_indices = _resample_indices(seed, n_boot, (base.size, oth.size))
        base_draws, other_draws = _bootstrap_medians(base, base_indices), _bootstrap_medians(oth, other_indices)
    usable = base_draws > 0.0
    if usable.all():
        ratios = other_draws / base_draws
    elif usable.any():
        ratios = other_draws[usable] / base_draws[usable]
    else:
        return Estimate(point, point, point)
    low, high = _interval(ratios, confidence)
    return Estimate(point, min(low, point), max(high, point))


def _ranks(values: list[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based) of ``values`` and the sizes of tied groups."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mid = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = mid
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _u_counts(m: int, n: int) -> list[int]:
    """How many orderings give U = 0..m*n for samples of m and n without ties.

    The counts are the coefficients of the Gaussian binomial [m+n choose m]_q
    = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), computed with exact integers.
    """
    size = m * n + 1
    coeffs = [0] * size
    coeffs[0] = 1
    for i in range(1, m + 1):
        step = n + i  # multiply by (1 - q^step)
        for k in range(size - 1, step - 1, -1):
            coeffs[k] -= coeffs[k - step]
        for k in range(i, size):  # divide by (1 - q^i)
            coeffs[k] += coeffs[k - i]
    return coeffs


def mann_whitney_u(
    a: Sequence[float | None], b: Sequence[float | None], method: Literal["auto", "exact", "asymptotic"] = "auto"
) -> float:
    """Two-sided p-value of the Mann–Whitney U test that ``a`` and ``b`` come from one distribution.

    ``auto`` uses the exact distribution when there are no ties and n1*n2 <= 2500, otherwise the
    normal approximation with tie correction and continuity correction (the same conventions as
    ``scipy.stats.mannwhitneyu(..., alternative="two-sided")``). ``exact`` with ties falls back to
    the approximation, since the exact table assumes distinct values.

    Raises:
        ValueError: a side has no finite value.
    """
    x, y = clean(a), clean(b)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann–Whitney U needs at least one value on each side")
    ranks, ties = _ranks(x + y)
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2.0
    u = max(u1, n1 * n2 - u1)
    exact = not ties and (method == "exact" or (method == "auto" and n1 * n2 <= _EXACT_MAX_PAIRS))
    if exact:
        counts = _u_counts(min(n1, n2), max(n1, n2))
        at_least = sum(counts[int(round(u)) :])
        return min(1.0, 2.0 * at_least / math.comb(n1 + n2, n1))
    n = n1 + n2
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1)) if n > 1 else 0.0
    sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term))
    if sigma == 0.0:
        return 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / sigma
    return min(1.0, max(0.0, math.erfc(z / math.sqrt(2.0))))


def _trimmed_parts(values: list[float], trim: float) -> tuple[float, float, int]:
    """(winsorized variance, trimmed mean, values left after trimming) of one side of Yuen's test.

    ``g = int(n * trim)`` values are cut from each end; the variance is of the sample with those
    values replaced by the nearest kept one, on ``h - 1`` degrees of freedom (``h = n - 2g``), as in
    Yuen (1974) and ``scipy.stats.ttest_ind(..., trim=)``; ``trim`` below 1/3 keeps ``h`` at 2 or more.
    """
    ordered = sorted(values)
    n = len(ordered)
    g = int(n * trim)
    kept = ordered[g : n - g]
    winsorized = [kept[0]] * g + kept + [kept[-1]] * g
    mean = sum(winsorized) / n
    squares = sum((v - mean) ** 2 for v in winsorized)
    h = n - 2 * g
    return squares / (h - 1), sum(kept) / h, h


def yuen_welch(x: Sequence[float], y: Sequence[float], trim: float = TRIM) -> tuple[float, float]:
    """(t statistic, two-sided p-value) of Yuen's trimmed t-test with Welch's degrees of freedom, in
    closed form, on ``x`` and ``y`` as given (at least two values a side; no logarithms taken).

    The same numbers as ``scipy.stats.ttest_ind(x, y, equal_var=False, trim=trim)`` (checked by a
    test on random samples) at a hundredth of its cost: the gate runs it for every model × device of
    every comparison, and the results site compares every run with the one before. NaN when the
    statistic is undefined (both winsorized variances zero and equal trimmed means).

    Raises:
        ValueError: a side has fewer than two values, or ``trim`` is not in [0, 1/3) (where a side
            of three could be trimmed to one value, whose variance is undefined).
    """
    from scipy.special import stdtr  # Student's t CDF; scipy.special loads far faster than scipy.stats

    if len(x) < 2 or len(y) < 2:
        raise ValueError("Yuen's test needs at least two values on each side")
    if not 0.0 <= trim < 1.0 / 3.0:
        raise ValueError(f"trim must be in [0, 1/3), got {trim}")
    v1, m1, n1 = _trimmed_parts(list(x), trim)
    v2, m2, n2 = _trimmed_parts(list(y), trim)
    vn1, vn2 = v1 / n1, v2 / n2
    try:
        df = (vn1 + vn2) ** 2 / (vn1**2 / (n1 - 1) + vn2**2 / (n2 - 1))
    except ZeroDivisionError:
        df = 1.0  # both variances zero: df does not matter, as in scipy
    denom = math.sqrt(vn1 + vn2)
    d = m1 - m2
    if denom == 0.0:
        t = math.copysign(math.inf, d) if d else math.nan
    else:
        t = d / denom
    return t, 2.0 * float(stdtr(df, -abs(t)))


def trimmed_t(a: Sequence[float | None], b: Sequence[float | None], trim: float = TRIM) -> float | None:
    """Two-sided p-value of Yuen's trimmed t-test (Welch's t on ``trim``-trimmed samples) on the
    logarithms of ``a`` and ``b`` (ratios, not differences).

    The gate's test. Its unit is the trial, already summarised robustly (a trial's p5 invoke), so
    trials scatter little — except a whole trial slowed by a burst of other work: trimming 20% of
    each side (one of five trials) keeps such a trial from hiding a slowdown or faking one, which
    measured across sessions caught 95% of 5% slowdowns where the plain t-test caught 90% and the
    rank test 90% (docs/BENCHMARKS.md). Unlike the rank test (whose smallest two-sided p for 5 vs 5
    is 0.0079) its p-values survive a multiplicity correction over many models and devices.
    Returns None with fewer than two positive values on a side. Two constant sides give 1 when
    equal and 0 when not.
    """
    x = np.log([v for v in clean(a) if v > 0]).tolist()
    y = np.log([v for v in clean(b) if v > 0]).tolist()
    if len(x) < 2 or len(y) < 2:
        return None
    if min(x) == max(x) and min(y) == max(y):
        return 1.0 if x[0] == y[0] else 0.0
    _, p = yuen_welch(x, y, trim)
    return 1.0 if math.isnan(p) else p  # trimmed to constant sides: nothing tells them apart


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input's order: reject where adjusted < alpha.

    Controls the family-wise error rate (the chance of any false alarm among all the tests) at
    alpha without assuming the tests independent.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def decide(
    ratio: Estimate | None,
    p: float | None,
    n_baseline: int,
    n_other: int,
    *,
    min_effect: float,
    alpha: float = 0.05,
) -> Comparison:
    """The verdict from a ratio with its CI and a (possibly multiplicity-adjusted) p-value.

    ``slower`` needs both: p < ``alpha`` and the ratio of medians above ``1 + min_effect``;
    ``faster`` is the mirror image. Anything else is ``no change`` (*not shown to differ*), with the
    reason saying which condition failed. The CI is reported, not required: with five trials a
    single disturbed one widens a percentile-bootstrap CI past 1 even when the test is clear
    (measured: requiring it lost 6 of 108 caught 5% slowdowns and prevented no false alarm).
    """
    x, y = n_baseline, n_other
    if not x or not y:
        return Comparison("no change", ratio, p, x, y, "no successful trials on one side")
    if p is None:
        return Comparison("no change", ratio, p, x, y, f"too few trials to test ({x} vs {y}; at least 2 a side)")
    if ratio is None:
        return Comparison("no change", None, p, x, y, "baseline median is not positive")
    threshold = 1.0 + min_effect
    if p >= alpha:
        return Comparison("no change", ratio, p, x, y, f"difference not significant (p={p:.3g} ≥ {alpha:g})")
    if ratio.value > threshold:
        return Comparison("slower", ratio, p, x, y, f"{ratio.value:.3f}× the baseline (p={p:.3g})")
    if ratio.value < 1.0 / threshold:
        return Comparison("faster", ratio, p, x, y, f"{ratio.value:.3f}× the baseline (p={p:.3g})")
    return Comparison("no change", ratio, p, x, y, f"significant (p={p:.3g}) but within ±{min_effect:.1%}")


def compare(
    baseline: Sequence[float | None],
    other: Sequence[float | None],
    *,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    baseline_runs: Sequence[int] | None = None,
) -> Comparison:
    """Verdict on ``other`` against ``baseline`` (lower is better: these are latencies).

    A two-sided Mann–Whitney U test plus the ratio of medians with its bootstrap CI, judged by
    ``decide``. ``baseline_runs``: see ``ratio_ci``.
    """
    if min_effect < 0.0:
        raise ValueError(f"min_effect must not be negative, got {min_effect}")
    x, y = clean(baseline), clean(other)
    if not x or not y:
        return Comparison("no change", None, None, len(x), len(y), "no successful trials on one side")
    ratio = ratio_ci(baseline, y, confidence=confidence, n_boot=n_boot, seed=seed, baseline_runs=baseline_runs)
    result = decide(ratio, mann_whitney_u(x, y), len(x), len(y), min_effect=min_effect, alpha=alpha)
    if result.p_value is not None and result.p_value >= alpha and 2.0 / math.comb(len(x) + len(y), len(x)) >= alpha:
        reason = f"{result.reason}; {len(x)} vs {len(y)} trials can never reach p<{alpha:g}, use more trials"
        return replace(result, reason=reason)
    return result
