"""Plain records the store returns besides ``host.records`` ones (runs, history rows, import results)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from host.figures import TrialFigures
from host.records import DeviceFacts

__all__ = ["RunInfo", "HistoryFilter", "HistoryGroup", "ImportSummary"]


@dataclass(frozen=True)
class RunInfo:
    id: int
    uid: str
    kind: str  # "bench" | "run"
    status: str  # running | ok | partial | failed | interrupted
    config: dict[str, Any]
    lab_version: str
    host: str
    pid: int | None
    started_at: datetime
    finished_at: datetime | None
    trials_ok: int = 0
    trials_failed: int = 0


@dataclass(frozen=True)
class HistoryFilter:
    """What `lab history` asks for. ``model``: a name or a sha256 prefix; ``device``: a serial or a model name."""

    model: str | None = None
    device: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = 50  # groups (run × model × device), newest first; None: all


@dataclass
class HistoryGroup:
    """The trials of one model on one device in one run, as history needs them."""

    run_id: int
    run_status: str
    run_started_at: datetime
    model_sha256: str
    model_name: str
    role: str | None
    device: DeviceFacts
    trials_ok: int
    trials_failed: int
    figures: list[TrialFigures] = field(default_factory=list)  # each ok trial's figures, in saving order
    figure_runs: list[int] = field(default_factory=list)  # the run of each of ``figures`` (several when pooled)
    threads: list[int] = field(default_factory=list)  # distinct values asked for
    use_xnnpack: list[bool] = field(default_factory=list)  # distinct values asked for
    tools: list[str] = field(default_factory=list)  # sha256 of each benchmark tool used
    tool_versions: list[str] = field(default_factory=list)  # their version lines, where known
    instructions: list[int] = field(default_factory=list)  # median instructions per inference, per trial
    errors: list[str] = field(default_factory=list)  # distinct errors of the failed trials, in order


@dataclass(frozen=True)
class ImportSummary:
    runs_added: int
    runs_present: int
    trials_added: int
    trials_present: int
