"""`lab check`: the CI gate. It fails closed: exit 1 when a model on a device got slower beyond
the threshold with statistical confidence, **or** when a model × device of the baseline failed every
trial or is missing from the candidate (unless ``allow_missing``), or gave wrong outputs on the
device in the candidate's output check (``outputs``; ``host.bench.verify``); 0 when none; 2 when
nothing could be compared.

Tests per model × device (``--metric time``), all on per-trial figures (``host.figures``), each a
trimmed t-test on log values (``stats.trimmed_t``) plus the ratio of medians beyond a threshold
(``stats.decide``):
- ``latency``: the headline figure (p5 invoke), ``--max-regression`` (3%);
- ``typical``: the median invoke, ``--max-median-regression`` (10%): a slowdown that spares the
  fastest invokes (stalls in most of them, late throttling, a slow core half the time) moves it;
- ``tail``: the p95 invoke, only with ``--max-tail-regression`` (on a shared machine it moves with
  the load: a CV of 100% across sessions);
- ``init`` and ``memory``: init time and peak memory, when their thresholds are given.
Every p-value of the check is Holm-adjusted over all its tests, so the chance of *any* false alarm
in a check is at most α, however many models and devices it holds. With ``last:N`` the baseline
pools N runs; the ratio's CI resamples runs, then trials, so run-to-run variation shows.

``--metric instructions`` compares median instruction counts (QEMU: exact and repeatable) with a
tiny tolerance; no test is needed.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from host.bench.stats import ALPHA, Estimate, clean, decide, holm, ratio_ci, trimmed_t
from host.errors import UsageError
from host.figures import HEADLINE_CHAIN, TAIL, TYPICAL
from host.records import OutputCheck
from host.report._match import Pair, gate_values, label, match_groups, pool_groups
from host.report._model import CheckResult, CheckRow, CheckTest
from host.report.ops import OpDiff, compare_op_groups, pair_op_groups, pool_op_groups
from host.store import HistoryGroup, RunInfo, Store

__all__ = [
    "check_run",
    "check_groups",
    "parse_baseline",
    "parse_threshold",
    "Thresholds",
    "METRICS",
    "DEFAULT_MAX_REGRESSION",
    "DEFAULT_MAX_MEDIAN_REGRESSION",
]

METRICS = ("time", "instructions")
DEFAULT_MAX_REGRESSION = {"time": 0.03, "instructions": 0.001}
DEFAULT_MAX_MEDIAN_REGRESSION = 0.10  # median invokes move more with the machine's load than p5 ones
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


def parse_threshold(text: str, option: str = "--max-regression") -> float:
    """``5%`` or ``0.05`` → 0.05. Raises UsageError (naming ``option``) for anything else or a value outside (0, 10)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"{option} {text!r}: give a percentage such as 5% (or a fraction such as 0.05)") from None
    if not 0.0 < value < 10.0:
        raise UsageError(f"{option} {text!r}: must be above 0% and below 1000%")
    return value


@dataclass(frozen=True)
class Thresholds:
    """The change each test allows (fractions); None: that test is not run."""

    latency: float
    typical: float | None = DEFAULT_MAX_MEDIAN_REGRESSION
    tail: float | None = None
    init: float | None = None
    memory: float | None = None


def _aligned(group: HistoryGroup, statistic: str) -> tuple[list[float], list[int]]:
    """``statistic`` of each ok trial that has it, with the run each came from."""
    pairs = [(f.get(statistic), run) for f, run in zip(group.figures, group.figure_runs)]
    kept = [(float(v), run) for v, run in pairs if v is not None]
    return [v for v, _ in kept], [run for _, run in kept]


def _tested_row(pair: Pair, test: CheckTest, chain: Sequence[str], threshold: float) -> CheckRow | None:
    """A row for one rank-tested figure, its verdict pending the Holm adjustment; None when a side lacks it."""
    base, cand, _ = pair
    statistic, _, _ = gate_values(base, cand, chain)
    base_values, base_runs = _aligned(base, statistic)
    cand_values, _ = _aligned(cand, statistic)
    if not base_values or not cand_values:
        return None
    ratio = ratio_ci(base_values, cand_values, baseline_runs=base_runs)
    return CheckRow(
        model_name=cand.model_name,
        device_serial=cand.device.serial,
        device_kind=cand.device.kind,
        metric="time",
        test=test,
        statistic=statistic,
        baseline=statistics.median(base_values),
        candidate=statistics.median(cand_values),
        ratio=ratio,
        p_value=trimmed_t(base_values, cand_values),
        p_adjusted=None,
        outcome="ok",
        reason="",
        threshold=threshold,
        trials=(len(base_values), len(cand_values)),
    )


