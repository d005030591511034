"""The result store: SQLite (or any SQLAlchemy URL) with Alembic migrations, and what it returns.

    with open_store("sqlite:///lab.db") as store:
        run_id = store.start_run("bench", {"threads": 1})
        store.save_trial(trial)          # from any thread
        store.finish_run(run_id, "ok")
        trials = store.load_trials(run_id)

``Store``, ``open_store`` and ``ImportFileError`` load on first use (PEP 562): they import
SQLAlchemy and the models (about 0.4 s of CPU), which a command that needs only the records (a
``HistoryFilter``) or ``sqlite_store_is_empty`` must not pay.
"""

from __future__ import annotations

import importlib
import typing

from host.store._peek import sqlite_store_is_empty
from host.store.entities import HistoryFilter, HistoryGroup, ImportSummary, RunInfo

if typing.TYPE_CHECKING:
    from host.store._store import Store, open_store
    from host.store.queries.transfer import ImportFileError

__all__ = [
    "Store",
    "open_store",
    "sqlite_store_is_empty",
    "RunInfo",
    "HistoryFilter",
    "HistoryGroup",
    "ImportSummary",
    "ImportFileError",
]

_LAZY_EXPORTS = {
    "Store": "host.store._store",
    "open_store": "host.store._store",
    "ImportFileError": "host.store.queries.transfer",
}


def __getattr__(name: str) -> object:
    if name in _LAZY_EXPORTS:
        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_EXPORTS})
