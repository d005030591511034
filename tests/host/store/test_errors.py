"""Unusable databases: each gives one StoreError line saying what is wrong and what to do."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from host.errors import StoreError
from host.store import open_store


def _one_line(exc: pytest.ExceptionInfo[StoreError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError) as exc:
        open_store(f"sqlite:///{path}")
    assert "is not a SQLite database or is corrupt" in _one_line(exc)
    assert "move it aside or pass another --db" in str(exc.value)


def test_a_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_store(f"sqlite:///{path}")
    assert path.read_text().startswith("these are my notes")  # left as it was


def test_a_truncated_store_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    with open_store(url) as store:
        store.start_run("bench", {})
    data = (tmp_path / "lab.db").read_bytes()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"lab.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "lab.db").write_bytes(data[:100] + b"\x00" * 50 + data[150:1024])
    with pytest.raises(StoreError, match="not a SQLite database or is corrupt|SQLite error"):
        open_store(url)


def test_a_folder_as_the_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder; pass a file path with --db"):
        open_store(f"sqlite:///{tmp_path}")


def test_a_location_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store's folder .*choose a writable place"):
        open_store(f"sqlite:///{blocker / 'sub' / 'lab.db'}")


def test_a_read_only_location(tmp_path: Path) -> None:
    """/proc refuses new files even to root; a read-only URI connection refuses writes to an existing store."""
    with pytest.raises(StoreError, match="cannot open .*/proc/self/lab.db|cannot create the store's folder"):
        open_store("sqlite:////proc/self/lab.db")
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    with open_store(url):
        pass
    with pytest.raises(StoreError, match="read-only|readonly"):
        with open_store(f"sqlite:///file:{tmp_path / 'lab.db'}?mode=ro&uri=true") as store:
            store.start_run("bench", {})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders; /proc covers this case above")
def test_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="cannot open|read-only"):
            open_store(f"sqlite:///{folder / 'lab.db'}")
    finally:
        folder.chmod(0o755)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server() -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL driver (psycopg) is not installed")
    with pytest.raises(StoreError) as exc:
        open_store(f"postgresql+psycopg://lab:secret@127.0.0.1:{_closed_port()}/lab?connect_timeout=3")
    message = _one_line(exc)
    assert "cannot reach the database" in message and "check the URL and that the server is up" in message
    assert "secret" not in message


def test_an_unknown_database_kind_or_missing_driver() -> None:
    with pytest.raises(StoreError) as exc:
        open_store("nosuchdb://host/db")
    assert "unknown database kind" in _one_line(exc)


def test_a_missing_driver_names_the_url_without_its_password() -> None:
    with pytest.raises(StoreError) as exc:
        open_store("mysql+nosuchdriver://lab:secret@127.0.0.1:1/lab")
    message = _one_line(exc)
    assert "secret" not in message


def test_not_a_url() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("::::")
