"""`lab history`, `compare`, `check`, `report`, `export` and `import` through the real Typer app."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from host.cli import app
from host.store import Store, open_store
from tests.host.synthetic import add_synthetic_run, emulated_device, guide_models, phone

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def lab(runner: CliRunner, db_url: str, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["--db", db_url, *args], input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# history ---------------------------------------------------------------------------------------


def test_history_of_an_empty_store_is_friendly(runner: CliRunner, db_url: str) -> None:
    result = lab(runner, db_url, "history")
    assert result.exit_code == 0
    assert "no results stored yet: run `lab bench MODEL.tflite`" in result.output


def test_history_table_json_csv_and_plot(runner: CliRunner, db_url: str, store: Store, tmp_path: Path) -> None:
    add_synthetic_run(store, seed=1)
    add_synthetic_run(store, seed=2)
    table = lab(runner, db_url, "history", "--model", "pruned")
    assert table.exit_code == 0 and "pruned.tflite" in table.output and "dense.tflite" not in table.output
    rows = json.loads(lab(runner, db_url, "history", "--json", "--device", "Pixel 7").stdout)
    assert len(rows) == 4 and {r["device_serial"] for r in rows} == {"1A2B3C4D5E"}
    assert [r["run_id"] for r in rows] == [2, 2, 1, 1]
    assert set(rows[0]["latency_us"]) == {"value", "low", "high"} and rows[0]["statistic"] == "p5"
    assert rows[0]["trials_ok"] == 5 and rows[0]["threads"] == [1] and rows[0]["xnnpack"] == [True]
    parsed = list(csv.DictReader(io.StringIO(lab(runner, db_url, "history", "--csv", "--limit", "3").stdout)))
    assert len(parsed) == 3 and float(parsed[0]["latency_us_low"]) <= float(parsed[0]["latency_us"])
    plot = tmp_path / "history.png"
    result = lab(runner, db_url, "history", "--plot", str(plot))
    assert result.exit_code == 0 and plot.read_bytes().startswith(PNG_MAGIC)


def test_history_filters_that_match_nothing(runner: CliRunner, db_url: str, store: Store) -> None:
    add_synthetic_run(store)
    result = lab(runner, db_url, "history", "--model", "other.tflite")
    assert result.exit_code == 0 and "no stored results match these filters" in result.output
    assert json.loads(lab(runner, db_url, "history", "--json", "--since", "2099-01-01").stdout) == []
    assert len(json.loads(lab(runner, db_url, "history", "--json", "--since", "7d", "--until", "2099-12-31").stdout)) == 4


@pytest.mark.parametrize(
    "args,message",
    [
        (["--json", "--csv"], "--json and --csv exclude each other"),
        (["--since", "yesterday"], "--since 'yesterday': use a date (2025-03-01)"),
        (["--until", "2025-13-40"], "--until '2025-13-40'"),
        (["--limit", "-1"], "Invalid value for '--limit'"),
        (["--plot", "history.jpg"], "must end in .png"),
    ],
)
def test_history_bad_input(runner: CliRunner, db_url: str, store: Store, args: list[str], message: str) -> None:
    add_synthetic_run(store)
    result = lab(runner, db_url, "history", *args)
    assert result.exit_code == 2
    assert message in result.output


# compare ---------------------------------------------------------------------------------------


def test_compare_two_runs(runner: CliRunner, db_url: str, store: Store) -> None:
    a = add_synthetic_run(store, seed=1)
    b = add_synthetic_run(store, slowdown=1.1, seed=2)
    data = json.loads(lab(runner, db_url, "compare", str(a), str(b), "--json").stdout)
    assert {r["verdict"] for r in data["rows"]} == {"slower"}
    assert all(1.05 < r["ratio"]["value"] < 1.15 for r in data["rows"])
    text = lab(runner, db_url, "compare", str(b), str(a))
    assert text.exit_code == 0 and "faster" in text.output and "no change = not shown to differ" in text.output


def test_compare_unknown_run(runner: CliRunner, db_url: str, store: Store) -> None:
    add_synthetic_run(store)
    result = lab(runner, db_url, "compare", "1", "9")
    assert result.exit_code == 2 and "error: run 9 is not in" in result.output


def test_compare_runs_with_nothing_in_common_exits_2_naming_both(runner: CliRunner, db_url: str, store: Store) -> None:
    dense, pruned = guide_models()
    a = add_synthetic_run(store, devices=(phone(),), models=(dense,), seed=1)
    b = add_synthetic_run(store, devices=(emulated_device(),), models=(pruned,), seed=2)
    result = lab(runner, db_url, "compare", str(a), str(b))
    assert result.exit_code == 2
    assert "no model × device in common" in result.output
    assert "pruned.tflite on emulator-5554" in result.output and "dense.tflite on 1A2B3C4D5E: only in run 1" in result.output


# check -----------------------------------------------------------------------------------------


def test_check_exits_1_on_an_injected_slowdown_and_0_on_an_a_a_pair(runner: CliRunner, db_url: str, store: Store) -> None:
    add_synthetic_run(store, seed=1)
    add_synthetic_run(store, seed=2)  # the same models again: A/A
    result = lab(runner, db_url, "check")
    assert result.exit_code == 0, result.output
    assert "no regression" in result.output
    add_synthetic_run(store, slowdown=1.1, seed=3)  # every model does 10% more work
    result = lab(runner, db_url, "check")
    assert result.exit_code == 1
    assert "regression" in result.output and "REGRESSION" in result.output
    data = json.loads(lab(runner, db_url, "check", "--json", "--baseline", "last:2").stdout)
    assert data["exit_code"] == 1 and len(data["baselines"]) == 2
    assert all(r["regression"] for r in data["rows"] if r["test"] == "latency")
    relaxed = lab(runner, db_url, "check", "--max-regression", "15%", "--max-median-regression", "15%")
    assert relaxed.exit_code == 0
    assert lab(runner, db_url, "check", "--run", "2", "--baseline", "1").exit_code == 0


def test_check_with_nothing_to_compare_exits_2(runner: CliRunner, db_url: str, store: Store) -> None:
    empty = lab(runner, db_url, "check")
    assert empty.exit_code == 2 and "the store is empty" in empty.output
    add_synthetic_run(store)
    alone = lab(runner, db_url, "check")
    assert alone.exit_code == 2 and "no finished run before run 1" in alone.output


def test_check_compares_emulated_only_with_emulated(runner: CliRunner, db_url: str, store: Store) -> None:
    add_synthetic_run(store, devices=(emulated_device(serial="emulator-5554"),))
    import dataclasses

    # the same serial now names a phone: its results must not be compared with the emulated ones
    add_synthetic_run(store, devices=(dataclasses.replace(phone(), serial="emulator-5554"),), slowdown=1.5)
    result = lab(runner, db_url, "check")
    assert result.exit_code == 2
    assert "emulated results are compared only with emulated results" in result.output


def test_check_matches_a_rebuilt_model_by_role(runner: CliRunner, db_url: str, store: Store) -> None:
    from tests.host.synthetic import model_file

    add_synthetic_run(store, seed=1)
    rebuilt = tuple(model_file(m.name, m.role, variant="rebuilt", manifest=m.manifest) for m in guide_models())
    add_synthetic_run(store, seed=2, models=rebuilt, slowdown=1.2)
    data = json.loads(lab(runner, db_url, "check", "--json").stdout)
    assert data["exit_code"] == 1 and len([r for r in data["rows"] if r["test"] == "latency"]) == 4


@pytest.mark.parametrize(
    "args,message",
    [
        (["--baseline", "last:0"], "--baseline 'last:0': give a run id"),
        (["--baseline", "previous"], "--baseline 'previous'"),
        (["--max-regression", "five"], "--max-regression 'five': give a percentage"),
        (["--max-regression", "0%"], "must be above 0%"),
        (["--max-regression", "abc"], "--max-regression 'abc': give a percentage"),
        (["--max-tail-regression", "lots"], "--max-tail-regression 'lots': give a percentage"),
        (["--max-memory-regression", "-5%"], "--max-memory-regression '-5%': must be above 0%"),
        (["--metric", "energy"], "--metric 'energy': use one of time, instructions"),
        (["--run", "77"], "run 77 is not in"),
        (["--baseline", "77"], "run 77 is not in"),
        (["--baseline", "2", "--run", "2"], "is the run being checked"),
    ],
)
def test_check_bad_input(runner: CliRunner, db_url: str, store: Store, args: list[str], message: str) -> None:
    add_synthetic_run(store)
    add_synthetic_run(store)
    result = lab(runner, db_url, "check", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_check_of_a_run_that_failed_entirely_exits_1_with_the_reason(runner: CliRunner, db_url: str, store: Store) -> None:
    add_synthetic_run(store, devices=(phone(),))
    add_synthetic_run(store, devices=(phone(),), failing=("dense.tflite", "pruned.tflite"))
    result = lab(runner, db_url, "check")
    assert result.exit_code == 1
    assert "gate failed (failed)" in result.output and "no successful trial in the candidate" in result.output
    data = json.loads(lab(runner, db_url, "check", "--json").stdout)
    assert data["exit_code"] == 1 and {r["outcome"] for r in data["rows"]} == {"failed"}
    assert all(r["regression"] for r in data["rows"]) and data["headline"] == "p5"


# report ----------------------------------------------------------------------------------------


def test_report_of_the_latest_run_and_files(runner: CliRunner, db_url: str, store: Store, tmp_path: Path) -> None:
    add_synthetic_run(store, seed=1)
    add_synthetic_run(store, seed=2)
    table = lab(runner, db_url, "report")
    assert table.exit_code == 0 and "run 2" in table.output
    assert "no pruning speed-up is expected" in " ".join(table.output.split())
    md = lab(runner, db_url, "report", "1", "--format", "md")
    assert md.stdout.startswith("# lab report: run 1")
    out = tmp_path / "r" / "report.html"
    result = lab(runner, db_url, "report", "--out", str(out))
    assert result.exit_code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    assert json.loads(lab(runner, db_url, "report", "--format", "json").stdout)["run"]["id"] == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["--format", "pdf"], "--format 'pdf': use one of md, html, csv, json"),
        (["--out", "report.txt"], "cannot tell the format from its suffix"),
        (["12"], "run 12 is not in"),
    ],
)
def test_report_bad_input(runner: CliRunner, db_url: str, store: Store, args: list[str], message: str) -> None:
    add_synthetic_run(store)
    result = lab(runner, db_url, "report", *args)
    assert result.exit_code == 2 and message in result.output


def test_report_of_an_empty_store(runner: CliRunner, db_url: str) -> None:
    result = lab(runner, db_url, "report")
    assert result.exit_code == 2 and "the store has no runs yet" in result.output


# export / import -------------------------------------------------------------------------------


def test_export_import_between_stores(runner: CliRunner, db_url: str, store: Store, tmp_path: Path) -> None:
    add_synthetic_run(store, seed=1)
    add_synthetic_run(store, seed=2)
    exported = lab(runner, db_url, "export")
    assert exported.exit_code == 0
    lines = exported.stdout.splitlines()
    assert json.loads(lines[0])["type"] == "lab-export" and len(lines) == 1 + 2 + 2 * 20
    path = tmp_path / "runs.jsonl"
    assert lab(runner, db_url, "export", "--out", str(path)).exit_code == 0
    assert path.read_text().splitlines()[1:] == lines[1:]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    first = lab(runner, other, "import", str(path))
    assert first.exit_code == 0 and "2 run(s) added (0 already present), 40 trial(s) added" in first.output
    again = lab(runner, other, "import", "-", stdin=exported.stdout)
    assert again.exit_code == 0
    assert "0 run(s) added (2 already present), 0 trial(s) added (40 already present)" in again.output
    with open_store(other) as imported:
        assert imported.count_measurements() == 40


def test_import_bad_file(runner: CliRunner, db_url: str, store: Store, tmp_path: Path) -> None:
    add_synthetic_run(store)
    lines = lab(runner, db_url, "export").stdout.splitlines()
    lines[5] = lines[5].replace('"index":', '"index":"zero","x":', 1)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = lab(runner, other, "import", str(path))
    assert result.exit_code == 2
    assert f"{path}, line 6: trial.index: expected an integer" in result.output
    assert "nothing was imported" in result.output
    missing = lab(runner, other, "import", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "cannot read" in missing.output and "No such file" in missing.output
    with open_store(other) as imported:
        assert imported.count_runs() == 0


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [("avg", "NaN", "runs.avg_us is nan"), ("median", "-1e308", "runs.median_us is -1e+308")],
)
def test_import_refuses_latencies_that_are_no_times(
    runner: CliRunner, db_url: str, store: Store, tmp_path: Path, field: str, value: str, shown: str
) -> None:
    add_synthetic_run(store)
    lines = lab(runner, db_url, "export").stdout.splitlines()
    record = json.loads(lines[4])
    record["trial"]["result"]["runs"][f"{field}_us"] = value if value == "NaN" else float(value)
    lines[4] = json.dumps(record)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = lab(runner, other, "import", str(path))
    assert result.exit_code == 2 and f"line 5: trial" in result.output and shown in result.output
    with open_store(other) as imported:
        assert imported.count_runs() == 0


def test_import_of_garbage_is_one_line_not_a_traceback_or_all_memory(runner: CliRunner, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"type":"lab-export","format":1}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    deep = lab(runner, other, "import", str(nested))
    assert deep.exit_code == 2 and "line 2: JSON nested too deeply" in deep.output
    zero = lab(runner, other, "import", "/dev/zero")
    assert zero.exit_code == 2 and "line 1: longer than 64 MiB: not a lab export" in zero.output


def test_a_corrupt_database_gives_one_line(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    path.write_bytes(os.urandom(4096))
    result = lab(runner, f"sqlite:///{path}", "history")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "is not a SQLite database or is corrupt" in result.output


def test_home_option_places_the_store(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "history"])
    assert result.exit_code == 0 and (tmp_path / "home" / "lab.db").exists()


def test_check_on_instruction_counts(runner: CliRunner, db_url: str, store: Store) -> None:
    """Counts under QEMU are exact: any change beyond 0.1% is a regression, no statistics needed."""
    import sqlite3

    for seed in (1, 2, 3):
        add_synthetic_run(store, seed=seed, devices=(emulated_device(emulation="qemu-user neoverse-n1"),))
    not_counted = lab(runner, db_url, "check", "--metric", "instructions")
    assert not_counted.exit_code == 2 and "instructions were not counted on one side" in not_counted.output
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as raw:
        raw.execute("UPDATE measurement SET instructions_median = 122969 WHERE run_id IN (1, 2)")
        raw.execute("UPDATE measurement SET instructions_median = 122990 WHERE run_id = 3")  # +0.02%
    same = lab(runner, db_url, "check", "--metric", "instructions", "--run", "3", "--baseline", "2")
    assert same.exit_code == 0, same.output
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as raw:
        raw.execute("UPDATE measurement SET instructions_median = 135266 WHERE run_id = 3")  # +10%
    data = json.loads(lab(runner, db_url, "check", "--metric", "instructions", "--json").stdout)
    assert data["exit_code"] == 1 and data["metric"] == "instructions" and data["max_regression"] == 0.001
    assert all(r["regression"] and "10.000% more instructions" in r["reason"] for r in data["rows"])


# store URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("sqlite:////nonexistent/dir/lab.db", "its folder /nonexistent/dir does not exist"),
        ("not a url at all", "'not a url at all' is neither a database URL nor an existing store file"),
    ],
)
def test_a_mistyped_store_is_refused_not_created(runner: CliRunner, tmp_path: Path, db: str, message: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["--db", db, "history"])
    assert result.exit_code == 2 and message in result.output and "--init" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_init_creates_a_new_store_on_purpose(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'folder' / 'lab.db'}"
    assert runner.invoke(app, ["--db", url, "history"]).exit_code == 2
    created = runner.invoke(app, ["--init", "--db", url, "history"])
    assert created.exit_code == 0 and "no results stored yet" in created.output
    assert (tmp_path / "new" / "folder" / "lab.db").is_file()
    assert runner.invoke(app, ["--db", url, "history"]).exit_code == 0  # it exists now: no --init needed
