"""Moving results between stores as JSON Lines: `lab export` and `lab import`.

The file, one JSON object per line::

    {"type": "lab-export", "format": 1, "lab_version": "0.1.0", "exported_at": "2025-…"}
    {"type": "run", "uid": "3f…", "kind": "bench", "status": "ok", "config": {…}, "started_at": "…", …}
    {"type": "trial", "run": "3f…", "trial": {…every field of host.records.Trial…}}
    {"type": "check", "run": "3f…", "check": {…every field of host.records.OutputCheck…}}

Format 2 added the on-device output checks (``check`` lines); format 1 files import as they are.
Runs are identified by their ``uid``, trials by a content hash (see ``_codec.trial_hash``) and
checks by their run, device and model, so
importing a file twice, or a file that overlaps what is already there, adds nothing twice. An
import reads and checks the whole file before writing, then writes in one transaction: a bad line
is reported by its number and nothing of the file is kept. NaN is written as JSON's ``NaN``
extension (Python's json reads it back).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from sqlalchemy import func, select, update

from host import __version__
from host.errors import StoreError
from host.records import OutputCheck, Trial, to_jsonable
from host.store._codec import DecodeError, from_jsonable, trial_from_json, trial_to_json, utc
from host.store._models import SqlMeasurement, SqlRun, to_db_time
from host.store.entities import ImportSummary
from host.store.queries.checks import CheckQueries
from host.store.queries.runs import RunQueries

__all__ = ["TransferQueries", "ImportFileError", "ExportedRun", "EXPORT_FORMAT"]

EXPORT_FORMAT = 2
_READABLE_FORMATS = (1, 2)


class ImportFileError(StoreError):
    """A line of an import file that cannot be imported; ``line`` is 1-based."""

    exit_code = 2

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}, line {line}: {reason}; nothing was imported")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class ExportedRun:
    uid: str
    kind: Literal["bench", "run"]
    status: Literal["running", "ok", "partial", "failed", "interrupted"]
    config: dict[str, Any]
    lab_version: str
    host: str
    pid: int | None
    started_at: datetime
    finished_at: datetime | None = None


@dataclass
class _ParsedRun:
    run: ExportedRun
    trials: list[Trial] = field(default_factory=list)
    checks: list[OutputCheck] = field(default_factory=list)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_LATENCIES = ("first_us", "curr_us", "min_us", "max_us", "avg_us", "p5_us", "median_us", "p95_us")


def _check_latencies(trial: Trial) -> None:
    """Measured times are finite and not negative: an import must not put NaN or -1e308 into the statistics."""
    runs = trial.result.runs if trial.result is not None else None
    named = [(f"runs.{name}", getattr(runs, name)) for name in _LATENCIES] if runs is not None else []
    if trial.result is not None and trial.result.init_us is not None and not math.isnan(trial.result.init_us):
        named.append(("init_us", trial.result.init_us))
    named.extend(("samples_us", v) for v in trial.samples_us or ())
    for name, value in named:
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise DecodeError(f"trial {trial.index} of {trial.model.name}: {name} is {value!r}, not a time in µs")


def _parse(lines: Iterable[str], source: str) -> list[_ParsedRun]:
    runs: dict[str, _ParsedRun] = {}
    header_seen = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFileError(source, number, f"not JSON ({exc.msg} at column {exc.colno})") from exc
        except RecursionError as exc:
            raise ImportFileError(source, number, "JSON nested too deeply to be a lab export") from exc
        if not isinstance(record, dict) or not isinstance(record.get("type"), str):
            raise ImportFileError(source, number, 'not a lab export record (an object with a "type")')
        kind = record["type"]
        if not header_seen:
            if kind != "lab-export":
                raise ImportFileError(source, number, "not a lab export file (the first line must be its header)")
            if record.get("format") not in _READABLE_FORMATS:
                raise ImportFileError(
                    source, number, f"export format {record.get('format')!r} is not {EXPORT_FORMAT}: upgrade lab"
                )
            header_seen = True
            continue
        try:
            if kind == "run":
                run = from_jsonable(ExportedRun, {k: v for k, v in record.items() if k != "type"}, "run")
                if run.uid in runs:
                    raise DecodeError(f"run {run.uid} appears twice")
                runs[run.uid] = _ParsedRun(run)
            elif kind == "trial":
                uid = record.get("run")
                if uid not in runs:
                    raise DecodeError(f"trial of run {uid!r}, which no earlier line defines")
                trial = trial_from_json(record.get("trial"))
                _check_latencies(trial)
                runs[uid].trials.append(trial)
            elif kind == "check":
                uid = record.get("run")
                if uid not in runs:
                    raise DecodeError(f"output check of run {uid!r}, which no earlier line defines")
                value = record.get("check")
                runs[uid].checks.append(
                    from_jsonable(OutputCheck, {**value, "run_id": None} if isinstance(value, dict) else value, "check")
                )
            else:
                raise DecodeError(f"unknown record type {kind!r}")
        except DecodeError as exc:
            raise ImportFileError(source, number, str(exc)) from exc
    if not header_seen:
        raise ImportFileError(source, 1, "empty file (no lab export header)")
    return list(runs.values())


class TransferQueries(RunQueries, CheckQueries):
    """Store methods for export and import."""

    def export_lines(self, since: datetime | None = None) -> Iterator[str]:
        """The store (runs started at or after ``since``) as JSON Lines, oldest run first."""
        yield _dumps(
            {
                "type": "lab-export",
                "format": EXPORT_FORMAT,
                "lab_version": __version__,
                "exported_at": datetime.now(timezone.utc).isoformat(),
            }
        )
        for info in reversed(self.list_runs(limit=None, since=since)):
            run = ExportedRun(
                uid=info.uid,
                kind=info.kind,  # type: ignore[arg-type]  # CHECK constraint
                status=info.status,  # type: ignore[arg-type]
                config=info.config,
                lab_version=info.lab_version,
                host=info.host,
                pid=info.pid,
                started_at=info.started_at,
                finished_at=info.finished_at,
            )
            yield _dumps({"type": "run", **to_jsonable(run)})
            for trial in self.load_trials(info.id):
                yield _dumps({"type": "trial", "run": info.uid, "trial": trial_to_json(trial)})
            for check in self.output_checks([info.id]):
                yield _dumps({"type": "check", "run": info.uid, "check": {**to_jsonable(check), "run_id": None}})

    def import_lines(self, lines: Iterable[str], source: str = "import file") -> ImportSummary:
        """Merges an export into this store; all or nothing.

        Raises:
            ImportFileError: a line that is not valid (its number in the message); nothing is written.
        """
        parsed = _parse(lines, source)
        runs_added = runs_present = trials_added = trials_present = 0
        with self._write_lock:
            with self._sessions.session(write=True) as s:
                for item in parsed:
                    run = item.run
                    existing = s.execute(select(SqlRun.id, SqlRun.status).where(SqlRun.uid == run.uid)).first()
                    if existing is None:
                        row = SqlRun(
                            uid=run.uid,
                            kind=run.kind,
                            status=run.status,
                            config=run.config,
                            lab_version=run.lab_version,
                            host=run.host,
                            pid=run.pid,
                            pid_started=None,
                            started_at=to_db_time(utc(run.started_at)),
                            finished_at=to_db_time(utc(run.finished_at)) if run.finished_at else None,
                        )
                        s.add(row)
                        s.flush()
                        run_id = row.id
                        runs_added += 1
                    else:
                        run_id = existing.id
                        runs_present += 1
                        if existing.status == "running" and run.status != "running":
                            s.execute(  # the export was taken after the run ended: take its outcome
                                update(SqlRun)
                                .where(SqlRun.id == run_id)
                                .values(
                                    status=run.status,
                                    finished_at=to_db_time(utc(run.finished_at)) if run.finished_at else None,
                                )
                            )
                    before = self._count_run(s, run_id)
                    if item.trials:
                        self._insert_trials(s, [(t, run_id, run.uid) for t in item.trials])
                    added = self._count_run(s, run_id) - before
                    trials_added += added
                    trials_present += len(item.trials) - added
                    for check in item.checks:
                        self._insert_output_check(s, check, run_id)
        return ImportSummary(runs_added, runs_present, trials_added, trials_present)

    def _count_run(self, s: Any, run_id: int) -> int:
        return s.execute(select(func.count()).where(SqlMeasurement.run_id == run_id)).scalar_one()

