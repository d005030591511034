"""The on-device output checks of runs: saved per model × device, loaded per run."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from host.errors import NotFoundError, StoreError
from host.records import OutputCheck
from host.store._models import SqlOutputCheck, SqlRun, from_db_time, to_db_time
from host.store.queries._core import chunks, insert_ignore
from host.store.queries.trials import TrialQueries

__all__ = ["CheckQueries"]

_FIGURES = ("status", "inputs", "precision", "tolerance", "reference", "duration_s", "max_abs_error",
            "max_rel_error", "top1_agreement", "baseline_agreement", "baseline", "error", "command")


def _finite(value: object) -> object:
    """inf/nan as NULL: not every database stores them (the error then reads 'inf' in ``error``)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


class CheckQueries(TrialQueries):
    """Store methods for output checks."""

    def save_output_check(self, check: OutputCheck) -> None:
        """Saves one check of a started run; saving the same model × device × run again keeps the first.

        Raises:
            StoreError: the check has no run id, or a database error.
            NotFoundError: its run is not in the store.
        """
        if check.run_id is None:
            raise StoreError("an output check has no run_id: set it to the run's id")
        with self._write_lock, self._sessions.session(write=True) as s:
            if s.get(SqlRun, check.run_id) is None:
                raise NotFoundError(f"run {check.run_id} is not in {self.shown_url}")
            self._insert_output_check(s, check, check.run_id)

    def _insert_output_check(self, s: Session, check: OutputCheck, run_id: int) -> bool:
        """Inserts ``check`` as a check of run ``run_id`` unless its model × device has one there; True when added."""
        devices: dict[tuple[Any, ...], int] = {}
        artifacts: dict[str, tuple[int, bool]] = {}
        values = {
            "run_id": run_id,
            "device_id": self._device_id(s, check.device, devices),
            "artifact_id": self._artifact_id(s, check.model, artifacts),
            "model_name": check.model.name,
            "checked_at": to_db_time(check.checked_at),
            **{name: _finite(getattr(check, name)) for name in _FIGURES},
        }
        return insert_ignore(s, SqlOutputCheck.__table__, values, ["run_id", "device_id", "artifact_id"])

    def output_checks(self, run_ids: Sequence[int]) -> list[OutputCheck]:
        """The checks of these runs, by run, device and model name."""
        checks: list[OutputCheck] = []
        with self._sessions.session() as s:
            for part in chunks(sorted(set(run_ids))):
                rows = s.execute(select(SqlOutputCheck).where(SqlOutputCheck.run_id.in_(part))).scalars().all()
                for row in rows:
                    model = row.artifact.to_entity()
                    checks.append(OutputCheck(
                        run_id=row.run_id,
                        device=row.device.to_entity(),
                        model=dataclasses.replace(model, name=row.model_name),
                        checked_at=from_db_time(row.checked_at),
                        **{name: getattr(row, name) for name in _FIGURES},
                    ))
        checks.sort(key=lambda c: (c.run_id or 0, c.device.serial, c.model.name))
        return checks
