"""`lab check`: the CI gate. A regression is a model on a device that got slower beyond the
threshold with statistical confidence (Mann–Whitney U over the trials, as ``stats.compare``, on
each trial's 5th-percentile invoke time where printed — see ``_match.GATE_STATISTICS``), or,
for ``--metric instructions``, a median instruction count above the baseline's beyond a tiny
tolerance (counts under QEMU are deterministic, so no test is needed).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import replace

from host.bench.stats import Estimate, clean, compare
from host.errors import UsageError
from host.report._match import Pair, gate_values, label, match_groups, pool_groups
from host.report._model import CheckResult, CheckRow
from host.report.ops import OpDiff, compare_op_groups, pair_op_groups, pool_op_groups
from host.store import RunInfo, Store

__all__ = ["check_run", "parse_baseline", "parse_threshold", "METRICS", "DEFAULT_MAX_REGRESSION"]

METRICS = ("time", "instructions")
DEFAULT_MAX_REGRESSION = {"time": 0.05, "instructions": 0.001}
_LAST = re.compile(r"last:(\d+)")


def parse_baseline(text: str | None) -> int | tuple[str, int]:
    """``RUN`` (an id) or ``last:N`` (the N runs before the candidate, pooled). Raises UsageError."""
    if text is None:
        return ("last", 1)
    text = text.strip()
    if text.isdigit():
        return int(text)
    match = _LAST.fullmatch(text)
    if match and int(match.group(1)) >= 1:
        return ("last", int(match.group(1)))
    raise UsageError(f"--baseline {text!r}: give a run id (e.g. 12) or last:N with N ≥ 1 (e.g. last:3)")


def parse_threshold(text: str) -> float:
    """``5%`` or ``0.05`` → 0.05. Raises UsageError for anything else or a value outside (0, 10)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(
            f"--max-regression {text!r}: give a percentage such as 5% (or a fraction such as 0.05)"
        ) from None
    if not 0.0 < value < 10.0:
        raise UsageError(f"--max-regression {text!r}: must be above 0% and below 1000%")
    return value


def _time_row(pair: Pair, threshold: float) -> CheckRow:
    base, cand, _ = pair
    statistic, base_values, cand_values = gate_values(base, cand)
    result = compare(base_values, cand_values, min_effect=threshold)
    return CheckRow(
        model_name=cand.model_name,
        device_serial=cand.device.serial,
        device_kind=cand.device.kind,
        metric="time",
        statistic=statistic,
        baseline=statistics.median(base_values),
        candidate=statistics.median(cand_values),
        ratio=result.ratio,
        p_value=result.p_value,
        regression=result.verdict == "slower",
        reason=result.reason,
    )


def _instructions_row(pair: Pair, threshold: float) -> CheckRow | None:
    base, cand, _ = pair
    base_counts, cand_counts = clean(base.instructions), clean(cand.instructions)
    if not base_counts or not cand_counts:
        return None
    b, c = statistics.median(base_counts), statistics.median(cand_counts)
    ratio = c / b if b > 0 else float("inf")
    regression = ratio > 1.0 + threshold
    verdict = "more" if ratio > 1 else "fewer" if ratio < 1 else "the same"
    return CheckRow(
        model_name=cand.model_name,
        device_serial=cand.device.serial,
        device_kind=cand.device.kind,
        metric="instructions",
        statistic="instructions",
        baseline=b,
        candidate=c,
        ratio=Estimate(ratio, ratio, ratio),
        p_value=None,
        regression=regression,
        reason=f"{abs(ratio - 1):.3%} {verdict} instructions per inference (tolerance {threshold:.3%})",
    )


OPS_NAMED = 3  # ops named behind a regression


