"""Opening the store for farm commands: a shared server database, reachable (exit 2 when not)."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from host.errors import StoreError
from host.farm._errors import FarmNeedsServerError
from host.store import Store, open_store
from host.store._engine import describe_url

__all__ = ["open_farm_store", "is_sqlite"]


def is_sqlite(url: str) -> bool:
    try:
        return make_url(url).get_backend_name() == "sqlite"
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r}; use postgresql+psycopg://USER@HOST/DB") from exc


def open_farm_store(url: str, *, server_only: bool = False) -> Store:
    """The store at ``url``, migrated to head.

    Raises:
        FarmNeedsServerError: ``server_only`` and ``url`` is SQLite.
        DatabaseUnreachableError: the server does not answer (exit 2).
        StoreError, SchemaError: as ``open_store``.
    """
    if server_only and is_sqlite(url):
        raise FarmNeedsServerError(
            f"a farm needs a shared server database, and {describe_url(url)} is a SQLite file only this host "
            "can use: pass --db postgresql+psycopg://USER@HOST/DB (or set LAB_DB_URL) on every host"
        )
    return open_store(url)
