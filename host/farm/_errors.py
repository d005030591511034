"""The farm's errors, in the LabError tree (the whole tree is on the page of ``host.errors``)."""

from __future__ import annotations

from host.errors import LabError, UsageError

__all__ = ["FarmError", "FarmNeedsServerError", "JobTimeoutError"]


class FarmError(LabError):
    """Something the farm could not do (no device registered for --all, a job gone)."""

    exit_code = 2


class FarmNeedsServerError(UsageError):
    """The agent was pointed at SQLite: other hosts cannot share a local file."""


class JobTimeoutError(LabError):
    """``lab submit --wait --timeout`` ran out with jobs unfinished."""

    exit_code = 1
