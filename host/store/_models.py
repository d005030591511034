"""ORM models of the result store (SQLAlchemy 2 typed mappings).

Rows never leave the store: every class converts itself to a plain record with ``to_entity()``.
Times are stored as naive UTC; ``to_entity()`` returns them timezone-aware.

Float NaN is not stored as a number: it is stored as NULL and the column's name goes into
``measurement.nan_fields``, so a missing value and a NaN stay distinguishable and neither looks
like a latency.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from host.records import DeviceFacts, ModelFile, ToolInfo
from host.store._base import Base
from host.store.entities import RunInfo

__all__ = [
    "RUN_KINDS",
    "RUN_STATUSES",
    "TRIAL_STATUSES",
    "DEVICE_KINDS",
    "SqlDevice",
    "SqlArtifact",
    "SqlTool",
    "SqlRun",
    "SqlMeasurement",
    "SqlSample",
    "SqlOpStat",
    "SqlOutputCheck",
    "OP_SOURCES",
    "CHECK_STATUSES",
    "to_db_time",
    "from_db_time",
]

RUN_KINDS = ("bench", "run")
RUN_STATUSES = ("running", "ok", "partial", "failed", "interrupted")
TRIAL_STATUSES = ("ok", "failed", "timeout")
DEVICE_KINDS = ("physical", "emulator", "emulated")
CHECK_STATUSES = ("ok", "wrong", "failed")
OP_SOURCES = ("op", "kernel")  # benchmark_model's Run Order table; the QEMU plugin's per-kernel counts


NULLABLE_JSON = JSON(none_as_null=True)  # Python None as SQL NULL, not the JSON text 'null'


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def to_db_time(value: datetime) -> datetime:
    """Naive UTC for storage; a naive input is taken as local time (what ``datetime.now()`` gives)."""
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def from_db_time(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc)


class SqlDevice(Base):
    """A device as identified by its serial and hardware fingerprint (adb-over-TCP serials change)."""

    __tablename__ = "device"
    __table_args__ = (
        UniqueConstraint("serial", "fingerprint"),
        CheckConstraint(_in("kind", DEVICE_KINDS), name="kind"),
        Index(None, "model"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))
    abis: Mapped[list[str]] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(255))
    manufacturer: Mapped[str | None] = mapped_column(String(255))
    soc: Mapped[str | None] = mapped_column(String(255))
    sdk: Mapped[int | None] = mapped_column(Integer)
    release: Mapped[str | None] = mapped_column(String(64))
    cores: Mapped[int | None] = mapped_column(Integer)
    max_freqs_khz: Mapped[list[int | None]] = mapped_column(JSON)
    emulation: Mapped[str | None] = mapped_column(String(255))

    def to_entity(self) -> DeviceFacts:
        return DeviceFacts(
            serial=self.serial,
            kind=self.kind,  # type: ignore[arg-type]  # CHECK constraint keeps it a DeviceKind
            abis=tuple(self.abis),
            model=self.model,
            manufacturer=self.manufacturer,
            soc=self.soc,
            sdk=self.sdk,
            release=self.release,
            cores=self.cores,
            max_freqs_khz=tuple(self.max_freqs_khz),
            emulation=self.emulation,
        )


class SqlArtifact(Base):
    """A model file, identified by its sha256; ``manifest`` is its build manifest entry when lab built it."""

    __tablename__ = "artifact"
    __table_args__ = (UniqueConstraint("sha256"), Index(None, "name"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str | None] = mapped_column(Text)  # where it was last benchmarked from
    role: Mapped[str | None] = mapped_column(String(64))
    build_id: Mapped[str | None] = mapped_column(String(255))
    manifest: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)

    def to_entity(self) -> ModelFile:
        return ModelFile(
            sha256=self.sha256,
            name=self.name,
            size_bytes=self.size_bytes,
            path=self.path or "",
            role=self.role,
            build_id=self.build_id,
            manifest=self.manifest,
        )


class SqlTool(Base):
    """A benchmark_model binary (or a device's built-in runner), identified by its sha256."""

    __tablename__ = "tool"
    __table_args__ = (UniqueConstraint("sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    abi: Mapped[str] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(255))
    path: Mapped[str | None] = mapped_column(Text)
    builtin: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str | None] = mapped_column(Text)

    def to_entity(self) -> ToolInfo:
        return ToolInfo(
            sha256=self.sha256,
            abi=self.abi,
            version=self.version,
            path=self.path,
            builtin=self.builtin,
            source=self.source,
        )


class SqlRun(Base):
    """One `lab bench` or `lab run` invocation. ``uid`` makes it the same run in every store it is imported to."""

    __tablename__ = "run"
    __table_args__ = (
        UniqueConstraint("uid"),
        CheckConstraint(_in("kind", RUN_KINDS), name="kind"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        Index(None, "started_at"),
        Index(None, "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    lab_version: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_started: Mapped[str | None] = mapped_column(String(64))  # the process's start time, against pid reuse
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    measurements: Mapped[list[SqlMeasurement]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )

    def to_entity(self, trials_ok: int = 0, trials_failed: int = 0) -> RunInfo:
        return RunInfo(
            id=self.id,
            uid=self.uid,
            kind=self.kind,
            status=self.status,
            config=dict(self.config or {}),
            lab_version=self.lab_version,
            host=self.host,
            pid=self.pid,
            started_at=from_db_time(self.started_at),
            finished_at=from_db_time(self.finished_at) if self.finished_at else None,
            trials_ok=trials_ok,
            trials_failed=trials_failed,
        )


class SqlMeasurement(Base):
    """One trial: every figure benchmark_model printed, its parameters, the device state around it, raw output.

    ``result_*`` flags: ``has_result`` False means the trial printed nothing parseable; the figure
    columns are then all NULL. Columns the code does not know of yet (a newer BenchmarkResult
    field) land in ``result_extra`` so nothing printed is lost.
    """

    __tablename__ = "measurement"
    __table_args__ = (
        UniqueConstraint("content_hash"),
        CheckConstraint(_in("status", TRIAL_STATUSES), name="status"),
        # history: per run, and per model/device over time; samples and loads go through run_id.
        Index(None, "run_id", "artifact_id", "device_id"),
        Index(None, "artifact_id", "device_id", "run_id"),
        Index(None, "device_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id"))
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifact.id"))
    tool_id: Mapped[int | None] = mapped_column(ForeignKey("tool.id"))
    content_hash: Mapped[str] = mapped_column(String(32))
    trial_index: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    duration_s: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    command: Mapped[str | None] = mapped_column(Text)
    raw_output: Mapped[str] = mapped_column(Text, default="")
    # parameters asked for
    threads: Mapped[int] = mapped_column(Integer)
    num_runs: Mapped[int] = mapped_column(Integer)
    warmup_runs: Mapped[int] = mapped_column(Integer)
    use_xnnpack: Mapped[bool] = mapped_column()
    min_secs: Mapped[float | None] = mapped_column(Float)
    timeout_s: Mapped[float] = mapped_column(Float)
    extra_flags: Mapped[list[str]] = mapped_column(JSON)
    # what benchmark_model printed (µs, MB)
    has_result: Mapped[bool] = mapped_column(default=False)
    runs_count: Mapped[int | None] = mapped_column(Integer)
    curr_us: Mapped[float | None] = mapped_column(Float)
    first_us: Mapped[float | None] = mapped_column(Float)
    min_us: Mapped[float | None] = mapped_column(Float)
    max_us: Mapped[float | None] = mapped_column(Float)
    avg_us: Mapped[float | None] = mapped_column(Float)
    std_us: Mapped[float | None] = mapped_column(Float)
    p5_us: Mapped[float | None] = mapped_column(Float)
    median_us: Mapped[float | None] = mapped_column(Float)
    p95_us: Mapped[float | None] = mapped_column(Float)
    warmup_stats: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)  # the warm-up RunStats line
    init_us: Mapped[float | None] = mapped_column(Float)
    first_inference_us: Mapped[float | None] = mapped_column(Float)
    warmup_avg_us: Mapped[float | None] = mapped_column(Float)
    inference_avg_us: Mapped[float | None] = mapped_column(Float)
    peak_memory_init_mb: Mapped[float | None] = mapped_column(Float)
    peak_memory_overall_mb: Mapped[float | None] = mapped_column(Float)
    memory_delta_init_mb: Mapped[float | None] = mapped_column(Float)
    memory_delta_overall_mb: Mapped[float | None] = mapped_column(Float)
    periodic_peak_memory_mb: Mapped[float | None] = mapped_column(Float)
    reported_threads: Mapped[int | None] = mapped_column(Integer)
    reported_xnnpack: Mapped[bool | None] = mapped_column()
    xnnpack_applied: Mapped[bool | None] = mapped_column()
    model_size_mb: Mapped[float | None] = mapped_column(Float)
    timer_overhead_us: Mapped[float | None] = mapped_column(Float)
    runner: Mapped[str | None] = mapped_column(Text)
    result_warnings: Mapped[list[str]] = mapped_column(JSON)
    result_extra: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    nan_fields: Mapped[list[str] | None] = mapped_column(NULLABLE_JSON)
    # guest instructions per inference under QEMU (issue 8), when counted
    instructions_first: Mapped[int | None] = mapped_column(BigInteger)
    instructions_min: Mapped[int | None] = mapped_column(BigInteger)
    instructions_median: Mapped[int | None] = mapped_column(BigInteger)
    # the file name this trial benchmarked (an artifact is its bytes; two names can share them); NULL: the artifact's
    model_name: Mapped[str | None] = mapped_column(String(1024))
    # device state around the trial (DeviceState as JSON)
    state_before: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    state_after: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)

    run: Mapped[SqlRun] = relationship(back_populates="measurements")
    device: Mapped[SqlDevice] = relationship()
    artifact: Mapped[SqlArtifact] = relationship()
    tool: Mapped[SqlTool | None] = relationship()
    sample: Mapped[SqlSample | None] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    op_stats: Mapped[list[SqlOpStat]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class SqlSample(Base):
    """A trial's raw per-invoke times, packed: one row per trial, ``count`` little-endian float64 values.

    One row per sample would make 100 rows per trial (10^8 rows for a million trials, each with
    its own key and index entry, ~40 bytes of overhead per 8-byte value); packed, the samples cost
    their 8 bytes each and are read back in one go, which is how they are used (rank tests,
    recomputed percentiles). float64 keeps the runner's values exactly.
    """

    __tablename__ = "sample"

    measurement_id: Mapped[int] = mapped_column(
        ForeignKey("measurement.id", ondelete="CASCADE"), primary_key=True
    )
    count: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(String(16), default="f64le")
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SqlOpStat(Base):
    """One op of a trial's per-op profile (``lab bench --ops``), per inference.

    ``source`` "op": a row of benchmark_model's ``Run Order`` table (``op_index`` its run-order
    position, ``node_type`` e.g. CONV_2D, ``name`` as printed, ``avg_ms``, ``percent`` of the total,
    ``times_called``). ``source`` "kernel": a function the QEMU plugin counted on an emulated
    device (``op_index`` its rank, ``node_type`` its library file, ``name`` the function,
    ``instructions`` per inference, ``percent``). The trial's whole profile also stays in
    ``measurement.result_extra``; these rows are what comparisons query.
    """

    __tablename__ = "op_stat"
    __table_args__ = (
        UniqueConstraint("measurement_id", "source", "op_index"),
        CheckConstraint(_in("source", OP_SOURCES), name="source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    measurement_id: Mapped[int] = mapped_column(ForeignKey("measurement.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    op_index: Mapped[int] = mapped_column(Integer)
    node_type: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(Text)
    avg_ms: Mapped[float | None] = mapped_column(Float)
    percent: Mapped[float | None] = mapped_column(Float)
    times_called: Mapped[int | None] = mapped_column(Integer)
    instructions: Mapped[float | None] = mapped_column(Float)



class SqlOutputCheck(Base):
    """The on-device output check of one model on one device in a run (``host.bench.verify``):
    ``status`` ok, wrong (outputs beyond the tolerance: "wrong output on this device") or failed
    (the check could not be made; ``error`` says why), with its figures and the rule applied."""

    __tablename__ = "output_check"
    __table_args__ = (
        UniqueConstraint("run_id", "device_id", "artifact_id"),
        CheckConstraint(_in("status", CHECK_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id"))
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifact.id"))
    model_name: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16))
    inputs: Mapped[int] = mapped_column(Integer)
    precision: Mapped[str] = mapped_column(String(16))
    tolerance: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column(DateTime)
    duration_s: Mapped[float] = mapped_column(Float)
    max_abs_error: Mapped[float | None] = mapped_column(Float)
    max_rel_error: Mapped[float | None] = mapped_column(Float)
    top1_agreement: Mapped[float | None] = mapped_column(Float)
    baseline_agreement: Mapped[float | None] = mapped_column(Float)
    baseline: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(Text)
    command: Mapped[str | None] = mapped_column(Text)

    device: Mapped[SqlDevice] = relationship(lazy="joined")
    artifact: Mapped[SqlArtifact] = relationship(lazy="joined")


import host.store._farm_models  # noqa: E402,F401  (the farm's tables join this metadata)
