"""Bringing a database to the code's schema with Alembic, on the caller's connection.

A database at an older revision is upgraded; one at a revision this code does not know (written
by a newer lab) is refused, since downgrading it would lose data and reading it could misread it.

Alembic is imported only when the schema must be created or changed: a store already at the head
revision is recognised with one plain query of its ``alembic_version`` table against the head read
from the migration scripts' text (``scripts_head``), which keeps opening a store cheap for every
``lab`` command.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from host.errors import SchemaError, StoreError
from host.store._base import Base

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "head_revision",
    "scripts_head",
    "current_revision",
    "migrate",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_REVISION = re.compile(r"^revision\b[^=\n]*=\s*[\"'](\w+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=(.*)$", re.M)
_QUOTED_ID = re.compile(r"[\"'](\w+)[\"']")


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The one head of the migration scripts, as Alembic reads them.

    Raises:
        StoreError: the scripts have branched.
    """
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise StoreError(
            f"the store's migrations have {len(heads)} heads ({', '.join(heads)}); merge them with `alembic merge`"
        )
    return heads[0]


@lru_cache(maxsize=1)
def scripts_head() -> str | None:
    """The head revision read from the text of ``migrations/versions/*.py`` (their ``revision`` and
    ``down_revision`` lines), without importing Alembic; None unless that gives exactly one head,
    in which case ``migrate`` leaves the answer to Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        parents.update(_QUOTED_ID.findall(down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _stamped_revisions(connection: Connection) -> list[str]:
    """The revisions in the database's ``alembic_version`` table (none for a new database), by plain SQL."""
    if not inspect(connection).has_table("alembic_version"):
        return []
    return [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]


def migrate(connection: Connection, shown_url: str, target: str | None = None) -> str:
    """Upgrade the database behind ``connection`` to ``target`` (default: head); returns the revision.

    The caller owns the transaction (and, for SQLite, holds the write lock), so two processes
    opening a new store at once migrate it once.

    Raises:
        SchemaError: the database is at a revision newer than this code.
        StoreError: the database holds tables of something else.
    """
    head = scripts_head()
    if target is None and head is not None and _stamped_revisions(connection) == [head]:
        return head
    return _upgrade(connection, shown_url, target)


def _upgrade(connection: Connection, shown_url: str, target: str | None) -> str:
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    head = head_revision()
    target = target or head
    current = current_revision(connection)
    if current is not None and not _known(script, current):
        raise SchemaError(
            f"the database {shown_url} has schema revision {current}, newer than this lab knows (head {head}); "
            "upgrade lab (pip install -U lab) or pass another --db"
        )
    if current is None:
        foreign = sorted(set(inspect(connection).get_table_names()) - set(Base.metadata.tables) - {"alembic_version"})
        if foreign:
            raise StoreError(
                f"{shown_url} is a database but not a lab store "
                f"(it has tables {', '.join(foreign[:5])}); pass another --db"
            )
    if current != target:
        command.upgrade(alembic_config(connection), target)
    return target


def _known(script: ScriptDirectory, revision: str) -> bool:
    """False for a revision id no script here defines (Alembic raises instead of returning None)."""
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False
