"""State the root callback hands to every command through ``ctx.obj``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from host import config
from host.errors import ConfigError

__all__ = ["LabContext", "lab_context", "check_new_store"]

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


@dataclass(frozen=True)
class LabContext:
    home: Path
    db_url: str


def lab_context(ctx: typer.Context) -> LabContext:
    """The LabContext of this invocation (built from the environment when a command runs alone)."""
    root = ctx.find_root()
    if isinstance(root.obj, LabContext):
        return root.obj
    home = config.lab_home()
    return LabContext(home=home, db_url=config.default_db_url(home))


def check_new_store(given: str, url: str) -> None:
    """Refuses a store named by --db / LAB_DB_URL that looks like a typo rather than a new store.

    A SQLite store whose folder does not exist, or a bare path that is no existing file and has no
    database suffix ("not a url at all"), would otherwise become a new, empty store — and
    `lab history` would say "no results yet". ``--init`` creates it on purpose.

    Raises:
        ConfigError: the store does not exist and looks like a typo (see above).
    """
    from sqlalchemy.engine import make_url

    from host.store._engine import sqlite_path

    path = sqlite_path(make_url(url)) if "://" in url else None
    if path is None or path.exists():
        return
    if not path.parent.is_dir():
        raise ConfigError(
            f"no store at {path}: its folder {path.parent} does not exist; check --db / LAB_DB_URL ({given!r}) "
            "for a typo, or pass --init to create it"
        )
    if "://" not in given and path.suffix not in _SQLITE_SUFFIXES:
        raise ConfigError(
            f"{given!r} is neither a database URL nor an existing store file; give sqlite:///PATH/lab.db, "
            "postgresql+psycopg://HOST/DB or a .db path, or pass --init to create it"
        )
