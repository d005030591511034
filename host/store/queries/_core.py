"""What every domain's queries share: the session factory, the write lock, the URL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from host.store._engine import describe_url
from host.store._session import SessionFactory

__all__ = ["StoreCore", "chunks", "insert_ignore"]


def chunks(items: list, size: int = 500) -> list[list]:
    """``items`` in slices small enough for an ``IN (...)`` list on every backend."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def insert_ignore(session: Session, table: Any, values: dict[str, Any], key: list[str]) -> bool:
    """INSERT that does nothing when a row with the same unique ``key`` exists; True when it inserted.

    Safe across processes: two writers inserting the same new key at once (two agents starting on
    one adb server) get one row, and neither an integrity error.
    """
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":  # only the dialect in use: importing the other costs every command
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        statement = dialect_insert(table).values(values).on_conflict_do_nothing(index_elements=key)
        return session.execute(statement.returning(table.c.id)).first() is not None
    condition = [getattr(table.c, k) == values[k] for k in key]
    if session.execute(select(table.c.id).where(*condition)).first() is not None:
        return False
    session.execute(insert(table).values(values))
    return True


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
