"""A store per test, in tmp_path (filled with tests.host.synthetic.add_synthetic_run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from host.store import Store, open_store


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lab.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with open_store(db_url) as opened:
        yield opened
