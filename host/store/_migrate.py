"""Bringing a database to the code's schema with Alembic, on the caller's connection.

A database at an older revision is upgraded; one at a revision this code does not know (written
by a newer lab) is refused, since downgrading it would lose data and reading it could misread it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect

from host.errors import SchemaError, StoreError
from host.store._base import Base

__all__ = ["MIGRATIONS_DIR", "alembic_config", "head_revision", "current_revision", "migrate"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The one head of the migration scripts. Raises StoreError if the scripts have branched."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise StoreError(
            f"the store's migrations have {len(heads)} heads ({', '.join(heads)}); merge them with `alembic merge`"
        )
    return heads[0]


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def migrate(connection: Connection, shown_url: str, target: str | None = None) -> str:
    """Upgrade the database behind ``connection`` to ``target`` (default: head); returns the revision.

    The caller owns the transaction (and, for SQLite, holds the write lock), so two processes
    opening a new store at once migrate it once.

    Raises:
        SchemaError: the database is at a revision newer than this code.
        StoreError: the database holds tables of something else.
    """
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
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False