def _describe(r: OpDiff, unit: str) -> str:
    fmt = (lambda v: f"{v:,.0f}") if unit == "instructions" else (lambda v: f"{v:.3f} ms")
    where = f" #{r.index_b if r.index_b is not None else r.index_a}" if unit == "ms" else ""
    if r.a is None:
        change = f"new in the candidate, {fmt(r.b or 0.0)}"
    elif r.b is None:
        change = f"gone from the candidate (was {fmt(r.a)})"
    else:
        change = f"{fmt(r.a)} → {fmt(r.b)} (×{r.b / r.a:.3f})" if r.a else f"{fmt(r.a)} → {fmt(r.b)}"
    return f"{r.node_type} {r.name}{where}: {change}"


def _ops_behind(store: Store, bases: list[RunInfo], candidate: RunInfo, rows: list[CheckRow]) -> list[CheckRow]:
    """Each regression with the ops that grew most (beyond noise); or why they cannot be named."""
    base_groups = pool_op_groups(store.op_groups([b.id for b in bases]))
    pairs, _ = pair_op_groups(base_groups, store.op_groups([candidate.id]))
    diffs = {}
    for base, cand in pairs:
        diffs[(cand.model_name, cand.device.serial)] = compare_op_groups(base, cand)
    named = []
    for row in rows:
        if not row.regression:
            named.append(row)
            continue
        diff = diffs.get((row.model_name, row.device_serial))
        if diff is None:
            named.append(replace(row, ops=("ops behind it: no op profile on both sides (benchmark with lab bench --ops)",)))
            continue
        grown = [r for r in diff.rows if r.delta > 0 and r.beyond_noise][:OPS_NAMED]
        lines = tuple(f"op behind it: {_describe(r, diff.unit)}" for r in grown)
        named.append(replace(row, ops=lines or ("ops behind it: no single op grew beyond noise",)))
    return named


def _baselines(store: Store, candidate: RunInfo, baseline: int | tuple[str, int]) -> list[RunInfo]:
    if isinstance(baseline, int):
        return [store.get_run(baseline)]
    return store.runs_before(candidate.id, baseline[1])


def check_run(
    store: Store,
    run_id: int | None = None,
    baseline: str | None = None,
    max_regression: float | None = None,
    metric: str = "time",
    ops: bool = False,
) -> CheckResult:
    """Gates run ``run_id`` (default: the latest) against ``baseline`` (default: the run before it).

    With ``ops``, each regression names the ops (or kernels) behind it from the runs' op profiles.

    Raises:
        NotFoundError: an unknown run id.
        UsageError: a bad ``baseline`` or ``metric``.
    """
    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r}: use one of {', '.join(METRICS)}")
    spec = parse_baseline(baseline)
    threshold = DEFAULT_MAX_REGRESSION[metric] if max_regression is None else max_regression
    if run_id is None:
        run_id = store.latest_run_id()
        if run_id is None:
            why = "the store is empty: run `lab bench` or `lab run` first"
            return CheckResult(None, [], metric, threshold, [], [why])
    candidate = store.get_run(run_id)
    if isinstance(spec, int) and spec == candidate.id:
        raise UsageError(f"--baseline {spec} is the run being checked; pick an earlier run")
    bases = _baselines(store, candidate, spec)
    if not bases:
        why = f"no finished run before run {candidate.id} to compare with"
        return CheckResult(candidate, [], metric, threshold, [], [why])
    groups = pool_groups(store.run_groups([b.id for b in bases]))
    pairs, left_out = match_groups(groups, store.run_groups([candidate.id]))
    rows: list[CheckRow] = []
    reasons = list(left_out)
    for pair in pairs:
        if metric == "time":
            if not pair[0].latencies_us or not pair[1].latencies_us:
                reasons.append(f"{label(pair[1])}: no successful trials on one side")
                continue
            rows.append(_time_row(pair, threshold))
        else:
            row = _instructions_row(pair, threshold)
            if row is None:
                reasons.append(f"{label(pair[1])}: instructions were not counted on one side")
            else:
                rows.append(row)
    if not rows and not pairs:
        reasons.append("no model × device of the run is in the baseline")
    if ops and any(r.regression for r in rows):
        rows = _ops_behind(store, bases, candidate, rows)
    return CheckResult(candidate, bases, metric, threshold, rows, reasons)