def _judge(rows: list[CheckRow]) -> list[CheckRow]:
    """Holm-adjusts every row's p-value over the whole check, then gives each its verdict."""
    tested = [i for i, r in enumerate(rows) if r.p_value is not None]
    adjusted = holm([rows[i].p_value or 0.0 for i in tested])
    judged = [
        replace(r, reason=f"too few trials to test ({r.trials[0]} vs {r.trials[1]}; at least 2 a side)")
        if r.p_value is None and r.test in ("latency", "typical", "tail", "init", "memory")
        else r
        for r in rows
    ]
    for i, p in zip(tested, adjusted):
        row = rows[i]
        verdict = decide(row.ratio, p, *row.trials, min_effect=row.threshold or 0.0, alpha=ALPHA)
        reason = verdict.reason.replace("p=", "Holm p=") if len(tested) > 1 else verdict.reason
        judged[i] = replace(
            row, p_adjusted=p, outcome="regression" if verdict.verdict == "slower" else "ok", reason=reason
        )
    return judged


def _instructions_row(pair: Pair, threshold: float) -> CheckRow | None:
    base, cand, _ = pair
    base_counts, cand_counts = clean(base.instructions), clean(cand.instructions)
    if not base_counts or not cand_counts:
        return None
    b, c = statistics.median(base_counts), statistics.median(cand_counts)
    ratio = c / b if b > 0 else float("inf")
    verdict = "more" if ratio > 1 else "fewer" if ratio < 1 else "the same"
    return CheckRow(
        model_name=cand.model_name,
        device_serial=cand.device.serial,
        device_kind=cand.device.kind,
        metric="instructions",
        test="instructions",
        statistic="instructions",
        baseline=b,
        candidate=c,
        ratio=Estimate(ratio, ratio, ratio),
        p_value=None,
        p_adjusted=None,
        outcome="regression" if ratio > 1.0 + threshold else "ok",
        reason=f"{abs(ratio - 1):.3%} {verdict} instructions per inference (tolerance {threshold:.3%})",
        threshold=threshold,
        trials=(len(base_counts), len(cand_counts)),
    )


