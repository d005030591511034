"""Whether a SQLite store holds no runs, read with the standard library's sqlite3 alone.

``lab history`` on an empty store answers from this instead of ``open_store``, whose imports
(SQLAlchemy, the models) cost about 0.4 s of CPU. The answer is True only where ``open_store``
could not change what the command prints: an existing file at a schema revision this code has a
migration script for (``migrations/alembic.ini`` names scripts ``<revision>_<slug>.py``), read
without error, with an empty ``run`` table. Everything else — other databases, a missing file
(``open_store`` creates it), a file this process may not write, a revision from a newer lab
(refused), any SQLite error (reported with what to do) — is left to ``open_store``: the answer is
False.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

__all__ = ["sqlite_store_is_empty"]

_PREFIX = "sqlite:///"
_VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"
_REVISION = re.compile(r"\w+")


def _sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL; None for anything SQLAlchemy might read otherwise
    (a driver name, a query string, percent-escapes, in-memory and ``file:`` databases)."""
    if not url.startswith(_PREFIX) or any(c in url for c in "?%"):
        return None
    database = url[len(_PREFIX) :]
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def sqlite_store_is_empty(url: str) -> bool:
    """True when ``url`` names an existing SQLite store, at a schema revision this code knows, with no runs."""
    path = _sqlite_file(url)
    # open_store takes the write lock to check the schema: a read-only file is its error to report
    if path is None or not path.is_file() or not os.access(path, os.W_OK):
        return False
    try:
        # mode=rw: never create the file; only SELECTs run, in autocommit
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        revisions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
        if len(revisions) != 1 or not _REVISION.fullmatch(str(revisions[0])):
            return False
        if not any(_VERSIONS.glob(f"{revisions[0]}_*.py")):
            return False
        return connection.execute("SELECT EXISTS (SELECT 1 FROM run)").fetchone() == (0,)
    except sqlite3.Error:
        return False
    finally:
        connection.close()
