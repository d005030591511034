"""`lab history` on an empty SQLite store answers from ``sqlite_store_is_empty`` (stdlib sqlite3) without
opening the store through SQLAlchemy, and prints exactly what ``open_store`` and the queries would."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import host.store
from host.cli import app
from host.store import open_store, sqlite_store_is_empty
from tests.host.synthetic import add_synthetic_run

REPO = Path(__file__).resolve().parents[3]
INITIAL_REVISION = "63ced09185ba"


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _empty_store(path: Path, revision: str | None = None) -> str:
    url = _url(path)
    open_store(url, revision=revision).close()
    return url


def _history(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--db", url, "history", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _history_through_open_store(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> tuple[int, str, str]:
    with monkeypatch.context() as patch:
        patch.setattr(host.store, "sqlite_store_is_empty", lambda _url: False)
        return _history(url, *args)


def _no_open_store(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("an empty store was opened through SQLAlchemy")


@pytest.mark.parametrize(
    "args",
    [[], ["--json"], ["--csv"], ["--json", "--model", "dense", "--device", "Pixel 7"], ["--json", "--since", "7d"]],
    ids=lambda args: " ".join(args) or "table",
)
def test_empty_store_prints_what_the_full_path_prints(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _empty_store(tmp_path / "lab.db")
    expected = _history_through_open_store(monkeypatch, url, *args)
    with monkeypatch.context() as patch:
        patch.setattr(host.store, "open_store", _no_open_store)
        assert _history(url, *args) == expected
    assert expected[0] == 0 and "no results stored yet" in expected[2]
    if "--json" in args:
        assert expected[1] == "[]\n"


def test_a_store_at_an_older_revision_prints_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open_store would upgrade it first; with no runs that changes nothing printed."""
    old = _empty_store(tmp_path / "old.db", revision=INITIAL_REVISION)
    upgraded = _empty_store(tmp_path / "upgraded.db", revision=INITIAL_REVISION)
    assert sqlite_store_is_empty(old)
    assert _history(old, "--json") == _history_through_open_store(monkeypatch, upgraded, "--json")


def test_runs_unknown_revisions_and_broken_files_go_through_open_store(tmp_path: Path) -> None:
    with_runs = tmp_path / "runs.db"
    with open_store(_url(with_runs)) as store:
        add_synthetic_run(store)
    newer = tmp_path / "newer.db"
    _empty_store(newer)
    with sqlite3.connect(newer) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    for path in (with_runs, newer, garbage):
        assert not sqlite_store_is_empty(_url(path)), path.name
    assert len(json.loads(_history(_url(with_runs), "--json")[1])) == 4
    code, _, err = _history(_url(newer), "--json")
    assert code == 2 and "newer than this lab knows" in err
    code, _, err = _history(_url(garbage), "--json")
    assert code != 0 and "not a SQLite database" in err


def test_only_plain_sqlite_file_urls_that_exist_are_read(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    _empty_store(path)
    assert sqlite_store_is_empty(_url(path))
    for url in (
        f"sqlite+pysqlite:///{path}", f"sqlite:///{path}?mode=ro", "sqlite://", "sqlite:///:memory:",
        "postgresql+psycopg://localhost/lab",
    ):  # fmt: skip
        assert not sqlite_store_is_empty(url), url
    missing = tmp_path / "missing.db"
    assert not sqlite_store_is_empty(_url(missing))
    assert not missing.exists()


def test_a_file_this_process_may_not_write_goes_through_open_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_store reports a read-only store (it takes the write lock); root may write anything, so pretend."""
    url = _empty_store(tmp_path / "lab.db")
    monkeypatch.setattr("host.store._peek.os.access", lambda _path, _mode: False)
    assert not sqlite_store_is_empty(url)


def test_migration_scripts_are_named_by_their_revision() -> None:
    """sqlite_store_is_empty knows a revision by its script's file name (alembic.ini's file_template)."""
    from alembic.script import ScriptDirectory

    from host.store._migrate import alembic_config

    scripts = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())
    assert scripts
    for script in scripts:
        assert script.path is not None and Path(script.path).name.startswith(f"{script.revision}_"), script.path


def test_a_missing_store_is_still_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As before: the first `lab history` creates the store, then says it is empty."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LAB_DB_URL", raising=False)
    result = CliRunner().invoke(app, ["history", "--json"])
    assert result.exit_code == 0 and result.stdout == "[]\n"
    assert (tmp_path / "home" / "lab.db").is_file()


_SCRIPT = textwrap.dedent(
    """
    import sys

    from host.cli.main import main

    out, watched = sys.argv[1], sys.argv[2].split(",")
    sys.argv = ["lab", "history", "--json"]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
    with open(out, "w") as stream:
        stream.write(",".join(name for name in watched if name in sys.modules))
    """
)


def test_empty_store_answers_without_sqlalchemy_or_numpy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _empty_store(home / "lab.db")
    out = tmp_path / "loaded.txt"
    env = {"PATH": "/usr/bin:/bin", "LAB_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(out), "sqlalchemy,alembic,numpy,host.store._store"],
        env=env, capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
    assert out.read_text() == ""
