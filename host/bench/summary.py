"""Per model × device summaries of a set of trials: what `lab bench`, `lab run` and reports print.

The latency of a trial is its ``result.runs.avg_us`` (benchmark_model's average over the measured
invokes); a model's latency on a device is the median of its trials' averages with a bootstrap CI.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from host.bench.stats import Estimate, clean, median_ci, ratio_ci
from host.records import DeviceFacts, Trial

__all__ = ["Summary", "summarize", "trial_latency_us", "trial_peak_memory_mb"]


@dataclass
class Summary:
    """One model on one device. Latencies in µs; ``ratio`` is median(this) / median(baseline)."""

    model_sha256: str
    model_name: str
    role: str | None
    device: DeviceFacts
    trials_ok: int
    trials_failed: int
    median_us: Estimate | None
    min_us: float | None
    std_us: float | None  # median of the trials' std
    init_us: float | None  # median of the trials' init times
    peak_memory_mb: float | None  # the largest peak any trial reported
    ratio: Estimate | None  # None for the baseline model itself, or when either side has no values
    errors: list[str] = field(default_factory=list)  # distinct errors of failed trials, in order
    latencies_us: list[float] = field(default_factory=list)  # each ok trial's average, in trial order
    baseline_sha256: str | None = None  # the model ``ratio`` is relative to


def trial_latency_us(trial: Trial) -> float | None:
    """The trial's average latency, or None when it failed or printed no average."""
    if trial.status != "ok" or trial.result is None or trial.result.runs is None:
        return None
    values = clean([trial.result.runs.avg_us])
    return values[0] if values else None


def trial_peak_memory_mb(trial: Trial) -> float | None:
    """The largest peak-memory figure the trial printed (benchmark_model versions report different ones)."""
    if trial.result is None:
        return None
    figures = clean([trial.result.peak_memory_overall_mb, trial.result.periodic_peak_memory_mb])
    return max(figures) if figures else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _summary(trials: list[Trial]) -> Summary:
    first = trials[0]
    ok = [t for t in trials if t.status == "ok"]
    latencies = [v for v in (trial_latency_us(t) for t in trials) if v is not None]
    results = [t.result for t in ok if t.result is not None]
    mins = clean([r.runs.min_us if r.runs and r.runs.min_us is not None else None for r in results])
    peaks = clean([trial_peak_memory_mb(t) for t in ok])
    errors: list[str] = []
    for t in trials:
        if t.status != "ok":
            message = t.error or t.status
            if message not in errors:
                errors.append(message)
    return Summary(
        model_sha256=first.model.sha256,
        model_name=first.model.name,
        role=first.model.role,
        device=first.device,
        trials_ok=len(ok),
        trials_failed=len(trials) - len(ok),
        median_us=median_ci(latencies),
        min_us=min(mins) if mins else (min(latencies) if latencies else None),
        std_us=_median(clean([r.runs.std_us if r.runs else None for r in results])),
        init_us=_median(clean([r.init_us for r in results])),
        peak_memory_mb=max(peaks) if peaks else None,
        ratio=None,
        errors=errors,
        latencies_us=latencies,
    )


def summarize(trials: Sequence[Trial], baseline_sha256: str | None = None) -> list[Summary]:
    """One Summary per (device serial, model sha256), devices and models in order of first appearance.

    ``baseline_sha256`` is the model every other model's ratio is relative to on the same device;
    by default the first model in trial order. A device where the baseline has no successful trial
    gets no ratios.
    """
    if not trials:
        return []
    baseline = baseline_sha256 or trials[0].model.sha256
    groups: dict[tuple[str, str], list[Trial]] = {}
    device_order: dict[str, int] = {}
    model_order: dict[str, int] = {}
    for trial in trials:
        device_order.setdefault(trial.device.serial, len(device_order))
        model_order.setdefault(trial.model.sha256, len(model_order))
        groups.setdefault((trial.device.serial, trial.model.sha256), []).append(trial)
    keys = sorted(groups, key=lambda key: (device_order[key[0]], model_order[key[1]]))
    summaries = [_summary(groups[key]) for key in keys]
    by_key = {(s.device.serial, s.model_sha256): s for s in summaries}
    for summary in summaries:
        base = by_key.get((summary.device.serial, baseline))
        if base is None or summary is base:
            continue
        summary.ratio = ratio_ci(base.latencies_us, summary.latencies_us)
        summary.baseline_sha256 = baseline
    return summaries
