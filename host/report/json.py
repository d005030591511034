"""JSON exporter: the report (or history rows) as one plain JSON document."""

from __future__ import annotations

import json as _json
import math
from collections.abc import Sequence
from typing import Any

from host.records import to_jsonable
from host.report._model import HistoryRow, RunReport

__all__ = ["render", "render_history", "dumps"]


def dumps(value: Any) -> str:
    """Plain JSON; NaN and infinities become null so every JSON reader accepts it."""
    return _json.dumps(_finite(to_jsonable(value)), indent=2, ensure_ascii=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def render(report: RunReport) -> str:
    return dumps(report) + "\n"


def render_history(rows: Sequence[HistoryRow]) -> str:
    return dumps(list(rows)) + "\n"
