"""The run report: figures, notes, and every exporter's output."""

from __future__ import annotations

import base64
import csv
import io
import json
import re

import pytest
from rich.console import Console

from host.errors import NotFoundError, UsageError
from host.records import DeviceFacts
from host.report import build_report, export_report, render_terminal, write_report
from host.report.build import device_notes, manifest_facts
from host.store import Store
from tests.host.synthetic import add_synthetic_run as add_run
from tests.host.synthetic import emulated_device, guide_models, phone

DENSE, PRUNED = guide_models()

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_figures_per_device(store: Store) -> None:
    run_id = add_run(store)
    report = build_report(store, run_id)
    assert report.baseline_name == "dense.tflite"
    emulated, physical = report.devices
    assert emulated.device.kind == "emulated" and physical.device.kind == "physical"
    dense, pruned = physical.rows
    assert dense.speedup is None and dense.role == "dense"
    assert pruned.speedup is not None
    assert pruned.speedup.value == pytest.approx(1 / 0.7, rel=0.03)
    assert pruned.speedup.low <= pruned.speedup.value <= pruned.speedup.high
    assert pruned.latency_us is not None and pruned.latency_us.value == pytest.approx(70, rel=0.03)
    assert (dense.accuracy, pruned.accuracy) == (0.712, 0.705)
    assert pruned.sparsity == 0.751 and dense.sparsity == 0.0
    assert pruned.size_bytes == 60_000 and pruned.trials_ok == 5


def test_honest_notes(store: Store) -> None:
    report = build_report(store, add_run(store))
    emulated, physical = report.devices
    assert emulated.notes[0] == (
        "emulated device: measures this machine's CPU; XNNPACK's sparse kernels are inactive on x86 CPUs "
        "with AVX, so no pruning speed-up is expected"
    )
    assert any("includes 1 — not shown to differ" in n for n in emulated.notes)
    assert not any("emulated" in n for n in physical.notes)
    assert "synthetic dataset: the accuracy figures mean nothing, only the latencies do" in report.notes


def test_device_notes_for_each_kind() -> None:
    arm = emulated_device(emulation="qemu-user neoverse-n1")
    assert device_notes(arm) == [
        "emulated ARM (qemu-user neoverse-n1): instructions per inference — deterministic; "
        "wall time not representative of hardware"
    ]
    assert device_notes(phone()) == []
    native = emulated_device(emulation="native")  # what the x86_64 emulated device reports
    assert device_notes(native)[0].startswith("emulated device: measures this machine's CPU; XNNPACK's sparse kernels")
    android_emulator = DeviceFacts(serial="emulator-5556", kind="emulator", abis=("x86_64",))
    assert "Android emulator" in device_notes(android_emulator)[0]


def test_manifest_facts_reads_the_build_manifest() -> None:
    assert manifest_facts(None, "dense") == (None, None)
    manifest = {
        "accuracy": {"tflite_dense": 0.79, "tflite_pruned": 0.7, "keras_pruned": 0.71},
        "files": {"pruned": {"conv1x1": [{"sparsity": 0.76}, {"sparsity": 0.74}]}, "dense": {"conv1x1": []}},
    }
    assert manifest_facts(manifest, "pruned") == (0.7, 0.74)  # the least sparse 1x1 conv counts
    assert manifest_facts(manifest, "dense") == (0.79, None)
    assert manifest_facts({"accuracy": {"tflite_dense": "high"}}, "dense") == (None, None)


def test_failed_trials_and_few_trials_are_noted(store: Store) -> None:
    run_id = add_run(store, trials=2, devices=(phone(),))
    report = build_report(store, run_id)
    assert any("only 2 successful trial(s)" in n for n in report.devices[0].notes)


def test_unknown_run(store: Store) -> None:
    with pytest.raises(NotFoundError, match="run 7 is not in"):
        build_report(store, 7)


def test_terminal_rendering(store: Store) -> None:
    report = build_report(store, add_run(store))
    console = Console(record=True, width=200)
    render_terminal(report, console)
    text = console.export_text()
    assert "emulator-5554 (emulated)" in text and "1A2B3C4D5E (physical): Google, Pixel 7" in text
    assert re.search(r"1\.4\d× \[1\.\d\d–1\.\d\d\]", text)
    assert "71.2%" in text and "75.1%" in text and "0.11 MiB" in text
    assert "no pruning speed-up is expected" in text


def test_markdown(store: Store) -> None:
    text = export_report(build_report(store, add_run(store)), "md")
    assert text.startswith("# lab report: run 1\n")
    assert "| model | latency (p5 invoke) [95% CI] | speed-up [95% CI] |" in text
    assert "| pruned |" in text  # a lab build's model shows as its variant
    assert "> **Note:** emulated device: measures this machine's CPU" in text


def test_csv(store: Store) -> None:
    rows = list(csv.DictReader(io.StringIO(export_report(build_report(store, add_run(store)), "csv"))))
    assert len(rows) == 4
    pruned_phone = next(r for r in rows if r["device_serial"] == "1A2B3C4D5E" and r["role"] == "pruned")
    assert float(pruned_phone["speedup"]) == pytest.approx(1 / 0.7, rel=0.03)
    assert float(pruned_phone["speedup_low"]) <= float(pruned_phone["speedup"]) <= float(pruned_phone["speedup_high"])
    assert pruned_phone["sha256"] == PRUNED.sha256 and pruned_phone["sparsity"] == "0.751"


def test_json(store: Store) -> None:
    data = json.loads(export_report(build_report(store, add_run(store)), "json"))
    assert data["run"]["id"] == 1 and data["baseline_name"] == "dense.tflite"
    row = data["devices"][1]["rows"][1]
    assert row["model_sha256"] == PRUNED.sha256
    assert set(row["speedup"]) == {"value", "low", "high"}


def test_html_is_one_self_contained_file_with_plots(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    add_run(store, seed=1)
    run_id = add_run(store, seed=2)
    path = write_report(build_report(store, run_id), "html", tmp_path / "out" / "report.html")
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 2  # the run's latencies and the history (two runs)
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from elsewhere
    assert "no pruning speed-up is expected" in html and "dense.tflite" in html


def test_history_in_the_report_covers_this_and_earlier_runs_only(store: Store) -> None:
    first = add_run(store, seed=1)
    second = add_run(store, seed=2)
    add_run(store, seed=3)
    report = build_report(store, second)
    assert {h.run_id for h in report.history} == {first, second}
    assert {h.model_name for h in report.history} == {DENSE.name, PRUNED.name}


def test_a_report_without_history_is_the_report_less_its_history(store: Store) -> None:
    add_run(store, seed=1)
    second = add_run(store, seed=2)
    full, bare = build_report(store, second), build_report(store, second, history=False)
    assert full.history and bare.history == []
    assert (bare.devices, bare.notes, bare.baseline_name) == (full.devices, full.notes, full.baseline_name)


def test_unknown_format_and_unwritable_path(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = build_report(store, add_run(store))
    with pytest.raises(UsageError, match="unknown report format 'pdf'"):
        export_report(report, "pdf")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot write the report to"):
        write_report(report, "md", blocker / "report.md")
