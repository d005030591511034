"""Runs: starting and finishing them, listing them, and closing the ones a killed process left open."""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Select, case, func, select, update

from host import __version__
from host.errors import NotFoundError, StoreError
from host.records import to_jsonable
from host.store._models import RUN_KINDS, RUN_STATUSES, SqlMeasurement, SqlRun, to_db_time
from host.store.entities import RunInfo
from host.store.queries._core import StoreCore

__all__ = ["RunQueries", "process_token", "process_alive", "FINAL_STATUSES"]

FINAL_STATUSES = tuple(s for s in RUN_STATUSES if s != "running")


def process_token(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux: /proc/PID/stat field 22), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name in (...) may hold spaces
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, token: str | None) -> bool:
    """Whether the process that started a run still runs: same pid, same start time, not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
        if state[state.rfind(")") + 2 :].startswith("Z"):
            return False
    except OSError:
        pass
    current = process_token(pid)
    return token is None or current is None or current == token


def _counts() -> Select[Any]:
    ok = func.sum(case((SqlMeasurement.status == "ok", 1), else_=0))
    return select(SqlMeasurement.run_id, ok, func.count() - ok).group_by(SqlMeasurement.run_id)


def _jsonable_config(config: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise StoreError(f"a run's config must be a dict, got {type(config).__name__}")
    return json.loads(json.dumps(to_jsonable(config), default=str))


class RunQueries(StoreCore):
    """Store methods for runs."""

    def start_run(self, kind: str, config: dict[str, Any]) -> int:
        """Records a new run in status ``running``; returns its id.

        The run keeps this lab's version, the host name, the pid and the process start time, so a
        later ``open_store`` can tell that the process died and mark the run ``interrupted``.
        """
        if kind not in RUN_KINDS:
            raise StoreError(f"run kind {kind!r} is not one of {', '.join(RUN_KINDS)}")
        pid = os.getpid()
        run = SqlRun(
            uid=uuid.uuid4().hex,
            kind=kind,
            status="running",
            config=_jsonable_config(config),
            lab_version=__version__,
            host=socket.gethostname(),
            pid=pid,
            pid_started=process_token(pid),
            started_at=to_db_time(datetime.now(timezone.utc)),
        )
        with self._write_lock, self._sessions.session(write=True) as s:
            s.add(run)
            s.flush()
            return run.id

    def finish_run(self, run_id: int, status: str) -> None:
        """Closes a run with ``status`` (ok, partial, failed or interrupted)."""
        if status not in FINAL_STATUSES:
            raise StoreError(f"a run finishes as one of {', '.join(FINAL_STATUSES)}, not {status!r}")
        with self._write_lock, self._sessions.session(write=True) as s:
            done = s.execute(
                update(SqlRun)
                .where(SqlRun.id == run_id)
                .values(status=status, finished_at=to_db_time(datetime.now(timezone.utc)))
            )
            if done.rowcount == 0:
                raise NotFoundError(f"run {run_id} is not in {self.shown_url}")

    def get_run(self, run_id: int) -> RunInfo:
        """The run with its trial counts. Raises NotFoundError for an unknown id."""
        with self._sessions.session() as s:
            run = s.get(SqlRun, run_id)
            if run is None:
                raise NotFoundError(f"run {run_id} is not in {self.shown_url}; `lab history` lists the runs")
            counts = s.execute(_counts().where(SqlMeasurement.run_id == run_id)).first()
            return run.to_entity(*(counts[1:] if counts else (0, 0)))

    def list_runs(
        self, limit: int | None = 20, since: datetime | None = None, until: datetime | None = None
    ) -> list[RunInfo]:
        """Runs newest first, with their trial counts."""
        query = select(SqlRun).order_by(SqlRun.started_at.desc(), SqlRun.id.desc())
        if since is not None:
            query = query.where(SqlRun.started_at >= to_db_time(since))
        if until is not None:
            query = query.where(SqlRun.started_at <= to_db_time(until))
        if limit is not None:
            query = query.limit(limit)
        with self._sessions.session() as s:
            runs = s.scalars(query).all()
            ids = [r.id for r in runs]
            counts = {row[0]: row[1:] for row in s.execute(_counts().where(SqlMeasurement.run_id.in_(ids)))}
            return [r.to_entity(*counts.get(r.id, (0, 0))) for r in runs]

    def count_runs(self) -> int:
        with self._sessions.session() as s:
            return s.execute(select(func.count()).select_from(SqlRun)).scalar_one()

    def latest_run_id(self) -> int | None:
        """The most recently started run, or None in an empty store."""
        with self._sessions.session() as s:
            return s.scalar(select(SqlRun.id).order_by(SqlRun.started_at.desc(), SqlRun.id.desc()).limit(1))

    def runs_before(self, run_id: int, count: int) -> list[RunInfo]:
        """The ``count`` runs started before ``run_id`` that kept trials (ok, partial, interrupted), newest first."""
        target = self.get_run(run_id)
        with self._sessions.session() as s:
            runs = s.scalars(
                select(SqlRun)
                .where(
                    SqlRun.id != run_id,
                    SqlRun.status.in_(("ok", "partial", "interrupted")),
                    (SqlRun.started_at < to_db_time(target.started_at))
                    | ((SqlRun.started_at == to_db_time(target.started_at)) & (SqlRun.id < run_id)),
                )
                .order_by(SqlRun.started_at.desc(), SqlRun.id.desc())
                .limit(count)
            ).all()
            return [r.to_entity() for r in runs]

    def mark_interrupted(self) -> list[int]:
        """Marks ``running`` runs of this host whose process is gone as ``interrupted``; returns their ids.

        Runs started on another host are left alone: their process cannot be checked from here.
        """
        host = socket.gethostname()
        with self._sessions.session() as s:
            running = s.execute(
                select(SqlRun.id, SqlRun.pid, SqlRun.pid_started).where(SqlRun.status == "running", SqlRun.host == host)
            ).all()
        dead = [run_id for run_id, pid, token in running if pid is None or not process_alive(pid, token)]
        if dead:
            with self._write_lock, self._sessions.session(write=True) as s:
                s.execute(
                    update(SqlRun)
                    .where(SqlRun.id.in_(dead), SqlRun.status == "running")
                    .values(status="interrupted", finished_at=to_db_time(datetime.now(timezone.utc)))
                )
        return dead
