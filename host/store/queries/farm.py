"""The device farm's queue (issue 9): models as bytes, jobs, agents' hosts and devices, leases.

Claiming is the only concurrency-sensitive step: a queued job is picked with ``SELECT … FOR
UPDATE SKIP LOCKED`` (PostgreSQL; on SQLite the clause is dropped and the write lock serialises
claimers), and in the same transaction the device claim row is taken with a conditional UPDATE,
which PostgreSQL re-checks after waiting on a concurrent claimer — so two agents that see one
device never both run a job on it. Every other write is keyed by the agent's uid and the job's
attempt number, so an agent whose lease expired cannot finish, or write into, a job another
agent has since claimed.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from host import __version__
from host.errors import NotFoundError, StoreError, UsageError
from host.store._farm_models import JOB_STATUSES, SqlFarmDevice, SqlFarmHost, SqlFarmJob, SqlFarmModel
from host.store._models import SqlRun, from_db_time, to_db_time
from host.store.queries._core import StoreCore, insert_ignore

__all__ = [
    "FarmQueries",
    "FarmJob",
    "FarmDevice",
    "JobSpec",
    "AgentHandle",
    "OFFLINE_AFTER_HEARTBEATS",
]

OFFLINE_AFTER_HEARTBEATS = 3  # a device whose agent missed this many heartbeats is offline
_CLAIM_CANDIDATES = 32  # queued jobs a claim looks at, to pass over those that failed set-up on its device


@dataclass(frozen=True)
class JobSpec:
    """What ``submit_jobs`` stores for one job; exactly one target field is usually set."""

    models: list[dict[str, Any]]
    params: dict[str, Any]
    trials: int
    priority: int = 0
    device_key: str | None = None
    device_serial: str | None = None
    device_model: str | None = None
    abi: str | None = None
    max_attempts: int = 3


@dataclass(frozen=True)
class FarmJob:
    id: int
    status: str
    priority: int
    models: list[dict[str, Any]]
    params: dict[str, Any]
    trials: int
    target: str  # what the job asks for, as the user wrote it ("device 127.0.0.1:5555", "model Pixel 7")
    device_key: str | None
    device_serial: str | None
    device_model: str | None
    abi: str | None
    attempt: int
    max_attempts: int
    holder: str | None
    host_name: str | None
    device_id: int | None
    run_id: int | None
    error: str | None
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    failed_devices: tuple[int, ...] = ()  # devices it could not be set up on; it is not claimed there again


@dataclass(frozen=True)
class FarmDevice:
    host: str
    serial: str
    key: str
    model: str | None
    abis: list[str]
    state: str  # idle, busy or offline
    heartbeat_at: datetime
    job_id: int | None
    facts: dict[str, Any]


@dataclass(frozen=True)
class AgentHandle:
    """A registered agent: its host row and the uid that marks what it holds."""

    host_id: int
    name: str
    uid: str


def _target(job: SqlFarmJob) -> str:
    if job.device_key:
        return f"device {job.device_key.split('/', 1)[-1]}"
    if job.device_serial:
        return f"device {job.device_serial}"
    if job.device_model:
        return f"device model {job.device_model}"
    if job.abi:
        return f"abi {job.abi}"
    return "any device"


def _job(job: SqlFarmJob) -> FarmJob:
    return FarmJob(
        id=job.id,
        status=job.status,
        priority=job.priority,
        models=list(job.models),
        params=dict(job.params),
        trials=job.trials,
        target=_target(job),
        device_key=job.device_key,
        device_serial=job.device_serial,
        device_model=job.device_model,
        abi=job.abi,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        holder=job.holder,
        host_name=job.host_name,
        device_id=job.device_id,
        run_id=job.run_id,
        error=job.error,
        failed_devices=tuple(job.failed_devices or ()),
        submitted_at=from_db_time(job.submitted_at),
        started_at=from_db_time(job.started_at) if job.started_at else None,
        finished_at=from_db_time(job.finished_at) if job.finished_at else None,
    )


def _matches(device: SqlFarmDevice) -> Any:
    """The condition a queued job meets to run on ``device``."""
    conditions = [SqlFarmJob.device_key == device.key, SqlFarmJob.device_serial == device.serial]
    if device.model:
        conditions.append(SqlFarmJob.device_model == device.model)
    if device.abis:
        conditions.append(SqlFarmJob.abi.in_(list(device.abis)))
    return or_(*conditions)


class FarmQueries(StoreCore):
    """Store methods of the device farm."""

    def _db_now(self, s: Session) -> datetime:
        """The database's clock, never the agent's: every lease, heartbeat, expiry and requeue time of
        the farm comes from here, so hosts with skewed clocks can neither steal nor lose jobs.

        PostgreSQL's ``now()`` (the transaction's start, the same for every statement in it); a SQLite
        file lives on one machine, whose clock (``self.clock``) is then the database's.
        """
        if s.get_bind().dialect.name == "postgresql":
            return to_db_time(s.scalar(select(func.now())))
        return to_db_time(self.clock())

    # -- models -------------------------------------------------------------------------------

    def store_model(self, sha256: str, name: str, data: bytes) -> bool:
        """Keeps a model's bytes once per sha256; returns True when they were new."""
        with self._write_lock, self._sessions.session(write=True) as s:
            values = {"sha256": sha256, "name": name, "size_bytes": len(data), "data": data, "stored_at": self._db_now(s)}
            return insert_ignore(s, SqlFarmModel.__table__, values, ["sha256"])

    def model_bytes(self, sha256: str) -> bytes:
        with self._sessions.session() as s:
            data = s.scalar(select(SqlFarmModel.data).where(SqlFarmModel.sha256 == sha256))
        if data is None:
            raise NotFoundError(f"model {sha256[:12]} is not stored in {self.shown_url}; submit it again")
        return bytes(data)

    # -- jobs ---------------------------------------------------------------------------------

    def submit_jobs(self, specs: list[JobSpec]) -> list[int]:
        """Queues one job per spec, in order; returns their ids."""
        with self._write_lock, self._sessions.session(write=True) as s:
            now = self._db_now(s)
            rows = [
                SqlFarmJob(
                    status="queued", priority=spec.priority, models=spec.models, params=spec.params,
                    trials=spec.trials, device_key=spec.device_key, device_serial=spec.device_serial,
                    device_model=spec.device_model, abi=spec.abi, attempt=0, max_attempts=spec.max_attempts,
                    submitted_at=now,
                )
                for spec in specs
            ]
            s.add_all(rows)
            s.flush()
            return [row.id for row in rows]

    def list_jobs(self, statuses: list[str] | None = None, ids: list[int] | None = None) -> list[FarmJob]:
        """Jobs, oldest first, optionally only those in ``statuses`` or with ``ids``."""
        unknown = sorted(set(statuses or []) - set(JOB_STATUSES))
        if unknown:
            raise UsageError(f"job status {', '.join(unknown)} is not one of {', '.join(JOB_STATUSES)}")
        query = select(SqlFarmJob).order_by(SqlFarmJob.id)
        if statuses:
            query = query.where(SqlFarmJob.status.in_(statuses))
        if ids is not None:
            query = query.where(SqlFarmJob.id.in_(ids))
        with self._sessions.session() as s:
            return [_job(job) for job in s.scalars(query)]

    def cancel_job(self, job_id: int) -> FarmJob:
        """Cancels a queued or running job (a running one stops at its next trial)."""
        with self._write_lock, self._sessions.session(write=True) as s:
            job = s.get(SqlFarmJob, job_id, with_for_update=True)
            if job is None:
                raise NotFoundError(f"job {job_id} is not in {self.shown_url}; `lab jobs` lists the jobs")
            if job.status not in ("queued", "running"):
                raise StoreError(f"job {job_id} is already {job.status}; only queued or running jobs can be cancelled")
            job.status = "cancelled"
            job.finished_at = self._db_now(s)
            job.lease_until = None
            s.flush()
            return _job(job)

    def jobs_without_device(self, jobs: list[FarmJob]) -> set[int]:
        """The queued jobs among ``jobs`` that no registered, online device could take."""
        queued = [job for job in jobs if job.status == "queued"]
        if not queued:
            return set()
        online = [d for d in self.farm_devices() if d.state != "offline"]
        lonely = set()
        for job in queued:
            if not any(
                d.key == job.device_key
                or d.serial == job.device_serial
                or (job.device_model is not None and d.model == job.device_model)
                or (job.abi is not None and job.abi in d.abis)
                for d in online
            ):
                lonely.add(job.id)
        return lonely

    # -- agents -------------------------------------------------------------------------------

    def register_agent(self, name: str, heartbeat_s: float) -> AgentHandle:
        """Records (or takes over) the host row ``name`` for this process."""
        uid = uuid.uuid4().hex
        with self._write_lock, self._sessions.session(write=True) as s:
            now = self._db_now(s)
            insert_ignore(s, SqlFarmHost.__table__, {
                "name": name, "machine": socket.gethostname(), "pid": os.getpid(), "agent_uid": uid,
                "lab_version": __version__, "heartbeat_s": heartbeat_s, "started_at": now, "heartbeat_at": now,
            }, ["name"])
            host = s.scalars(select(SqlFarmHost).where(SqlFarmHost.name == name).with_for_update()).one()
            host.machine = socket.gethostname()
            host.pid = os.getpid()
            host.agent_uid = uid
            host.lab_version = __version__
            host.heartbeat_s = heartbeat_s
            host.started_at = now
            host.heartbeat_at = now
            host.stopped_at = None
            s.flush()
            return AgentHandle(host_id=host.id, name=name, uid=uid)

    def register_devices(self, agent: AgentHandle, devices: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
        """Upserts the agent's devices (key, facts as JSON); returns key -> device id."""
        ids: dict[str, int] = {}
        with self._write_lock, self._sessions.session(write=True) as s:
            now = self._db_now(s)
            for key, facts in devices:
                values = {
                    "serial": facts["serial"], "host_id": agent.host_id, "model": facts.get("model"),
                    "abis": list(facts.get("abis") or []), "facts": facts, "heartbeat_at": now,
                }
                insert_ignore(s, SqlFarmDevice.__table__, {"key": key, **values}, ["key"])
                row = s.scalars(select(SqlFarmDevice).where(SqlFarmDevice.key == key).with_for_update()).one()
                for name, value in values.items():
                    setattr(row, name, value)
                s.flush()
                ids[key] = row.id
        return ids

    def heartbeat(self, agent: AgentHandle, device_ids: list[int], job_ids: list[int], lease_s: float) -> None:
        """Marks the agent and its devices alive and renews the leases of the jobs it is running
        (``job_ids``: a job the agent no longer works on lapses and is requeued) and their devices.

        Rows are locked in the order every farm transaction uses (host, job, device) so that a
        heartbeat and a job finishing in another thread cannot deadlock.
        """
        with self._write_lock, self._sessions.session(write=True) as s:
            now = self._db_now(s)
            until = now + timedelta(seconds=lease_s)
            s.execute(update(SqlFarmHost).where(SqlFarmHost.id == agent.host_id).values(heartbeat_at=now))
            held: list[int] = []
            if job_ids:
                held = list(s.scalars(
                    update(SqlFarmJob)
                    .where(SqlFarmJob.id.in_(job_ids), SqlFarmJob.holder == agent.uid, SqlFarmJob.status == "running")
                    .values(lease_until=until)
                    .returning(SqlFarmJob.device_id)
                ))
            if device_ids:
                s.execute(update(SqlFarmDevice).where(SqlFarmDevice.id.in_(device_ids)).values(heartbeat_at=now))
            if held:
                s.execute(
                    update(SqlFarmDevice)
                    .where(SqlFarmDevice.id.in_(held), SqlFarmDevice.holder == agent.uid)
                    .values(lease_until=until)
                )

    def stop_agent(self, agent: AgentHandle) -> None:
        """A graceful stop: the host shows as stopped and its device claims are let go."""
        with self._write_lock, self._sessions.session(write=True) as s:
            s.execute(
                update(SqlFarmHost)
                .where(SqlFarmHost.id == agent.host_id, SqlFarmHost.agent_uid == agent.uid)
                .values(stopped_at=self._db_now(s))
            )
            s.execute(
                update(SqlFarmDevice).where(SqlFarmDevice.holder == agent.uid).values(holder=None, lease_until=None)
            )

    def requeue_expired(self) -> tuple[list[int], list[int]]:
        """Jobs whose lease ran out: queued again, or failed after ``max_attempts``; returns (requeued, failed).

        Their runs (the attempt that died) are closed as ``interrupted``.
        """
        with self._write_lock, self._sessions.session(write=True) as s:
            now = self._db_now(s)
            expired = s.scalars(
                select(SqlFarmJob)
                .where(SqlFarmJob.status == "running", SqlFarmJob.lease_until < now)
                .with_for_update(skip_locked=True)
            ).all()
            requeued, failed = [], []
            for job in expired:
                if job.run_id is not None:
                    s.execute(
                        update(SqlRun)
                        .where(SqlRun.id == job.run_id, SqlRun.status == "running")
                        .values(status="interrupted", finished_at=now)
                    )
                if job.attempt >= job.max_attempts:
                    job.status = "failed"
                    job.finished_at = now
                    job.error = f"its agent stopped answering {job.attempt} time(s) (lease expired); gave up"
                    failed.append(job.id)
                else:
                    job.status = "queued"
                    job.error = f"attempt {job.attempt} on {job.host_name} lost (lease expired); requeued"
                    requeued.append(job.id)
                job.holder = None
                job.lease_until = None
                job.device_id = None
                job.run_id = None
            return requeued, failed

    def claim_job(self, agent: AgentHandle, device_id: int, lease_s: float) -> FarmJob | None:
        """Takes the best queued job ``device_id`` can run, and the device with it; None when there is none.

        Highest priority first, then oldest. The device claim fails (and nothing is taken) while
        another agent holds the device with a live lease.
        """
        with self._write_lock, self._sessions.session(write=True) as s:
            now = self._db_now(s)
            until = now + timedelta(seconds=lease_s)
            device = s.get(SqlFarmDevice, device_id)
            if device is None:
                return None
            candidates = s.scalars(
                select(SqlFarmJob)
                .where(SqlFarmJob.status == "queued", _matches(device))
                .order_by(SqlFarmJob.priority.desc(), SqlFarmJob.id)
                .limit(_CLAIM_CANDIDATES)
                .with_for_update(skip_locked=True)
            ).all()
            job = next((j for j in candidates if device_id not in (j.failed_devices or ())), None)
            if job is None:
                return None
            taken = s.execute(
                update(SqlFarmDevice)
                .where(
                    SqlFarmDevice.id == device_id,
                    or_(
                        SqlFarmDevice.holder.is_(None),
                        SqlFarmDevice.lease_until.is_(None),
                        SqlFarmDevice.lease_until < now,
                    ),
                )
                .values(holder=agent.uid, lease_until=until)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 0:
                s.rollback()
                return None
            job.status = "running"
            job.holder = agent.uid
            job.host_name = agent.name
            job.device_id = device_id
            job.attempt += 1
            job.lease_until = until
            job.started_at = now
            s.flush()
            return _job(job)

    def job_is_mine(self, agent: AgentHandle, job_id: int, attempt: int) -> bool:
        """Whether the agent still holds ``job_id`` at ``attempt`` (not cancelled, not requeued)."""
        with self._sessions.session() as s:
            return (
                s.scalar(
                    select(SqlFarmJob.id).where(
                        SqlFarmJob.id == job_id,
                        SqlFarmJob.holder == agent.uid,
                        SqlFarmJob.attempt == attempt,
                        SqlFarmJob.status == "running",
                    )
                )
                is not None
            )

    def attach_run(self, agent: AgentHandle, job_id: int, attempt: int, run_id: int) -> bool:
        """Ties the run of this attempt to the job; False when the job is no longer the agent's."""
        with self._write_lock, self._sessions.session(write=True) as s:
            done = s.execute(
                update(SqlFarmJob)
                .where(SqlFarmJob.id == job_id, SqlFarmJob.holder == agent.uid, SqlFarmJob.attempt == attempt,
                       SqlFarmJob.status == "running")
                .values(run_id=run_id)
            )
            return done.rowcount == 1

    def finish_job(
        self, agent: AgentHandle, job: FarmJob, status: str, error: str | None = None
    ) -> bool:
        """Closes the agent's attempt at ``job`` (done, failed, or queued to give it back) and frees its device.

        Returns False when the job was no longer the agent's (cancelled or requeued meanwhile).
        """
        if status not in ("done", "failed", "queued"):
            raise StoreError(f"a job attempt ends as done, failed or queued, not {status!r}")
        values: dict[str, Any] = {"status": status, "lease_until": None, "error": error}
        if status == "queued":
            values.update(holder=None, device_id=None, run_id=None, attempt=SqlFarmJob.attempt - 1)
        with self._write_lock, self._sessions.session(write=True) as s:
            if status != "queued":
                values["finished_at"] = self._db_now(s)
            done = s.execute(
                update(SqlFarmJob)
                .where(SqlFarmJob.id == job.id, SqlFarmJob.holder == agent.uid, SqlFarmJob.attempt == job.attempt,
                       SqlFarmJob.status == "running")
                .values(**values)
            )
            if job.device_id is not None:
                s.execute(
                    update(SqlFarmDevice)
                    .where(SqlFarmDevice.id == job.device_id, SqlFarmDevice.holder == agent.uid)
                    .values(holder=None, lease_until=None)
                )
            return done.rowcount == 1

    def requeue_elsewhere(self, agent: AgentHandle, job: FarmJob, reason: str) -> str | None:
        """The job could not be set up on its device: queue it for another matching device (the
        attempt counts, this device is passed over from now on), or fail it with every device's reason
        once it has used its attempts. Returns the new status, or None when the job was no longer the agent's.
        """
        with self._write_lock, self._sessions.session(write=True) as s:
            row = s.scalar(
                select(SqlFarmJob)
                .where(SqlFarmJob.id == job.id, SqlFarmJob.holder == agent.uid, SqlFarmJob.attempt == job.attempt,
                       SqlFarmJob.status == "running")
                .with_for_update()
            )
            if row is None:
                return None
            failed = [*(row.failed_devices or ()), *([job.device_id] if job.device_id is not None else [])]
            earlier = row.error if row.failed_devices else None  # the reasons of the devices before this one
            reasons = " | ".join(r for r in (earlier, f"{agent.name}: {reason}") if r)
            row.failed_devices = failed
            row.holder = None
            row.lease_until = None
            row.run_id = None
            row.device_id = None
            if row.attempt >= row.max_attempts:
                row.status = "failed"
                row.finished_at = self._db_now(s)
                row.error = f"could not be set up on {len(failed)} device(s): {reasons}"
            else:
                row.status = "queued"
                row.error = reasons
            if job.device_id is not None:
                s.execute(
                    update(SqlFarmDevice)
                    .where(SqlFarmDevice.id == job.device_id, SqlFarmDevice.holder == agent.uid)
                    .values(holder=None, lease_until=None)
                )
            return row.status

    def release_device(self, agent: AgentHandle, device_id: int) -> None:
        """Lets go of the agent's claim on a device (after a job it lost to a cancel or a requeue)."""
        with self._write_lock, self._sessions.session(write=True) as s:
            s.execute(
                update(SqlFarmDevice)
                .where(SqlFarmDevice.id == device_id, SqlFarmDevice.holder == agent.uid)
                .values(holder=None, lease_until=None)
            )

    # -- the farm as a whole ------------------------------------------------------------------

    def farm_devices(self) -> list[FarmDevice]:
        """Every registered device with its host, last heartbeat and state (idle, busy, offline)."""
        with self._sessions.session() as s:
            now = self._db_now(s)
            rows = s.execute(
                select(SqlFarmDevice, SqlFarmHost).join(SqlFarmHost, SqlFarmDevice.host_id == SqlFarmHost.id)
                .order_by(SqlFarmHost.name, SqlFarmDevice.serial)
            ).all()
            busy = dict(
                s.execute(
                    select(SqlFarmJob.device_id, SqlFarmJob.id).where(
                        SqlFarmJob.status == "running", SqlFarmJob.device_id.is_not(None)
                    )
                ).all()
            )
            devices = []
            for device, host in rows:
                stale = now - device.heartbeat_at > timedelta(seconds=OFFLINE_AFTER_HEARTBEATS * host.heartbeat_s)
                if host.stopped_at is not None or stale:
                    state = "offline"
                elif device.id in busy:
                    state = "busy"
                else:
                    state = "idle"
                devices.append(
                    FarmDevice(
                        host=host.name, serial=device.serial, key=device.key, model=device.model,
                        abis=list(device.abis), state=state, heartbeat_at=from_db_time(device.heartbeat_at),
                        job_id=busy.get(device.id), facts=dict(device.facts),
                    )
                )
        return devices
