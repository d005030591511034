"""`lab history`: stored groups as rows with their latency (the headline statistic, ``host.figures``) and its CI."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from host.bench.stats import clean, median_ci
from host.figures import pick
from host.report._model import HistoryRow
from host.store import HistoryFilter, HistoryGroup

if TYPE_CHECKING:
    from host.store import Store

__all__ = ["history_rows", "history_row"]


def history_row(group: HistoryGroup) -> HistoryRow:
    counts = clean(group.instructions)
    statistic, values = pick(group.figures)
    return HistoryRow(
        run_id=group.run_id,
        started_at=group.run_started_at,
        run_status=group.run_status,
        model_name=group.model_name,
        model_sha256=group.model_sha256,
        role=group.role,
        device_serial=group.device.serial,
        device_model=group.device.model,
        device_kind=group.device.kind,
        statistic=statistic,
        latency_us=median_ci(values, n_boot=1000),
        trials_ok=group.trials_ok,
        trials_failed=group.trials_failed,
        threads=sorted(group.threads),
        xnnpack=sorted(group.use_xnnpack),
        tools=list(group.tools),
        tool_versions=list(group.tool_versions),
        instructions=statistics.median(counts) if counts else None,
    )


def history_rows(store: Store, flt: HistoryFilter) -> list[HistoryRow]:
    """Rows newest run first (at most ``flt.limit``), or [] when nothing matches."""
    return [history_row(g) for g in store.history(flt)]
