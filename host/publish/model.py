"""What the site shows, as plain records kept between publishes (``writer.SiteWriter``).

A run's records are computed once and reused until the run changes (its fingerprint): that is what
makes publishing a grown store cheap. Latencies are in µs; an estimate is ``(value, low, high)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from host.store import RunInfo

__all__ = ["Point", "Change", "RunEntry", "fingerprint", "pair_key", "pair_page"]

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class Point:
    """One model on one device in one run: a history row of the site."""

    run_id: int
    started_at: str  # ISO 8601, UTC
    run_status: str
    lab_version: str
    model_name: str
    model_sha256: str
    device_serial: str
    device_line: str  # host.report._format.device_line
    device_kind: str
    emulated_arm: bool  # QEMU-emulated arm64: instructions per inference are its figure
    statistic: str  # the per-trial figure behind ``latency`` (host.figures)
    latency: Triple | None
    trials_ok: int
    trials_failed: int
    tools: tuple[str, ...]
    tool_versions: tuple[str, ...]
    instructions: float | None

    @property
    def pair(self) -> str:
        return pair_key(self.model_name, self.device_serial)


@dataclass(frozen=True)
class Change:
    """The gate's verdict on one model × device of a run against the previous run that measured it."""

    run_id: int
    previous_run_id: int
    model_name: str
    device_serial: str
    test: str  # the CheckRow test: latency, typical, presence, …
    statistic: str
    baseline: float | None
    candidate: float | None
    ratio: Triple | None
    outcome: str  # ok | regression | missing | failed
    reason: str

    @property
    def pair(self) -> str:
        return pair_key(self.model_name, self.device_serial)

    @property
    def flagged(self) -> bool:
        """Whether `lab check` fails on this row."""
        return self.outcome != "ok"


@dataclass
class RunEntry:
    """A run as the site last saw it: ``fingerprint`` says whether the rest is still valid."""

    run_id: int
    fingerprint: str
    kind: str
    status: str
    started_at: str
    points: list[Point] = field(default_factory=list)
    has_ops: bool = False  # some trial has a per-op profile
    page_key: str = ""  # what the run page was rendered from
    compare_key: str = ""  # what the comparison page was computed from
    changes: list[Change] = field(default_factory=list)
    rows: dict[str, str] = field(default_factory=dict)  # pair → its history-page row, rendered (until changes change)

    def to_json(self) -> dict[str, Any]:
        """A compact record: points and changes as lists of their fields' values, in field order."""
        data = {name: getattr(self, name) for name in _ENTRY_FIELDS}
        data["points"] = [[getattr(p, name) for name in _POINT_FIELDS] for p in self.points]
        data["changes"] = [[getattr(c, name) for name in _CHANGE_FIELDS] for c in self.changes]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunEntry:
        def triple(value: Any) -> Triple | None:
            return tuple(value) if value is not None else None  # type: ignore[return-value]

        points = []
        for values in data["points"]:
            p = dict(zip(_POINT_FIELDS, values))
            p.update(latency=triple(p["latency"]), tools=tuple(p["tools"]), tool_versions=tuple(p["tool_versions"]))
            points.append(Point(**p))
        changes = []
        for values in data["changes"]:
            c = dict(zip(_CHANGE_FIELDS, values))
            changes.append(Change(**{**c, "ratio": triple(c["ratio"])}))
        return cls(**{**data, "points": points, "changes": changes})


_POINT_FIELDS = tuple(f.name for f in dataclasses.fields(Point))
_CHANGE_FIELDS = tuple(f.name for f in dataclasses.fields(Change))
_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(RunEntry))


def fingerprint(run: RunInfo) -> str:
    """What changes when a run gains trials, finishes or is re-imported."""
    finished = run.finished_at.isoformat() if run.finished_at else ""
    return f"{run.uid}|{run.status}|{finished}|{run.trials_ok}|{run.trials_failed}|{run.lab_version}"


def pair_key(model_name: str, device_serial: str) -> str:
    return f"{model_name}\x00{device_serial}"


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:limit] or "x"


def pair_page(pair: str) -> str:
    """The history page of a model × device: a readable, file-system-safe name made unique by a hash."""
    model, _, serial = pair.partition("\x00")
    digest = hashlib.sha256(pair.encode()).hexdigest()[:10]
    return f"history/{_slug(model.removesuffix('.tflite'), 40)}--{_slug(serial, 30)}-{digest}.html"
