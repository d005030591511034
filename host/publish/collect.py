"""What the site needs from the store, through the queries and reports `lab history`, `lab report`
and `lab check` use: the same numbers, the same statistic, the same verdicts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from host.publish.model import Change, Point, pair_key
from host.records import Trial
from host.report import RunOpsComparison, RunReport, build_report, check_run, compare_ops
from host.report._format import device_line
from host.report.history import history_row
from host.store import HistoryFilter, HistoryGroup, RunInfo, Store

__all__ = ["RunDetails", "points_of_runs", "run_details", "run_changes"]


@dataclass(frozen=True)
class RunDetails:
    """A run's page: its trials (provenance, raw outputs) and its dense-vs-pruned report."""

    run: RunInfo
    trials: list[Trial]
    report: RunReport


class _WithoutHistory:
    """The store as ``build_report`` sees it, minus the earlier runs' history.

    The site draws history on pages of its own; fetching it again for each run page costs ~0.3 s
    per run on a store of 1,000 runs (the report's history is 200 runs per model, each with a
    bootstrap CI), which would make publishing a large store take minutes.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def history(self, flt: HistoryFilter) -> list[HistoryGroup]:
        return []


def _point(group: HistoryGroup, run: RunInfo) -> Point:
    row = history_row(group)
    device = group.device
    latency = row.latency_us
    return Point(
        run_id=run.id,
        started_at=run.started_at.isoformat(),
        run_status=run.status,
        lab_version=run.lab_version,
        model_name=group.model_name,
        model_sha256=group.model_sha256,
        device_serial=device.serial,
        device_line=device_line(device),
        device_kind=device.kind,
        emulated_arm=device.kind == "emulated" and device.emulation not in (None, "native"),
        statistic=row.statistic,
        latency=(latency.value, latency.low, latency.high) if latency is not None else None,
        trials_ok=row.trials_ok,
        trials_failed=row.trials_failed,
        tools=tuple(row.tools),
        tool_versions=tuple(row.tool_versions),
        instructions=row.instructions,
    )


def points_of_runs(store: Store, runs: list[RunInfo], model: str | None, device: str | None) -> dict[int, list[Point]]:
    """Per run of ``runs``: its model × device rows matching the filters (as `lab history` filters)."""
    if not runs:
        return {}
    wanted = {r.id: r for r in runs}
    since = min(r.started_at for r in runs)
    points: dict[int, list[Point]] = defaultdict(list)
    for group in store.history(HistoryFilter(model=model, device=device, since=since, limit=None)):
        run = wanted.get(group.run_id)
        if run is not None:
            points[run.id].append(_point(group, run))
    return points


def run_details(store: Store, run: RunInfo) -> RunDetails:
    report = build_report(cast(Store, _WithoutHistory(store)), run.id)
    return RunDetails(run, store.load_trials(run.id), report)


def run_changes(
    store: Store, run_id: int, previous: dict[str, int], with_ops: set[int]
) -> tuple[list[Change], list[RunOpsComparison]]:
    """The gate (`lab check RUN --baseline PREVIOUS`) for each model × device of ``previous`` (pair →
    the run that last measured it), and the per-op diffs where both runs have profiles (``with_ops``)."""
    by_previous: dict[int, set[str]] = defaultdict(set)
    for pair, prev in previous.items():
        by_previous[prev].add(pair)
    changes: list[Change] = []
    op_diffs: list[RunOpsComparison] = []
    for prev, pairs in sorted(by_previous.items()):
        result = check_run(store, run_id, baseline=str(prev), allow_missing=True)
        for row in result.rows:
            if pair_key(row.model_name, row.device_serial) not in pairs:
                continue
            ratio = row.ratio
            changes.append(
                Change(
                    run_id=run_id,
                    previous_run_id=prev,
                    model_name=row.model_name,
                    device_serial=row.device_serial,
                    test=row.test,
                    statistic=row.statistic,
                    baseline=row.baseline,
                    candidate=row.candidate,
                    ratio=(ratio.value, ratio.low, ratio.high) if ratio is not None else None,
                    outcome=row.outcome,
                    reason=row.reason,
                )
            )
        if run_id in with_ops and prev in with_ops:
            op_diffs.append(compare_ops(store, prev, run_id))
    return changes, op_diffs
