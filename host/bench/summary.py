"""Per model × device summaries of a set of trials: what `lab bench`, `lab run` and reports print.

A trial's latency is its headline figure (``host.figures``: the median invoke, or what an older
benchmark_model printed instead, named in ``statistic``); a model's latency on a device is the
median of its trials' with a bootstrap CI, and ratios resample the same values.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from host.bench.stats import Estimate, clean, median_ci, ratio_ci
from host.figures import TAIL, TYPICAL, TrialFigures, disturbed, figures_of, pick, pick_common
from host.records import DeviceFacts, Trial

__all__ = ["Summary", "summarize", "trial_figures", "trial_peak_memory_mb", "MIN_TRIALS_FOR_CI"]

MIN_TRIALS_FOR_CI = 3  # below this a bootstrap CI only restates the trials: shown as "n/a (N trials)"


@dataclass
class Summary:
    """One model on one device. Latencies in µs; ``ratio`` is latency(this) / latency(baseline)."""

    model_sha256: str
    model_name: str
    role: str | None
    device: DeviceFacts
    trials_ok: int
    trials_failed: int
    statistic: str  # the per-trial figure behind latency_us: "p5" (the headline) or a fallback
    latency_us: Estimate | None  # median over ok trials of ``statistic``, with its bootstrap CI
    typical_us: float | None  # median over ok trials of their median invoke
    tail_us: float | None  # median over ok trials of their p95 invoke
    min_us: float | None
    init_us: float | None  # median of the trials' init times
    peak_memory_mb: float | None  # the largest peak any trial reported
    disturbed: int  # ok trials whose slow invokes dragged the average (``host.figures.disturbed``)
    instructions: float | None  # median guest instructions per inference (emulated arm64), when counted
    ratio: Estimate | None  # None for the baseline model itself, or when either side has no values
    errors: list[str] = field(default_factory=list)  # distinct errors of failed trials, in order
    values_us: list[float] = field(default_factory=list)  # each ok trial's ``statistic``, in trial order
    figures: list[TrialFigures] = field(default_factory=list)  # each ok trial's figures, in trial order
    baseline_sha256: str | None = None  # the model ``ratio`` is relative to


def trial_peak_memory_mb(trial: Trial) -> float | None:
    """The largest peak-memory figure the trial printed (benchmark_model versions report different ones)."""
    if trial.result is None:
        return None
    figures = clean([trial.result.peak_memory_overall_mb, trial.result.periodic_peak_memory_mb])
    return max(figures) if figures else None


def trial_figures(trial: Trial) -> TrialFigures:
    """The figures of a trial (all missing when it failed or printed no measured runs)."""
    if trial.status != "ok" or trial.result is None:
        return TrialFigures()
    return figures_of(trial.result.runs, trial.result.init_us, trial_peak_memory_mb(trial))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _summary(trials: list[Trial]) -> Summary:
    first = trials[0]
    ok = [t for t in trials if t.status == "ok"]
    figures = [trial_figures(t) for t in ok]
    statistic, values = pick(figures)
    counts = clean([t.result.instructions.median for t in ok if t.result and t.result.instructions])
    errors: list[str] = []
    for t in trials:
        if t.status != "ok":
            message = t.error or t.status
            if message not in errors:
                errors.append(message)
    mins = clean([f.min_us for f in figures])
    peaks = clean([f.peak_memory_mb for f in figures])
    return Summary(
        model_sha256=first.model.sha256,
        model_name=first.model.name,
        role=first.model.role,
        device=first.device,
        trials_ok=len(ok),
        trials_failed=len(trials) - len(ok),
        statistic=statistic,
        latency_us=median_ci(values),
        typical_us=_median(clean([f.get(TYPICAL) for f in figures])),
        tail_us=_median(clean([f.get(TAIL) for f in figures])),
        min_us=min(mins) if mins else None,
        init_us=_median(clean([f.init_us for f in figures])),
        peak_memory_mb=max(peaks) if peaks else None,
        disturbed=sum(disturbed(f) for f in figures),
        instructions=_median(counts),
        ratio=None,
        errors=errors,
        values_us=values,
        figures=figures,
    )


def summarize(trials: Sequence[Trial], baseline_sha256: str | None = None) -> list[Summary]:
    """One Summary per device and model file (sha256 and name: two files with the same bytes under
    different names keep a row each), devices and models in order of first appearance.

    ``baseline_sha256`` is the model every other model's ratio is relative to on the same device
    (its first file name); by default the first model in trial order. A device where the baseline
    has no successful trial gets no ratios.
    """
    if not trials:
        return []
    baseline_sha = baseline_sha256 or trials[0].model.sha256
    baseline = next(((t.model.sha256, t.model.name) for t in trials if t.model.sha256 == baseline_sha), None)
    groups: dict[tuple[str, str, str], list[Trial]] = {}
    device_order: dict[str, int] = {}
    model_order: dict[tuple[str, str], int] = {}
    for trial in trials:
        device_order.setdefault(trial.device.serial, len(device_order))
        model_order.setdefault((trial.model.sha256, trial.model.name), len(model_order))
        groups.setdefault((trial.device.serial, trial.model.sha256, trial.model.name), []).append(trial)
    keys = sorted(groups, key=lambda key: (device_order[key[0]], model_order[key[1:]]))
    summaries = [_summary(groups[key]) for key in keys]
    by_key = {(s.device.serial, s.model_sha256, s.model_name): s for s in summaries}
    for summary in summaries:
        base = by_key.get((summary.device.serial, *baseline)) if baseline else None
        if base is None or summary is base:
            continue
        _, base_values, values = pick_common(base.figures, summary.figures)
        summary.ratio = ratio_ci(base_values, values)
        summary.baseline_sha256 = baseline_sha
    return summaries
