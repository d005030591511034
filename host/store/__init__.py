"""The result store: SQLite (or any SQLAlchemy URL) with Alembic migrations, and what it returns.

    with open_store("sqlite:///lab.db") as store:
        run_id = store.start_run("bench", {"threads": 1})
        store.save_trial(trial)          # from any thread
        store.finish_run(run_id, "ok")
        trials = store.load_trials(run_id)
"""

from __future__ import annotations

from host.store._store import Store, open_store
from host.store.entities import HistoryFilter, HistoryGroup, ImportSummary, RunInfo
from host.store.queries.transfer import ImportFileError

__all__ = [
    "Store",
    "open_store",
    "RunInfo",
    "HistoryFilter",
    "HistoryGroup",
    "ImportSummary",
    "ImportFileError",
]
