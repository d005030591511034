"""Engines for store URLs, and the translation of database errors into one-line StoreErrors.

SQLite gets WAL (readers never block the writer), foreign keys, and a busy timeout so parallel
device workers and processes wait for each other instead of failing. Write transactions start
with ``BEGIN IMMEDIATE``: a deferred transaction that reads first and writes later can fail at
once with SQLITE_BUSY in WAL mode when another writer committed in between, and the busy timeout
does not apply there (https://www.sqlite.org/wal.html#sometimes_queries_return_sqlite_busy_in_wal_mode).
SQLAlchemy's recipe for owning BEGIN: https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#pysqlite-serializable
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from host.errors import DatabaseUnreachableError, StoreError
from host.store._codec import portable_json_dumps

__all__ = ["BUSY_TIMEOUT_S", "WRITE_OPTION", "make_engine", "describe_url", "sqlite_path", "translate_error"]

BUSY_TIMEOUT_S = 30.0
CACHE_KIB = 64 * 1024
WRITE_OPTION = "lab_write"  # execution option: this transaction will write, take the lock up front


def describe_url(url: str | URL) -> str:
    """The URL as it may be printed: passwords hidden, SQLite as its file path."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return str(url)
    path = sqlite_path(parsed)
    if path is not None:
        return str(path)
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"not a database URL: {url!r}; use sqlite:///PATH/lab.db, postgresql+psycopg://HOST/DB or a file path"
        ) from exc


def _prepare_sqlite_folder(path: Path, shown: str) -> None:
    folder = path.expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the store's folder {folder}: {exc.strerror}; choose a writable place with --home or --db"
        ) from exc
    if path.is_dir():
        raise StoreError(f"the store path {shown} is a folder; pass a file path with --db")


def _set_wal(cursor: sqlite3.Cursor) -> None:
    """Switches a SQLite file to WAL. SQLite answers "database is locked" at once, without waiting
    for its busy timeout, while another process is creating the same new file; so retry, bounded."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across a process kill
            # 64 MiB of page cache (grown only as used; the default is 2 MiB): the content-hash index of a
            # million trials is ~50 MiB of randomly ordered keys, and inserts slow down 2-3x when it misses
            cursor.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite folders are created). Raises StoreError for unusable URLs."""
    parsed = _parse(url)
    shown = describe_url(parsed)
    path = sqlite_path(parsed)
    if path is not None:
        _prepare_sqlite_folder(path, shown)
    try:
        if parsed.get_backend_name() == "sqlite":
            if path is None:  # in memory: one shared connection, or each thread would see its own database
                engine = create_engine(
                    parsed, connect_args={"check_same_thread": False}, poolclass=StaticPool,
                    json_serializer=portable_json_dumps,
                )
            else:
                engine = create_engine(
                    parsed, connect_args={"timeout": BUSY_TIMEOUT_S}, json_serializer=portable_json_dumps
                )
            _sqlite_events(engine)
        else:
            engine = create_engine(parsed, pool_pre_ping=True, json_serializer=portable_json_dumps)
    except NoSuchModuleError as exc:
        raise StoreError(f"unknown database kind in {shown}: use sqlite:// or postgresql+psycopg://") from exc
    except ImportError as exc:
        raise StoreError(f"the database driver for {shown} is not installed: {exc}") from exc
    except ArgumentError as exc:
        raise StoreError(f"bad database URL {shown}: {exc}") from exc
    return engine


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate_error(exc: SQLAlchemyError, url: str) -> StoreError:
    """One StoreError with a one-line message saying what went wrong and what to do."""
    shown = describe_url(url)
    reason = _first_line(exc)
    lowered = reason.lower()
    if "file is not a database" in lowered or "malformed" in lowered:
        return StoreError(
            f"{shown} is not a SQLite database or is corrupt ({reason}); move it aside or pass another --db"
        )
    if "readonly database" in lowered or "read-only" in lowered:
        return StoreError(f"{shown} is read-only ({reason}); make it writable or pass another --db")
    if "unable to open database file" in lowered:
        return StoreError(
            f"cannot open {shown} ({reason}); check that its folder exists and is writable, or pass another --db"
        )
    if "database is locked" in lowered:
        return StoreError(f"{shown} stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s; retry when it is done")
    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or "connect" in lowered:
        return DatabaseUnreachableError(
            f"cannot reach the database {shown} ({reason}); check the URL and that the server is up"
        )
    if isinstance(getattr(exc, "orig", None), sqlite3.Error):
        return StoreError(f"SQLite error on {shown}: {reason}")
    return StoreError(f"database error on {shown}: {reason}")
