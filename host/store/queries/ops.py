"""Per-op profiles of trials (``lab bench --ops``): the op_stat rows, written with each trial and read per run.

Two sources share the table: benchmark_model's ``Run Order`` rows (per-op times, on phones) and the
QEMU plugin's per-kernel instruction counts (emulated arm64 devices). See ``SqlOpStat``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from device_agent.output import BenchmarkResult
from host.records import DeviceFacts
from host.store._models import SqlArtifact, SqlDevice, SqlMeasurement, SqlOpStat
from host.store.queries._core import StoreCore, chunks

__all__ = ["OpStat", "OpGroup", "OpQueries", "op_stat_rows", "insert_op_stats"]

OpSource = Literal["op", "kernel"]


@dataclass(frozen=True)
class OpStat:
    """One op (source "op": per-op time) or kernel (source "kernel": instructions) of one trial, per inference.

    For a kernel, ``node_type`` is its library file and ``name`` the function.
    """

    source: OpSource
    index: int
    node_type: str
    name: str
    avg_ms: float | None = None
    percent: float | None = None
    times_called: int | None = None
    instructions: float | None = None

    @property
    def value(self) -> float | None:
        """The figure comparisons use: ms for an op, instructions for a kernel."""
        return self.avg_ms if self.source == "op" else self.instructions


@dataclass
class OpGroup:
    """The ok, profiled trials of one model on one device in one run: each trial's op rows, by source."""

    run_id: int
    model_sha256: str
    model_name: str
    role: str | None
    device: DeviceFacts
    trials: list[dict[str, list[OpStat]]] = field(default_factory=list)  # source → rows, per trial

    def sources(self) -> list[OpSource]:
        found = {source for trial in self.trials for source, rows in trial.items() if rows}
        return [s for s in ("kernel", "op") if s in found]  # type: ignore[misc]


def op_stat_rows(result: BenchmarkResult | None) -> list[dict[str, Any]]:
    """The op_stat rows (without measurement_id) of a trial's parsed result; [] when not profiled."""
    if result is None:
        return []
    rows: list[dict[str, Any]] = []
    profile = result.op_profile.runs if result.op_profile is not None else None
    if profile is not None:
        rows += [
            {
                "source": "op", "op_index": op.index, "node_type": op.node_type, "name": op.name,
                "avg_ms": op.avg_ms, "percent": op.percent, "times_called": op.times_called, "instructions": None,
            }
            for op in profile.ops
        ]  # fmt: skip
    if result.kernels is not None:
        rows += [
            {
                "source": "kernel", "op_index": rank, "node_type": k.library, "name": k.function, "avg_ms": None,
                "percent": k.percent, "times_called": None, "instructions": k.instructions,
            }
            for rank, k in enumerate(result.kernels.rows)
        ]  # fmt: skip
    for row in rows:  # NaN (a zero total) is no share
        if isinstance(row["percent"], float) and row["percent"] != row["percent"]:
            row["percent"] = None
    return rows


def insert_op_stats(s: Session, measurement_id: int, result: BenchmarkResult | None) -> None:
    rows = op_stat_rows(result)
    if rows:
        s.execute(SqlOpStat.__table__.insert(), [{"measurement_id": measurement_id, **row} for row in rows])


class OpQueries(StoreCore):
    """Store methods for per-op profiles."""

    def op_groups(self, run_ids: list[int]) -> list[OpGroup]:
        """Per (run, model, device): the op rows of every ok trial that has any, in saving order.

        Groups without a profiled trial are left out; unknown run ids give nothing.
        """
        m = SqlMeasurement
        with self._sessions.session() as s:
            measurements: list[Any] = []
            for part in chunks(list(run_ids)):
                query = select(m.id, m.run_id, m.artifact_id, m.device_id).where(m.run_id.in_(part), m.status == "ok")
                measurements.extend(s.execute(query.order_by(m.id)))
            stats: dict[int, dict[str, list[OpStat]]] = {}
            for part in chunks([r.id for r in measurements]):
                query = select(SqlOpStat).where(SqlOpStat.measurement_id.in_(part)).order_by(SqlOpStat.op_index)
                for row in s.scalars(query):
                    by_source = stats.setdefault(row.measurement_id, {})
                    by_source.setdefault(row.source, []).append(
                        OpStat(
                            source=row.source,  # type: ignore[arg-type]  # CHECK constraint
                            index=row.op_index,
                            node_type=row.node_type,
                            name=row.name,
                            avg_ms=row.avg_ms,
                            percent=row.percent,
                            times_called=row.times_called,
                            instructions=row.instructions,
                        )
                    )
            artifact_ids = {r.artifact_id for r in measurements}
            device_ids = {r.device_id for r in measurements}
            artifacts = {a.id: a for a in s.scalars(select(SqlArtifact).where(SqlArtifact.id.in_(artifact_ids)))}
            devices = {d.id: d for d in s.scalars(select(SqlDevice).where(SqlDevice.id.in_(device_ids)))}
            groups: dict[tuple[int, int, int], OpGroup] = {}
            for r in measurements:
                if r.id not in stats:
                    continue
                key = (r.run_id, r.artifact_id, r.device_id)
                if key not in groups:
                    artifact = artifacts[r.artifact_id]
                    groups[key] = OpGroup(
                        run_id=r.run_id,
                        model_sha256=artifact.sha256,
                        model_name=artifact.name,
                        role=artifact.role,
                        device=devices[r.device_id].to_entity(),
                    )
                groups[key].trials.append(stats[r.id])
            return list(groups.values())
