"""Saving and loading trials: device/artifact/tool upserts, measurement rows, packed samples."""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from device_agent.output import BenchmarkResult, RunStats
from host.errors import NotFoundError, StoreError
from host.records import DeviceFacts, DeviceState, ModelFile, ToolInfo, Trial, TrialParams, to_jsonable
from host.store._codec import DecodeError, decode_value, field_types, from_jsonable, trial_hash, utc
from host.store._models import (
    SqlArtifact,
    SqlDevice,
    SqlMeasurement,
    SqlRun,
    SqlSample,
    SqlTool,
    TRIAL_STATUSES,
    from_db_time,
    to_db_time,
)
from host.store.queries._core import StoreCore, chunks, insert_ignore
from host.store.queries.ops import insert_op_stats

__all__ = ["TrialQueries", "pack_samples", "unpack_samples"]

# RunStats fields → measurement columns (the measured runs' line).
_RUNS_COLUMNS = {
    "count": "runs_count",
    "curr_us": "curr_us",
    "first_us": "first_us",
    "min_us": "min_us",
    "max_us": "max_us",
    "avg_us": "avg_us",
    "std_us": "std_us",
    "p5_us": "p5_us",
    "median_us": "median_us",
    "p95_us": "p95_us",
}
# BenchmarkResult fields with a column of their own (``runs`` and ``warmup`` are handled apart).
_RESULT_COLUMNS = {
    "init_us": "init_us",
    "first_inference_us": "first_inference_us",
    "warmup_avg_us": "warmup_avg_us",
    "inference_avg_us": "inference_avg_us",
    "peak_memory_init_mb": "peak_memory_init_mb",
    "peak_memory_overall_mb": "peak_memory_overall_mb",
    "memory_delta_init_mb": "memory_delta_init_mb",
    "memory_delta_overall_mb": "memory_delta_overall_mb",
    "periodic_peak_memory_mb": "periodic_peak_memory_mb",
    "num_threads": "reported_threads",
    "use_xnnpack": "reported_xnnpack",
    "xnnpack_applied": "xnnpack_applied",
    "model_size_mb": "model_size_mb",
    "timer_overhead_us": "timer_overhead_us",
    "runner": "runner",
}
# InstructionCounts fields (QEMU's guest instructions per inference) with a column of their own;
# the whole record also goes to result_extra, so load_trials gives it back as it was.
_INSTRUCTION_COLUMNS = {"first": "instructions_first", "min": "instructions_min", "median": "instructions_median"}
_NULL_RESULT = {
    col: None for col in (*_RUNS_COLUMNS.values(), *_RESULT_COLUMNS.values(), *_INSTRUCTION_COLUMNS.values())
}


def pack_samples(samples: Sequence[float]) -> bytes:
    """Little-endian float64s (the ``f64le`` encoding); stdlib, so opening a store needs no numpy."""
    return struct.pack(f"<{len(samples)}d", *samples)


