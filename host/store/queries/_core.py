"""What every domain's queries share: the session factory, the write lock, the URL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import Engine

from host.store._engine import describe_url
from host.store._session import SessionFactory

__all__ = ["StoreCore", "chunks"]


def chunks(items: list, size: int = 500) -> list[list]:
    """``items`` in slices small enough for an ``IN (...)`` list on every backend."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class StoreCore:
    """State of an open store. Writers in one process take ``_write_lock`` so they queue in order
    instead of spinning on SQLite's busy handler; writers in other processes wait on the database lock."""

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self.url = url
        self.shown_url = describe_url(url)
        self._sessions = SessionFactory(engine, url)
        self._write_lock = threading.Lock()
        self.clock: Callable[[], datetime] = _utc_now  # this process's clock; the farm prefers the database's
