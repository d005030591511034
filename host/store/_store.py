"""The Store: one object over an engine, with each domain's queries mixed in, and ``open_store``."""

from __future__ import annotations

import threading
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from host.store._engine import WRITE_OPTION, describe_url, make_engine, translate_error
from host.store._migrate import migrate
from host.store.queries.checks import CheckQueries
from host.store.queries.farm import FarmQueries
from host.store.queries.history import HistoryQueries
from host.store.queries.ops import OpQueries
from host.store.queries.transfer import TransferQueries

__all__ = ["Store", "open_store"]

_MIGRATION_LOCK = 0x1AB_FA53  # pg_advisory_xact_lock key held while a PostgreSQL store migrates
_MIGRATING = threading.Lock()  # Alembic's migration context is process-global: one store migrates at a time


class Store(FarmQueries, OpQueries, TransferQueries, HistoryQueries, CheckQueries):
    """The result store. Thread-safe; use as a context manager or call ``close()``.

    Runs: ``start_run``, ``finish_run``, ``get_run``, ``list_runs``, ``latest_run_id``,
    ``runs_before``. Trials: ``save_trial``, ``save_trials``, ``load_trials``, ``load_trials_of_runs``. History:
    ``history``. Transfer: ``export_lines``, ``import_lines``. Per-op profiles: ``op_groups``.
    On-device output checks: ``save_output_check``, ``output_checks``.
    Farm (hosts, devices, jobs): see ``FarmQueries``.
    """

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_store(url: str, revision: str | None = None) -> Store:
    """Opens (creating if needed) the store at ``url`` and brings its schema to the code's head.

    Also marks runs of this host whose process is gone as ``interrupted``. ``revision`` stops the
    upgrade at an older revision (for migration tests only).

    Raises:
        SchemaError: the database was written by a newer lab.
        StoreError: the URL is unusable, the file is not a SQLite database or is corrupt, the
            location is read-only, or the server cannot be reached — with what to do.
    """
    engine = make_engine(url)
    try:
        with _MIGRATING, engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})  # migrate under the write lock
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    # hosts starting together on a new database migrate it once, not all at the same time
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                migrate(connection, describe_url(url), revision)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise translate_error(exc, url) from exc
    except BaseException:
        engine.dispose()
        raise
    store = Store(engine, url)
    if revision is None:
        try:
            store.mark_interrupted()
        except BaseException:
            store.close()
            raise
    return store
