"""`lab publish` without a browser: pages from the store, incremental writes, filters, escaping, bad input."""

from __future__ import annotations

import re
import socket
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from host.cli.main import app
from host.errors import UsageError
from host.publish import STATE_DIR, SiteFilter, publish
from host.publish.serve import make_server
from host.publish.writer import SiteWriter
from host.records import OutputCheck
from host.store import Store

from tests.host.synthetic import add_synthetic_run, emulated_device, guide_models, model_file

SCRIPT_NAME = "<script>alert(1)</script>.tflite"


def _files(site: Path) -> dict[str, bytes]:
    files = (p for p in site.rglob("*") if p.is_file() and STATE_DIR not in p.relative_to(site).parts)
    return {str(p.relative_to(site)): p.read_bytes() for p in files}


def test_writer_skips_unchanged_files_and_removes_stale_ones(tmp_path: Path) -> None:
    made = {"lab": "test"}
    first = SiteWriter(tmp_path, made)
    first.write("a.html", "one")
    first.write("b/c.html", "two")
    assert first.finish().written == 2
    mtime = (tmp_path / "a.html").stat().st_mtime_ns
    second = SiteWriter(tmp_path, made)
    second.write("a.html", "one")
    counts = second.finish()
    assert (counts.written, counts.unchanged, counts.removed) == (0, 1, 1)
    assert (tmp_path / "a.html").stat().st_mtime_ns == mtime and not (tmp_path / "b" / "c.html").exists()
    third = SiteWriter(tmp_path, {"lab": "other templates"})
    third.write("a.html", "one")
    assert third.finish().written == 1  # other templates: every page is rewritten


def test_site_pages_and_an_incremental_publish(store: Store, tmp_path: Path) -> None:
    site = tmp_path / "site"
    for seed in range(3):
        add_synthetic_run(store, trials=3, seed=seed)
    slow = add_synthetic_run(store, trials=3, seed=3, slowdown=1.2)
    publish(store, site)
    pages = _files(site)
    expected = {"index.html", "runs.html", "assets/site.css", "assets/site.js", f"runs/{slow}.html", f"compare/{slow}.html"}
    assert expected <= set(pages)
    assert len([p for p in pages if p.startswith("history/")]) == 4  # 2 models × 2 devices
    index = pages["index.html"].decode()
    assert index.count('class="grid flagged"') == 4 and "REGRESSION" in index  # every pair got 20% slower
    compare = pages[f"compare/{slow}.html"].decode()
    assert "lab check would fail" in compare and compare.count('<tr class="flagged">') >= 4
    assert re.search(r"1\.(19|2\d)\d× \[", compare)  # the ratio with its CI

    assert publish(store, site).written == 0  # nothing changed: nothing rewritten
    new = add_synthetic_run(store, trials=3, seed=4)
    counts = publish(store, site)
    after = _files(site)
    changed = {p for p in after if after[p] != pages.get(p)}
    assert changed == {f"runs/{new}.html", f"compare/{new}.html", "index.html", "runs.html"} | {
        p for p in after if p.startswith("history/")
    }
    assert counts.written == len(changed) and counts.removed == 0


def test_a_new_run_saves_its_own_record_not_every_runs(store: Store, tmp_path: Path) -> None:
    site = tmp_path / "site"
    for seed in range(3):
        add_synthetic_run(store, trials=2, seed=seed)
    publish(store, site)
    state = site / STATE_DIR
    inodes = {p.relative_to(state).as_posix(): p.stat().st_ino for p in state.rglob("*.json")}
    assert len([p for p in inodes if p.startswith("runs/")]) == 3
    new = add_synthetic_run(store, trials=2, seed=3)
    publish(store, site)
    after = {p.relative_to(state).as_posix(): p.stat().st_ino for p in state.rglob("*.json")}
    assert {p for p in after if inodes.get(p) != after[p]} == {f"runs/{new}.json", "site.json"}  # replaced: a new inode


def test_a_site_of_the_one_file_state_is_rebuilt_and_its_stale_pages_removed(store: Store, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "old.html").write_text("stale")
    (site / ".lab-publish.json").write_text('{"format": 1, "files": {"old.html": "0"}, "runs": []}')
    add_synthetic_run(store, trials=2)
    assert publish(store, site).removed == 1
    assert not (site / "old.html").exists() and not (site / ".lab-publish.json").exists()
    assert publish(store, site).written == 0


