"""Alembic migrations: from an empty file, from the first schema, the schema snapshot, newer databases refused."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from host.errors import SchemaError, StoreError
from host.store import open_store
from host.store._base import Base
from host.store._migrate import alembic_config, head_revision, scripts_head
from tests.host.synthetic import model_file, phone, synthetic_trial

SNAPSHOT = Path(__file__).with_name("schema_sqlite.sql")
FIRST_REVISION = "63ced09185ba"


def _path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _schema(url: str) -> str:
    with sqlite3.connect(_path(url)) as raw:
        rows = raw.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ).fetchall()
    return "".join(f"-- {kind} {name}\n{sql};\n\n" for kind, name, sql in rows)


def _revision(url: str) -> str:
    with sqlite3.connect(_path(url)) as raw:
        return raw.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_the_migration_scripts_have_one_head_and_start_at_the_first_schema() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert [r.revision for r in script.walk_revisions()][-1] == FIRST_REVISION


def test_the_head_read_from_the_scripts_text_is_alembics() -> None:
    assert scripts_head() == head_revision()


def test_a_store_at_head_opens_without_importing_alembic(db_url: str) -> None:
    with open_store(db_url):
        pass
    code = (
        "import sys; from host.store import open_store\n"
        f"with open_store({db_url!r}) as store: store.count_runs()\n"
        "assert 'alembic' not in sys.modules, sorted(m for m in sys.modules if m.startswith('alembic'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_new_file_is_migrated_to_head_with_wal(db_url: str) -> None:
    with open_store(db_url):
        pass
    assert _revision(db_url) == head_revision()
    with sqlite3.connect(_path(db_url)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"device", "artifact", "tool", "run", "measurement", "sample", "alembic_version"} <= tables


def test_an_empty_existing_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with open_store(f"sqlite:///{path}") as store:
        assert store.count_runs() == 0


def test_migrations_build_exactly_what_the_models_declare(db_url: str) -> None:
    with open_store(db_url):
        pass
    engine = create_engine(db_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == [], f"the models and the migrations differ: add a migration for {diff}"


def test_upgrade_from_the_first_schema_keeps_the_data(db_url: str) -> None:
    rng = np.random.default_rng(3)
    with open_store(db_url, revision=FIRST_REVISION) as old:
        run_id = old.start_run("bench", {"from": "first schema"})
    with sqlite3.connect(_path(db_url)) as raw:  # the first schema has no instruction columns
        assert "instructions_median" not in {row[1] for row in raw.execute("PRAGMA table_info(measurement)")}
    assert _revision(db_url) == FIRST_REVISION
    # write a trial with the first schema's columns only, as a lab of that version would have
    trial = synthetic_trial(run_id, phone(), model_file(), latency_us=80, rng=rng)
    with sqlite3.connect(_path(db_url)) as raw:
        raw.execute(
            "INSERT INTO device (serial, fingerprint, kind, abis, max_freqs_khz) VALUES (?, ?, 'physical', '[]', '[]')",
            (trial.device.serial, trial.device.fingerprint),
        )
        raw.execute("INSERT INTO artifact (sha256, name, size_bytes) VALUES (?, 'old.tflite', 10)", (trial.model.sha256,))
        raw.execute(
            "INSERT INTO measurement (run_id, device_id, artifact_id, content_hash, trial_index, position, status, "
            "started_at, duration_s, raw_output, threads, num_runs, warmup_runs, use_xnnpack, timeout_s, extra_flags, "
            "has_result, runs_count, curr_us, avg_us, result_warnings) "
            "VALUES (?, 1, 1, 'h', 0, 0, 'ok', '2025-01-01 00:00:00', 1.0, 'raw', 1, 50, 10, 1, 300, '[]', 1, 50, 81, "
            "80.5, '[]')",
            (run_id,),
        )
    with open_store(db_url) as new:
        assert _revision(db_url) == head_revision()
        (loaded,) = new.load_trials(run_id)
        assert loaded.result.runs.avg_us == 80.5 and loaded.model.name == "old.tflite"
        assert loaded.raw_output == "raw"
        assert new.get_run(run_id).config == {"from": "first schema"}
        new.save_trial(trial)  # the upgraded store takes new trials
        assert len(new.load_trials(run_id)) == 2


def test_schema_snapshot(db_url: str) -> None:
    with open_store(db_url):
        pass
    schema = _schema(db_url)
    if os.environ.get("LAB_UPDATE_SCHEMA_SNAPSHOT") == "1":
        SNAPSHOT.write_text(schema)
    expected = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    assert schema == expected, (
        "the store's SQLite schema changed. If that is intended: add an Alembic migration "
        "(alembic -c host/store/migrations/alembic.ini -x url=sqlite:///PATH revision --autogenerate -m '...'), "
        "then regenerate the snapshot with: "
        "LAB_UPDATE_SCHEMA_SNAPSHOT=1 .venv/bin/pytest tests/host/store/test_migrations.py -k snapshot"
    )


def test_a_database_from_a_newer_lab_is_refused(db_url: str) -> None:
    with open_store(db_url):
        pass
    with sqlite3.connect(_path(db_url)) as raw:
        raw.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    with pytest.raises(SchemaError, match="revision ffffffffffff, newer than this lab knows.*upgrade lab"):
        open_store(db_url)


def test_a_database_of_something_else_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="not a lab store .*invoices.*pass another --db"):
        open_store(f"sqlite:///{path}")
    with sqlite3.connect(path) as raw:
        assert [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["invoices"]