def _presence_row(group: HistoryGroup, metric: str, outcome: str, reason: str) -> CheckRow:
    return CheckRow(
        model_name=group.model_name,
        device_serial=group.device.serial,
        device_kind=group.device.kind,
        metric=metric,
        test="presence",
        statistic="—",
        baseline=None,
        candidate=None,
        ratio=None,
        p_value=None,
        p_adjusted=None,
        outcome=outcome,  # type: ignore[arg-type]
        reason=reason,
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
        if row.outcome != "regression":
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


def _outputs_rows(pairs: list[Pair], checks: Sequence[OutputCheck], metric: str) -> list[CheckRow]:
    """A row failing the gate for each compared model × device whose outputs on the device were
    wrong (or could not be checked) in the candidate run: a fast model computing the wrong thing
    is no result to pass."""
    bad = {(c.device.serial, c.model.sha256): c for c in checks if c.status != "ok"}
    rows = []
    for _, cand, _ in pairs:
        check = bad.get((cand.device.serial, cand.model_sha256))
        if check is None:
            continue
        reason = check.error if check.status == "wrong" else f"output check failed: {check.error}"
        rows.append(replace(_presence_row(cand, metric, "failed", f"{reason} ({check.tolerance})"), test="outputs"))
    return rows


def _failed_reason(group: HistoryGroup) -> str:
    first = group.errors[0] if group.errors else "no trial was saved"
    return f"no successful trial in the candidate ({group.trials_failed} failed: {first})"


def _pair_rows(pairs: list[Pair], metric: str, limits: Thresholds, reasons: list[str]) -> list[CheckRow]:
    rows: list[CheckRow] = []
    for pair in pairs:
        base, cand, _ = pair
        if not base.figures:
            reasons.append(f"{label(cand)}: no successful trial in the baseline; nothing to compare with")
            continue
        if not cand.figures:
            rows.append(_presence_row(cand, metric, "failed", _failed_reason(cand)))
            continue
        if metric == "instructions":
            row = _instructions_row(pair, limits.latency)
            if row is None:
                reasons.append(f"{label(cand)}: instructions were not counted on one side")
            else:
                rows.append(row)
            continue
        tests: list[tuple[CheckTest, Sequence[str], float | None]] = [
            ("latency", HEADLINE_CHAIN, limits.latency),
            ("typical", (TYPICAL,), limits.typical),
            ("tail", (TAIL,), limits.tail),
            ("init", ("init",), limits.init),
            ("memory", ("memory",), limits.memory),
        ]
        for test, chain, threshold in tests:
            if threshold is None:
                continue
            row = _tested_row(pair, test, chain, threshold)
            if row is not None:
                rows.append(row)
            elif test in ("typical", "tail"):
                reasons.append(
                    f"{label(cand)}: no {'median' if test == 'typical' else 'p95'} invoke on one side "
                    f"(an older benchmark_model): {test} not tested"
                )
            elif test != "latency":
                reasons.append(f"{label(cand)}: no {test} figure on one side: {test} not gated")
    return rows


def check_run(
    store: Store,
    run_id: int | None = None,
    baseline: str | None = None,
    max_regression: float | None = None,
    metric: str = "time",
    ops: bool = False,
    *,
    allow_missing: bool = False,
    max_median_regression: float | None = None,
    max_tail_regression: float | None = None,
    max_init_regression: float | None = None,
    max_memory_regression: float | None = None,
) -> CheckResult:
    """Gates run ``run_id`` (default: the latest) against ``baseline`` (default: the run before it).

    A baseline model × device whose candidate failed every trial, or that the candidate lacks, fails
    the gate unless ``allow_missing``. With ``ops``, each regression names the ops (or kernels)
    behind it from the runs' op profiles.

    Raises:
        NotFoundError: an unknown run id.
        UsageError: a bad ``baseline`` or ``metric``.
    """
    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r}: use one of {', '.join(METRICS)}")
    spec = parse_baseline(baseline)
    threshold = DEFAULT_MAX_REGRESSION[metric] if max_regression is None else max_regression
    limits = Thresholds(
        threshold,
        DEFAULT_MAX_MEDIAN_REGRESSION if max_median_regression is None else max_median_regression,
        max_tail_regression,
        max_init_regression,
        max_memory_regression,
    )
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
    result = check_groups(
        candidate,
        bases,
        store.run_groups([b.id for b in bases]),
        store.run_groups([candidate.id]),
        metric,
        limits,
        allow_missing=allow_missing,
        checks=store.output_checks([candidate.id]),
    )
    if ops and any(r.outcome == "regression" for r in result.rows):
        result = replace(result, rows=_ops_behind(store, bases, candidate, result.rows))
    return result


def check_groups(
    candidate: RunInfo,
    bases: list[RunInfo],
    base_groups: list[HistoryGroup],
    cand_groups: list[HistoryGroup],
    metric: str = "time",
    limits: Thresholds | None = None,
    *,
    allow_missing: bool = False,
    checks: Sequence[OutputCheck] = (),
) -> CheckResult:
    """`check_run`'s verdicts from the groups of the baseline runs (pooled here) and of the
    candidate, already loaded: the results site loads those of many runs in one query. No ops
    named; ``limits`` defaults to `check_run`'s. ``checks``: the candidate's on-device output
    checks; a wrong or failed one fails its model × device."""
    if limits is None:
        limits = Thresholds(DEFAULT_MAX_REGRESSION[metric])
    threshold = limits.latency
    base_groups = pool_groups(base_groups)
    pairs, left_out, missing = match_groups(base_groups, cand_groups)
    reasons = list(left_out)
    if not pairs and cand_groups and base_groups:
        names = sorted({label(g) for g in base_groups}), sorted({label(g) for g in cand_groups})
        why = f"no model × device in common: the baseline has {', '.join(names[0])}; the candidate has {', '.join(names[1])}"
        return CheckResult(candidate, bases, metric, threshold, [], [why, *reasons])
    rows = _pair_rows(pairs, metric, limits, reasons) + _outputs_rows(pairs, checks, metric)
    for group in missing:
        if not group.figures:
            reasons.append(f"{label(group)}: only in the baseline, where it had no successful trial")
        elif allow_missing:
            reasons.append(f"{label(group)}: missing from the candidate (allowed by --allow-missing)")
        else:
            why = "missing from the candidate run (pass --allow-missing if it was removed on purpose)"
            rows.append(_presence_row(group, metric, "missing", why))
    rows = _judge(rows)
    family = ""
    tested = sum(r.p_value is not None for r in rows)
    if tested:
        family = f"Holm over {tested} test(s): at most {ALPHA:.0%} chance of any false alarm in this check"
    return CheckResult(candidate, bases, metric, threshold, rows, reasons, family)