def test_filters_and_links_resolve(store: Store, tmp_path: Path) -> None:
    for seed in range(2):
        add_synthetic_run(store, trials=2, seed=seed)
    site = tmp_path / "site"
    publish(store, site, SiteFilter(model="dense", device="emulator-5554"))
    pages = _files(site)
    assert [p for p in pages if p.startswith("history/")] == [p for p in pages if p.startswith("history/dense--emulator")]
    for name, data in pages.items():
        for link in re.findall(r'(?:href|src)="([^"#]+)"', data.decode(errors="replace")):
            assert (site / name).parent.joinpath(link).resolve().is_file(), f"{name}: {link}"
    publish(store, site)  # the filter dropped: the other pages appear, none is stale
    assert len([p for p in _files(site) if p.startswith("history/")]) == 4


def test_wrong_outputs_on_the_device_are_flagged_like_lab_check_flags_them(store: Store, tmp_path: Path) -> None:
    add_synthetic_run(store, trials=2, seed=0, devices=(emulated_device(),))
    run = add_synthetic_run(store, trials=2, seed=1, devices=(emulated_device(),))  # as fast as the first
    dense, _ = guide_models()
    store.save_output_check(OutputCheck(
        run_id=run, device=emulated_device(), model=dense, status="wrong", inputs=16, precision="fp32",
        tolerance="max |device − host| ≤ 0.0001 × max |host|", reference="seeded inputs",
        checked_at=datetime.now(timezone.utc), max_abs_error=0.5, max_rel_error=0.8,
        error="wrong output on this device: max |device − host| is 0.8 × max |host|",
    ))
    site = tmp_path / "site"
    publish(store, site)
    compare = (site / "compare" / f"{run}.html").read_text()
    assert "lab check would fail: 1 row(s) flagged" in compare
    flagged = [row for row in compare.split("<tr") if row.startswith(' class="flagged"')]
    assert len(flagged) == 1 and "dense.tflite" in flagged[0] and "outputs" in flagged[0] and "0.8 × max" in flagged[0]
    index = (site / "index.html").read_text()
    assert index.count('class="grid flagged"') == 1  # the dense model's cell; the pruned one is fine


def test_names_are_escaped(store: Store, tmp_path: Path) -> None:
    add_synthetic_run(store, trials=2, models=(model_file(SCRIPT_NAME, None),), devices=(emulated_device(),))
    site = tmp_path / "site"
    publish(store, site)
    for name, data in _files(site).items():
        assert b"<script>alert" not in data, name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.tflite" in (site / "index.html").read_text()


def test_empty_store_says_how_to_make_a_run(store: Store, tmp_path: Path) -> None:
    publish(store, tmp_path)
    index = (tmp_path / "index.html").read_text()
    assert "Nothing to show yet" in index and "lab bench MODEL.tflite" in index


def test_bad_out_dir(store: Store, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        publish(store, blocker)
    with pytest.raises(UsageError, match="cannot create the site folder"):
        publish(store, blocker / "site")


def test_cli_one_line_errors(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["--db", db_url, "--init", "publish", str(blocker)])
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0 and "is a file" in result.stderr
    assert runner.invoke(app, ["--db", db_url, "publish", str(tmp_path / "site")]).exit_code == 0
    with sqlite3.connect(tmp_path / "lab.db") as raw:
        raw.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    result = runner.invoke(app, ["--db", db_url, "publish", str(tmp_path / "site")])
    assert result.exit_code == 2 and "newer than this lab knows" in result.stderr


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is in use"):
            make_server(tmp_path, "127.0.0.1", port, lambda: None)


def test_served_site_is_regenerated_when_the_store_changed(store: Store, db_url: str, tmp_path: Path) -> None:
    import threading
    import urllib.request

    site = tmp_path / "site"
    publish(store, site)
    refreshed = []
    server = make_server(site, "127.0.0.1", 0, lambda: refreshed.append(publish(store, site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        add_synthetic_run(store, trials=2, devices=(emulated_device(),))
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        with urllib.request.urlopen(url, timeout=30) as reply:
            assert reply.status == 200 and "dense.tflite" in reply.read().decode()
        assert refreshed and refreshed[0].written > 0
    finally:
        server.shutdown()
        server.server_close()
