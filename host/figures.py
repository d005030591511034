"""Which per-trial figure the lab shows, compares and gates on: one choice, named everywhere.

A trial (one benchmark_model invocation) prints several summaries of its measured invokes: the
average, the fastest, and (recent versions) the 5th percentile, median and 95th percentile. The
lab's *headline* is the trial's **p5 invoke**, chosen by measurement across 220 independent
sessions (a fresh emulated device and `lab bench` each) on a shared 2-core machine whose load
changed between sessions (benchmarks/check_error_rates.py, docs/BENCHMARKS.md): across sessions the
median of trial averages varied by 32% (CV), the median invoke by 1.8%, the p5 invoke by 0.7%.
Load only ever adds time, so the low percentile is what the model costs when nothing interferes:
it sat within 1% of the median invoke (477 vs 481 µs), so it still describes a typical inference,
and only with it did the gate reach its targets (no false alarm in 108 session pairs, 95% of 5%
slowdowns caught). A model's latency on a device is the median of its trials' p5 with a bootstrap
CI; ratios, `lab compare` and `lab check` use the same values.

Older benchmark_model versions print no percentiles: such trials fall back along
``HEADLINE_CHAIN`` (the fastest invoke, then the average) and every table names the statistic it
actually used, per row.

The median invoke (``TYPICAL``) is gated too, with a wider threshold: a slowdown that spares the
fastest invokes (stalls in most invokes, late throttling, a slow core half the time) moves it. The
p95 invoke (``TAIL``) is shown; on a shared machine it moves with the load (CV 100% across sessions),
so gating on it is opt-in. A trial whose average exceeds its median by more than ``DISTURBED_RATIO``
had slow invokes (preemption, stalls, throttling): it is flagged and counted, never hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from device_agent.output import RunStats

__all__ = [
    "Statistic",
    "TrialFigures",
    "HEADLINE",
    "HEADLINE_CHAIN",
    "TYPICAL",
    "TAIL",
    "DISTURBED_RATIO",
    "LABELS",
    "label",
    "figures_of",
    "pick",
    "pick_common",
    "disturbed",
]

Statistic = Literal["median", "avg", "p5", "p95", "min"]

HEADLINE: Statistic = "p5"
HEADLINE_CHAIN: tuple[Statistic, ...] = ("p5", "min", "avg")
"""The headline, then what a trial without percentiles (benchmark_model before 2.18) offers instead."""
TYPICAL: Statistic = "median"
TAIL: Statistic = "p95"
DISTURBED_RATIO = 1.10

LABELS: dict[str, str] = {
    "median": "median invoke",
    "avg": "average invoke",
    "p5": "p5 invoke",
    "p95": "p95 invoke",
    "min": "fastest invoke",
    "init": "init time",
    "memory": "peak memory",
    "instructions": "instructions",
}


def label(statistic: str) -> str:
    """How tables name a statistic: ``median invoke``, ``average invoke``, …"""
    return LABELS.get(statistic, statistic)


@dataclass(frozen=True)
class TrialFigures:
    """One successful trial's figures: the per-invoke summaries (µs), init time (µs), peak memory (MB)."""

    avg_us: float | None = None
    median_us: float | None = None
    p5_us: float | None = None
    p95_us: float | None = None
    min_us: float | None = None
    init_us: float | None = None
    peak_memory_mb: float | None = None

    def get(self, statistic: str) -> float | None:
        """The figure named ``statistic`` (``median``, ``avg``, ``p5``, ``p95``, ``min``, ``init``, ``memory``)."""
        if statistic == "init":
            return self.init_us
        if statistic == "memory":
            return self.peak_memory_mb
        return getattr(self, f"{statistic}_us")


def _finite(value: float | None) -> float | None:
    return value if value is not None and value == value and abs(value) != float("inf") else None


def figures_of(runs: RunStats | None, init_us: float | None = None, peak_memory_mb: float | None = None) -> TrialFigures:
    """A trial's figures from its measured-runs line; NaN and infinities are missing, not numbers."""
    if runs is None:
        return TrialFigures(init_us=_finite(init_us), peak_memory_mb=_finite(peak_memory_mb))
    return TrialFigures(
        avg_us=_finite(runs.avg_us),
        median_us=_finite(runs.median_us),
        p5_us=_finite(runs.p5_us),
        p95_us=_finite(runs.p95_us),
        min_us=_finite(runs.min_us),
        init_us=_finite(init_us),
        peak_memory_mb=_finite(peak_memory_mb),
    )


def pick(trials: Sequence[TrialFigures], chain: Sequence[str] = HEADLINE_CHAIN) -> tuple[str, list[float]]:
    """The first statistic of ``chain`` that every trial has, and its values in trial order.

    Trials lacking every statistic of the chain are left out (they printed no timing at all);
    returns the chain's first name and [] when none has any.
    """
    for statistic in chain:
        values = [t.get(statistic) for t in trials]
        if values and all(v is not None for v in values):
            return statistic, [float(v) for v in values if v is not None]
    last = chain[-1]
    values = [v for v in (t.get(last) for t in trials) if v is not None]
    return (last, values) if values else (chain[0], [])


def pick_common(
    a: Sequence[TrialFigures], b: Sequence[TrialFigures], chain: Sequence[str] = HEADLINE_CHAIN
) -> tuple[str, list[float], list[float]]:
    """The first statistic of ``chain`` that every trial on both sides has: (its name, a's values, b's values).

    Two sides are only ever compared on one statistic, so a median is never set against an average.
    """
    for statistic in chain:
        name_a, values_a = pick(a, (statistic,))
        name_b, values_b = pick(b, (statistic,))
        if len(values_a) == len(a) and len(values_b) == len(b) and values_a and values_b:
            return statistic, values_a, values_b
    last = chain[-1]
    return last, pick(a, (last,))[1], pick(b, (last,))[1]


def disturbed(trial: TrialFigures) -> bool:
    """Slow invokes dragged this trial's average more than ``DISTURBED_RATIO`` above its median."""
    if trial.avg_us is None or trial.median_us is None or trial.median_us <= 0:
        return False
    return trial.avg_us > DISTURBED_RATIO * trial.median_us
