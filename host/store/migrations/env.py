"""Alembic environment of the result store.

``open_store`` passes its own connection in ``config.attributes["connection"]``, already inside a
transaction that holds the write lock, so concurrent openers migrate one after the other and an
in-memory database is migrated in place. From the command line, ``-x url=...`` names the database.
Batch mode is on because SQLite cannot ALTER most things in place:
https://alembic.sqlalchemy.org/en/latest/batch.html
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

import host.store._models  # noqa: F401  (registers every table on Base.metadata for autogenerate)
from host.store._base import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass the database with: alembic -c host/store/migrations/alembic.ini -x url=sqlite:///PATH ...")
    return url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url())
    with engine.connect() as own:
        _run(own)
        own.commit()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
