"""What the site needs from the store, through the queries and reports `lab history`, `lab report`
and `lab check` use: the same numbers, the same statistic, the same verdicts. Each loads what many
runs need in a few queries (a store of 1,000 runs is published in seconds, not a query per run)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from host.publish.model import Change, Point, pair_key
from host.records import OutputCheck, Trial
from host.report import RunOpsComparison, RunReport, compare_ops
from host.report._format import device_line
from host.report.build import report_of
from host.report.check import check_groups
from host.report.history import history_row
from host.store import HistoryFilter, HistoryGroup, RunInfo, Store
from host.store.queries.ops import OpGroup

__all__ = ["RunDetails", "history_groups", "points_of_runs", "run_details", "groups_of_runs", "run_changes"]


@dataclass(frozen=True)
class RunDetails:
    """A run's page: its trials (provenance, raw outputs) and its dense-vs-pruned report."""

    run: RunInfo
    trials: list[Trial]
    report: RunReport


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


def history_groups(
    store: Store, runs: list[RunInfo], model: str | None, device: str | None
) -> dict[int, list[HistoryGroup]]:
    """Per run of ``runs``: its (model, device) groups matching the filters (as `lab history` filters
    them), in saving order; without filters, every group of the run, as `lab check` loads them."""
    if not runs:
        return {}
    wanted = {r.id for r in runs}
    since = min(r.started_at for r in runs)
    groups: dict[int, list[HistoryGroup]] = defaultdict(list)
    for group in store.history(HistoryFilter(model=model, device=device, since=since, limit=None)):
        if group.run_id in wanted:
            groups[group.run_id].append(group)  # newest run first; a run's groups keep their order
    return groups


def points_of_runs(runs: list[RunInfo], groups: dict[int, list[HistoryGroup]]) -> dict[int, list[Point]]:
    """Per run of ``runs``: its model × device rows of the site, from its ``history_groups``."""
    return {run.id: [_point(group, run) for group in groups[run.id]] for run in runs if groups.get(run.id)}


def run_details(store: Store, runs: list[RunInfo]) -> dict[int, RunDetails]:
    """The page data of each run of ``runs``: their trials, op profiles and output checks in a few
    queries for all of them, each report built as `lab report` builds it, without the history the
    site draws elsewhere."""
    ids = [run.id for run in runs]
    trials = store.load_trials_of_runs(ids)
    ops: dict[int, list[OpGroup]] = defaultdict(list)
    for group in store.op_groups(ids):
        ops[group.run_id].append(group)
    checks = store.output_checks(ids)
    details = {}
    for run in runs:
        loaded = trials.get(run.id, [])
        details[run.id] = RunDetails(run, loaded, report_of(run, loaded, ops[run.id], None, checks))
    return details


def groups_of_runs(store: Store, run_ids: list[int]) -> dict[int, list[HistoryGroup]]:
    """Every (model, device) group of each run, as `lab check` loads them, in one query for all."""
    groups: dict[int, list[HistoryGroup]] = defaultdict(list)
    for group in store.run_groups(run_ids):
        groups[group.run_id].append(group)
    return groups


def run_changes(
    store: Store,
    run: RunInfo,
    previous: dict[str, RunInfo],
    groups: dict[int, list[HistoryGroup]],
    with_ops: set[int],
    checks: Sequence[OutputCheck] = (),
) -> tuple[list[Change], list[RunOpsComparison]]:
    """The gate (`lab check RUN --baseline PREVIOUS --allow-missing`) for each model × device of
    ``previous`` (pair → the run that last measured it), from the runs' loaded ``groups``
    (``groups_of_runs``) and the run's on-device output ``checks`` (a wrong or failed one fails its
    row, as in `lab check`), and the per-op diffs where both runs have profiles (``with_ops``)."""
    by_previous: dict[int, set[str]] = defaultdict(set)
    bases: dict[int, RunInfo] = {}
    for pair, prev in previous.items():
        by_previous[prev.id].add(pair)
        bases[prev.id] = prev
    changes: list[Change] = []
    op_diffs: list[RunOpsComparison] = []
    for prev, pairs in sorted(by_previous.items()):
        result = check_groups(run, [bases[prev]], groups.get(prev, []), groups.get(run.id, []),
                              allow_missing=True, checks=checks)
        for row in result.rows:
            if pair_key(row.model_name, row.device_serial) not in pairs:
                continue
            ratio = row.ratio
            changes.append(
                Change(
                    run_id=run.id,
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
        if run.id in with_ops and prev in with_ops:
            op_diffs.append(compare_ops(store, prev, run.id))
    return changes, op_diffs
