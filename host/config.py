"""Where the lab keeps its data: ``LAB_HOME`` and the store URL (``LAB_DB_URL``)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["lab_home", "default_db_url", "artifacts_dir", "tools_dir", "emulators_dir"]


def lab_home() -> Path:
    """The data folder: ``$LAB_HOME``, else the user's data dir (``~/.local/share/lab`` on Linux)."""
    env = os.environ.get("LAB_HOME")
    home = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("lab"))
    return home


def default_db_url(home: Path | None = None) -> str:
    """``$LAB_DB_URL``, else a SQLite file ``lab.db`` in the lab's home."""
    env = os.environ.get("LAB_DB_URL")
    if env:
        return env
    return f"sqlite:///{(home or lab_home()) / 'lab.db'}"


def artifacts_dir(home: Path | None = None) -> Path:
    return (home or lab_home()) / "artifacts"


def tools_dir(home: Path | None = None) -> Path:
    return (home or lab_home()) / "tools"


def emulators_dir(home: Path | None = None) -> Path:
    return (home or lab_home()) / "emulators"