def unpack_samples(data: bytes, encoding: str) -> list[float]:
    if encoding != "f64le":
        raise StoreError(f"unknown sample encoding {encoding!r}: this store was written by a newer lab")
    return list(struct.unpack(f"<{len(data) // 8}d", data[: len(data) // 8 * 8]))


def _result_columns(result: BenchmarkResult | None) -> dict[str, Any]:
    row: dict[str, Any] = {"has_result": result is not None, **_NULL_RESULT, "warmup_stats": None}
    row["result_warnings"] = []
    row["result_extra"] = None
    if result is None:
        return row
    extra: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if f.name == "runs":
            if value is not None:
                row.update({col: getattr(value, name) for name, col in _RUNS_COLUMNS.items()})
        elif f.name == "warmup":
            row["warmup_stats"] = _record_json(value) if value is not None else None
        elif f.name == "warnings":
            row["result_warnings"] = list(value)
        elif f.name in _RESULT_COLUMNS:
            row[_RESULT_COLUMNS[f.name]] = value
        else:
            if f.name == "instructions" and value is not None:
                row.update({col: getattr(value, name) for name, col in _INSTRUCTION_COLUMNS.items()})
            extra[f.name] = to_jsonable(value)
    row["result_extra"] = extra or None
    return row


def _nan_to_null(row: dict[str, Any]) -> None:
    nans = [key for key, value in row.items() if isinstance(value, float) and math.isnan(value)]
    for key in nans:
        row[key] = None
    row["nan_fields"] = nans or None


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """``value`` ready for JSON: flat dicts of plain values pass as they are (the common, fast case)."""
    if isinstance(value, _PLAIN) or (isinstance(value, dict) and all(isinstance(v, _PLAIN) for v in value.values())):
        return value
    return to_jsonable(value)


def _record_json(record: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _state_json(state: DeviceState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    data = _record_json(state)
    data["taken_at"] = utc(state.taken_at).isoformat()
    return data


def measurement_row(trial: Trial, run_id: int, run_uid: str, ids: tuple[int, int, int | None]) -> dict[str, Any]:
    """The measurement row of ``trial`` (``ids``: device, artifact, tool)."""
    if trial.status not in TRIAL_STATUSES:
        raise StoreError(f"trial status {trial.status!r} is not one of {', '.join(TRIAL_STATUSES)}")
    device_id, artifact_id, tool_id = ids
    p = trial.params
    row: dict[str, Any] = {
        "run_id": run_id,
        "device_id": device_id,
        "artifact_id": artifact_id,
        "model_name": trial.model.name,
        "tool_id": tool_id,
        "content_hash": trial_hash(run_uid, trial),
        "trial_index": trial.index,
        "position": trial.position,
        "status": trial.status,
        "started_at": to_db_time(trial.started_at),
        "duration_s": trial.duration_s,
        "error": trial.error,
        "command": trial.command,
        "raw_output": trial.raw_output,
        "threads": p.threads,
        "num_runs": p.runs,
        "warmup_runs": p.warmup_runs,
        "use_xnnpack": p.use_xnnpack,
        "min_secs": p.min_secs,
        "timeout_s": p.timeout_s,
        "extra_flags": list(p.extra_flags),
        "state_before": _state_json(trial.state_before),
        "state_after": _state_json(trial.state_after),
        **_result_columns(trial.result),
    }
    _nan_to_null(row)
    return row


def _result_from_row(m: SqlMeasurement) -> BenchmarkResult | None:
    if not m.has_result:
        return None
    nans = set(m.nan_fields or ())

    def col(name: str) -> Any:
        return math.nan if name in nans else getattr(m, name)

    runs = None
    if m.runs_count is not None:
        runs = RunStats(**{name: col(column) for name, column in _RUNS_COLUMNS.items()})
    known = {f.name for f in dataclasses.fields(BenchmarkResult)}
    kwargs: dict[str, Any] = {"runs": runs}
    if "warmup" in known and m.warmup_stats is not None:
        kwargs["warmup"] = from_jsonable(RunStats, m.warmup_stats, "warmup")
    if "warnings" in known:
        kwargs["warnings"] = tuple(m.result_warnings or ())
    kwargs.update({name: col(column) for name, column in _RESULT_COLUMNS.items() if name in known})
    hints = field_types(BenchmarkResult)
    for name, value in (m.result_extra or {}).items():
        if name in known:  # a field this code knows; one it does not know stays in the row
            kwargs[name] = decode_value(hints[name], value, f"result.{name}")
    return BenchmarkResult(**kwargs)


def _model(m: SqlMeasurement) -> ModelFile:
    """The trial's model: its artifact, under the file name this trial benchmarked."""
    return _named(m.artifact.to_entity(), m.model_name)


def _named(model: ModelFile, name: str | None) -> ModelFile:
    return dataclasses.replace(model, name=name) if name and name != model.name else model


def trial_from_row(m: SqlMeasurement) -> Trial:
    return _trial(m, m.device.to_entity(), _model(m), m.tool.to_entity() if m.tool else None, m.sample)


def _trial(m: Any, device: DeviceFacts, model: ModelFile, tool: ToolInfo | None, sample: Any) -> Trial:
    """A trial from a measurement (an ORM row, or a Core row: the same column names) and its relations."""
    try:
        return Trial(
            run_id=m.run_id,
            device=device,
            model=model,
            tool=tool,
            params=TrialParams(
                threads=m.threads,
                runs=m.num_runs,
                warmup_runs=m.warmup_runs,
                use_xnnpack=m.use_xnnpack,
                min_secs=m.min_secs,
                timeout_s=m.timeout_s,
                extra_flags=tuple(m.extra_flags or ()),
            ),
            index=m.trial_index,
            position=m.position,
            status=m.status,  # type: ignore[arg-type]  # CHECK constraint
            started_at=from_db_time(m.started_at),
            duration_s=m.duration_s,
            error=m.error,
            raw_output=m.raw_output,
            result=_result_from_row(m),
            samples_us=unpack_samples(sample.data, sample.encoding) if sample else None,
            state_before=from_jsonable(DeviceState, m.state_before) if m.state_before else None,
            state_after=from_jsonable(DeviceState, m.state_after) if m.state_after else None,
            command=m.command,
        )
    except DecodeError as exc:
        raise StoreError(f"measurement {m.id} cannot be read back: {exc}") from exc


def _by_id(s: Session, model: Any, ids: set[int]) -> list[Any]:
    """The ``model`` rows with these ids, in ``IN`` lists every backend accepts."""
    return [row for part in chunks(sorted(ids)) for row in s.scalars(select(model).where(model.id.in_(part)))]


class TrialQueries(StoreCore):
    """Store methods for trials."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ids of committed rows, so bulk saves do not look each one up again
        self._device_ids: dict[tuple[Any, ...], int] = {}  # by identity and changeable facts
        self._artifact_ids: dict[str, tuple[int, bool]] = {}  # sha256 -> (id, role/build/manifest all known)
        self._tool_ids: dict[str, int] = {}

    def _device_id(self, s: Session, d: DeviceFacts, pending: dict[tuple[Any, ...], int]) -> int:
        key = (d.serial, d.fingerprint, d.sdk, d.release, d.cores, d.max_freqs_khz)
        known = self._device_ids.get(key, pending.get(key))
        if known is not None:
            return known
        table = SqlDevice.__table__
        changeable = {"sdk": d.sdk, "release": d.release, "cores": d.cores, "max_freqs_khz": list(d.max_freqs_khz)}
        values = {
            "serial": d.serial,
            "fingerprint": d.fingerprint,
            "kind": d.kind,
            "abis": list(d.abis),
            "model": d.model,
            "manufacturer": d.manufacturer,
            "soc": d.soc,
            "emulation": d.emulation,
            **changeable,
        }
        insert_ignore(s, table, values, ["serial", "fingerprint"])
        where = (table.c.serial == d.serial, table.c.fingerprint == d.fingerprint)
        # facts that change without changing the hardware (an OS update) follow the latest trial
        s.execute(update(table).where(*where).values(changeable))
        pending[key] = s.execute(select(table.c.id).where(*where)).scalar_one()
        return pending[key]

    def _artifact_id(self, s: Session, m: ModelFile, pending: dict[str, tuple[int, bool]]) -> int:
        complete = m.role is not None and m.build_id is not None and m.manifest is not None
        known = self._artifact_ids.get(m.sha256, pending.get(m.sha256))
        if known is not None and (known[1] or not complete):
            return known[0]
        table = SqlArtifact.__table__
        values = {
            "sha256": m.sha256,
            "name": m.name,
            "size_bytes": m.size_bytes,
            "path": m.path or None,
            "role": m.role,
            "build_id": m.build_id,
            "manifest": m.manifest,
        }
        insert_ignore(s, table, values, ["sha256"])
        # a build's role, id and manifest fill in what an earlier plain `lab bench` of the file left empty
        for column in ("role", "build_id", "manifest"):
            if values[column] is not None:
                s.execute(
                    update(table)
                    .where(table.c.sha256 == m.sha256, table.c[column].is_(None))
                    .values({column: values[column]})
                )
        artifact_id = s.execute(select(table.c.id).where(table.c.sha256 == m.sha256)).scalar_one()
        pending[m.sha256] = (artifact_id, complete)
        return artifact_id

    def _tool_id(self, s: Session, t: ToolInfo | None, pending: dict[str, int]) -> int | None:
        if t is None:
            return None
        known = self._tool_ids.get(t.sha256, pending.get(t.sha256))
        if known is not None:
            return known
        table = SqlTool.__table__
        values = {
            "sha256": t.sha256,
            "abi": t.abi,
            "version": t.version,
            "path": t.path,
            "builtin": t.builtin,
            "source": t.source,
        }
        insert_ignore(s, table, values, ["sha256"])
        pending[t.sha256] = s.execute(select(table.c.id).where(table.c.sha256 == t.sha256)).scalar_one()
        return pending[t.sha256]

    def save_trial(self, trial: Trial) -> int:
        """Saves one trial of a started run; returns its measurement id. Thread-safe.

        Saving the same trial again returns the id it already has.

        Raises:
            StoreError: the trial has no run id, or a database error.
            NotFoundError: its run id is not in the store.
        """
        return self.save_trials([trial])[0]

    def save_trials(self, trials: Sequence[Trial]) -> list[int]:
        """Saves trials in one transaction (all or none); returns their measurement ids in order."""
        if not trials:
            return []
        run_ids = sorted({t.run_id for t in trials if t.run_id is not None})
        if len(run_ids) != len({t.run_id for t in trials}):
            raise StoreError("a trial has no run_id: start a run with Store.start_run() and set trial.run_id")
        with self._write_lock:
            with self._sessions.session(write=True) as s:
                uids = dict(s.execute(select(SqlRun.id, SqlRun.uid).where(SqlRun.id.in_(run_ids))).all())
                missing = [r for r in run_ids if r not in uids]
                if missing:
                    raise NotFoundError(f"run {missing[0]} is not in {self.shown_url}; start it with Store.start_run()")
                items = [(t, cast(int, t.run_id), uids[cast(int, t.run_id)]) for t in trials]
                ids, devices, artifacts, tools = self._insert_trials(s, items)
            self._device_ids.update(devices)
            self._artifact_ids.update(artifacts)
            self._tool_ids.update(tools)
        return ids

    def _insert_trials(
        self, s: Session, items: list[tuple[Trial, int, str]]
    ) -> tuple[list[int], dict[tuple[Any, ...], int], dict[str, tuple[int, bool]], dict[str, int]]:
        """Inserts the (trial, run id, run uid) items not stored yet.

        Returns every item's measurement id and the device, artifact and tool ids this transaction
        looked up (for the caches, once it commits).
        """
        devices: dict[tuple[Any, ...], int] = {}
        artifacts: dict[str, tuple[int, bool]] = {}
        tools: dict[str, int] = {}
        rows = []
        for trial, run_id, run_uid in items:
            ids = (
                self._device_id(s, trial.device, devices),
                self._artifact_id(s, trial.model, artifacts),
                self._tool_id(s, trial.tool, tools),
            )
            rows.append(measurement_row(trial, run_id, run_uid, ids))
        table = SqlMeasurement.__table__
        stored: dict[str, int] = {}
        for part in chunks([row["content_hash"] for row in rows]):
            found = s.execute(select(table.c.content_hash, table.c.id).where(table.c.content_hash.in_(part)))
            stored.update(found.all())
        new: dict[str, tuple[dict[str, Any], Trial]] = {}
        for row, (trial, _, _) in zip(rows, items):
            if row["content_hash"] not in stored:
                new.setdefault(row["content_hash"], (row, trial))
        if new:
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            new_ids = s.execute(stmt, [row for row, _ in new.values()]).scalars().all()
            stored.update(zip(new, new_ids))
            samples = [
                {
                    "measurement_id": stored[key],
                    "count": len(trial.samples_us),
                    "encoding": "f64le",
                    "data": pack_samples(trial.samples_us),
                }
                for key, (_, trial) in new.items()
                if trial.samples_us is not None
            ]
            if samples:
                s.execute(insert(SqlSample.__table__), samples)
            for key, (_, trial) in new.items():
                insert_op_stats(s, stored[key], trial.result)
        ids = [stored[row["content_hash"]] for row in rows]
        return ids, devices, artifacts, tools

    def load_trials(self, run_id: int) -> list[Trial]:
        """Every trial of a run, in the order they were saved. Raises NotFoundError for an unknown run."""
        with self._sessions.session() as s:
            if s.get(SqlRun, run_id) is None:
                raise NotFoundError(f"run {run_id} is not in {self.shown_url}; `lab history` lists the runs")
            rows = s.scalars(
                select(SqlMeasurement)
                .where(SqlMeasurement.run_id == run_id)
                .order_by(SqlMeasurement.id)
                .options(
                    selectinload(SqlMeasurement.device),
                    selectinload(SqlMeasurement.artifact),
                    selectinload(SqlMeasurement.tool),
                    selectinload(SqlMeasurement.sample),
                )
            ).all()
            return [trial_from_row(m) for m in rows]

    def load_trials_of_runs(self, run_ids: Sequence[int]) -> dict[int, list[Trial]]:
        """Every trial of each run of ``run_ids`` (in saving order), in a few queries for all of them:
        for callers that read many runs at once (the results site). A run without trials, or an
        unknown id, has no entry.

        Reads plain rows rather than ORM objects, and makes each device, model file and tool once:
        the ORM's per-object bookkeeping costs more than the rows themselves at thousands of trials.
        """
        found: dict[int, list[Trial]] = {}
        with self._sessions.session() as s:
            for part in chunks(list(run_ids)):
                rows = s.execute(
                    select(SqlMeasurement.__table__).where(SqlMeasurement.run_id.in_(part)).order_by(SqlMeasurement.id)
                ).all()
                devices = {d.id: d.to_entity() for d in _by_id(s, SqlDevice, {r.device_id for r in rows})}
                artifacts = {a.id: a.to_entity() for a in _by_id(s, SqlArtifact, {r.artifact_id for r in rows})}
                tool_ids = {r.tool_id for r in rows if r.tool_id is not None}
                tools = {t.id: t.to_entity() for t in _by_id(s, SqlTool, tool_ids)}
                samples: dict[int, Any] = {}
                for ids in chunks([r.id for r in rows]):
                    samples.update(
                        (sample.measurement_id, sample)
                        for sample in s.execute(select(SqlSample.__table__).where(SqlSample.measurement_id.in_(ids)))
                    )
                for m in rows:
                    model = _named(artifacts[m.artifact_id], m.model_name)
                    tool = tools[m.tool_id] if m.tool_id is not None else None
                    trial = _trial(m, devices[m.device_id], model, tool, samples.get(m.id))
                    found.setdefault(m.run_id, []).append(trial)
        return found

    def count_measurements(self) -> int:
        with self._sessions.session() as s:
            return s.execute(select(func.count()).select_from(SqlMeasurement)).scalar_one()
