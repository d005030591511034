"""History: the trials of each (run, model, device), filtered, newest runs first.

Two indexed steps, so the answer time depends on the rows asked for, not on the store's size:
1. the newest runs in the date range that hold a matching measurement (walks ``ix_run_started_at``
   backwards; each run is one probe of ``ix_measurement_run_id_artifact_id_device_id``), at most
   ``limit`` of them, since every such run gives at least one group;
2. the matching measurements of those runs only, grouped here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, true

from host.figures import TrialFigures
from host.store._models import SqlArtifact, SqlDevice, SqlMeasurement, SqlRun, SqlTool, from_db_time, to_db_time
from host.store.entities import HistoryFilter, HistoryGroup
from host.store.queries._core import StoreCore, chunks

__all__ = ["HistoryQueries"]

_HEX = re.compile(r"[0-9a-fA-F]{6,64}")


def _names(model: str) -> set[str]:
    return {model, model + ".tflite"} if not model.endswith(".tflite") else {model}


def _device_condition(device: str) -> ColumnElement[bool]:
    """A device given by serial or by model name (case-insensitive)."""
    return or_(SqlDevice.serial == device, func.lower(SqlDevice.model) == device.lower())


class HistoryQueries(StoreCore):
    """Store methods for history."""

    def _ids(self, s: Any, column: Any, condition: ColumnElement[bool]) -> list[int]:
        return list(s.scalars(select(column).where(condition)))

    def _model_filter(self, s: Any, model: str) -> ColumnElement[bool]:
        """Trials of ``model``: the file name each benchmarked (trials stored before names were kept
        per trial: their artifact's name), with or without .tflite, or a sha256 prefix (≥ 6 hex digits)."""
        names = _names(model)
        named = self._ids(s, SqlArtifact.id, SqlArtifact.name.in_(names))
        options: list[ColumnElement[bool]] = [
            SqlMeasurement.model_name.in_(names),
            and_(SqlMeasurement.model_name.is_(None), SqlMeasurement.artifact_id.in_(named)),
        ]
        if _HEX.fullmatch(model):
            by_sha = self._ids(s, SqlArtifact.id, SqlArtifact.sha256.startswith(model.lower()))
            options.append(SqlMeasurement.artifact_id.in_(by_sha))
        return or_(*options)

    def history(self, flt: HistoryFilter) -> list[HistoryGroup]:
        """Groups of trials per (run, model, device), newest run first, at most ``flt.limit`` groups.

        Returns an empty list when nothing matches (including an unknown model or device).
        """
        with self._sessions.session() as s:
            measurement: list[ColumnElement[bool]] = []
            if flt.model is not None:
                measurement.append(self._model_filter(s, flt.model))
            if flt.device is not None:
                device_ids = self._ids(s, SqlDevice.id, _device_condition(flt.device))
                if not device_ids:
                    return []
                measurement.append(SqlMeasurement.device_id.in_(device_ids))
            run_filter: list[ColumnElement[bool]] = []
            if flt.since is not None:
                run_filter.append(SqlRun.started_at >= to_db_time(flt.since))
            if flt.until is not None:
                run_filter.append(SqlRun.started_at <= to_db_time(flt.until))
            has_match = exists().where(SqlMeasurement.run_id == SqlRun.id, *measurement)
            runs_query = (
                select(SqlRun.id, SqlRun.status, SqlRun.started_at)
                .where(*run_filter, has_match)
                .order_by(SqlRun.started_at.desc(), SqlRun.id.desc())
            )
            if flt.limit is not None:
                runs_query = runs_query.limit(flt.limit)
            runs = {run_id: (status, started) for run_id, status, started in s.execute(runs_query)}
            if not runs:
                return []
            groups = self._groups(s, runs, and_(*measurement) if measurement else true())
        ordered = sorted(groups, key=lambda g: (g.run_started_at, g.run_id), reverse=True)
        return ordered[: flt.limit] if flt.limit is not None else ordered

    def run_groups(self, run_ids: list[int]) -> list[HistoryGroup]:
        """Every (run, model, device) group of the given runs, in saving order. Unknown ids give nothing."""
        with self._sessions.session() as s:
            runs_query = select(SqlRun.id, SqlRun.status, SqlRun.started_at).where(SqlRun.id.in_(run_ids))
            runs = {run_id: (status, started) for run_id, status, started in s.execute(runs_query)}
            return self._groups(s, runs, true()) if runs else []

    def _groups(
        self, s: Any, runs: dict[int, tuple[str, Any]], condition: ColumnElement[bool]
    ) -> list[HistoryGroup]:
        m = SqlMeasurement
        cols = (
            m.run_id,
            m.artifact_id,
            m.device_id,
            m.status,
            m.avg_us,
            m.median_us,
            m.p5_us,
            m.p95_us,
            m.min_us,
            m.init_us,
            m.peak_memory_overall_mb,
            m.periodic_peak_memory_mb,
            m.threads,
            m.use_xnnpack,
            m.tool_id,
            m.instructions_median,
            m.error,
            m.model_name,
        )
        rows: list[Any] = []
        for part in chunks(list(runs)):
            rows.extend(s.execute(select(*cols).where(m.run_id.in_(part), condition).order_by(m.id)))
        artifacts = self._by_id(s, SqlArtifact, {r.artifact_id for r in rows})
        devices = self._by_id(s, SqlDevice, {r.device_id for r in rows})
        tools = self._by_id(s, SqlTool, {r.tool_id for r in rows if r.tool_id is not None})
        groups: dict[tuple[int, int, int, str], HistoryGroup] = {}
        for r in rows:
            artifact = artifacts[r.artifact_id]
            name = r.model_name or artifact.name  # one artifact (bytes) may be benchmarked under several names
            key = (r.run_id, r.artifact_id, r.device_id, name)
            group = groups.get(key)
            if group is None:
                status, started = runs[r.run_id]
                group = groups[key] = HistoryGroup(
                    run_id=r.run_id,
                    run_status=status,
                    run_started_at=from_db_time(started),
                    model_sha256=artifact.sha256,
                    model_name=name,
                    role=artifact.role,
                    device=devices[r.device_id].to_entity(),
                    trials_ok=0,
                    trials_failed=0,
                )
            if r.status == "ok":
                group.trials_ok += 1
                group.figures.append(_figures(r))
                group.figure_runs.append(r.run_id)
                if r.instructions_median is not None:
                    group.instructions.append(r.instructions_median)
            else:
                group.trials_failed += 1
                _add(group.errors, r.error or r.status)
            _add(group.threads, r.threads)
            _add(group.use_xnnpack, r.use_xnnpack)
            if r.tool_id is not None:
                tool = tools[r.tool_id]
                _add(group.tools, tool.sha256)
                if tool.version:
                    _add(group.tool_versions, tool.version)
        return list(groups.values())

    def _by_id(self, s: Any, model: Any, ids: Iterable[int]) -> dict[int, Any]:
        found: dict[int, Any] = {}
        for part in chunks(sorted(ids)):
            found.update({row.id: row for row in s.scalars(select(model).where(model.id.in_(part)))})
        return found


def _figures(r: Any) -> TrialFigures:
    peaks = [v for v in (r.peak_memory_overall_mb, r.periodic_peak_memory_mb) if v is not None]
    return TrialFigures(
        avg_us=r.avg_us,
        median_us=r.median_us,
        p5_us=r.p5_us,
        p95_us=r.p95_us,
        min_us=r.min_us,
        init_us=r.init_us,
        peak_memory_mb=max(peaks) if peaks else None,
    )


def _add(values: list[Any], value: Any) -> None:
    if value not in values:
        values.append(value)
