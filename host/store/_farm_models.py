"""ORM models of the device farm (issue 9): agents' hosts, their devices, stored models, jobs.

A farm shares one PostgreSQL database between hosts. The tables live in the same metadata as the
result store so one migration history covers both; they are created on SQLite too (the schema
stays portable) even though ``lab agent`` refuses to run on SQLite.

Times are naive UTC from the agents' clocks (hosts are expected to run NTP); leases are generous
multiples of the heartbeat, so small skews do not requeue a live job.
"""

from __future__ import annotations

from datetime import datetime
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
from sqlalchemy.orm import Mapped, mapped_column

from host.store._base import Base

__all__ = ["JOB_STATUSES", "SqlFarmHost", "SqlFarmDevice", "SqlFarmModel", "SqlFarmJob"]

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")


class SqlFarmHost(Base):
    """One ``lab agent`` by its host name; ``stopped_at`` is set by a graceful stop."""

    __tablename__ = "farm_host"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    machine: Mapped[str] = mapped_column(String(255))  # socket.gethostname() of the agent
    pid: Mapped[int] = mapped_column(Integer)
    agent_uid: Mapped[str] = mapped_column(String(32))  # the running agent process, new at each start
    lab_version: Mapped[str] = mapped_column(String(64))
    heartbeat_s: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)


class SqlFarmDevice(Base):
    """A device an agent serves. ``key`` is machine/serial (TCP serials are per machine).

    ``holder``/``lease_until`` is the device claim: the agent running a job on it. Two agents that
    see the same device take it in turn, never both at once.
    """

    __tablename__ = "farm_device"
    __table_args__ = (UniqueConstraint("key"), Index(None, "model"), Index(None, "host_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512))
    serial: Mapped[str] = mapped_column(String(255))
    host_id: Mapped[int] = mapped_column(ForeignKey("farm_host.id", ondelete="CASCADE"))
    model: Mapped[str | None] = mapped_column(String(255))
    abis: Mapped[list[str]] = mapped_column(JSON)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    holder: Mapped[str | None] = mapped_column(String(32))  # agent_uid of the claimer
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)


class SqlFarmModel(Base):
    """A submitted .tflite, content-addressed: agents on other hosts read the bytes from here."""

    __tablename__ = "farm_model"
    __table_args__ = (UniqueConstraint("sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(DateTime)


class SqlFarmJob(Base):
    """One benchmark to run on one device: by device key or serial, by device model, or by ABI.

    ``attempt`` grows at each claim; the agent writes trials only while the job is still its own at
    that attempt, so a requeued job never gets a second set of trials in its run.
    """

    __tablename__ = "farm_job"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(repr(s) for s in JOB_STATUSES) + ")", name="status"
        ),
        Index(None, "status", "priority", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    models: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"sha256", "name"}] in submit order
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # TrialParams as JSON
    trials: Mapped[int] = mapped_column(Integer)
    device_key: Mapped[str | None] = mapped_column(String(512))
    device_serial: Mapped[str | None] = mapped_column(String(255))
    device_model: Mapped[str | None] = mapped_column(String(255))
    abi: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    holder: Mapped[str | None] = mapped_column(String(32))
    host_name: Mapped[str | None] = mapped_column(String(255))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("farm_device.id", ondelete="SET NULL"))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)
    failed_devices: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True))  # set-up failed there: not again
    submitted_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
