"""Per-op profiles through the host path: a trial's output → ``read_op_profile`` → a real SQLite store →
`lab compare --ops`, `lab check --ops`, `lab report`; with the bad inputs (graph changed, profile
absent, columns in an unexpected order, a header that cannot be read).

The op tables are benchmark_model's Run Order layout (TFLite 2.x, tab-separated, as in the shared
sample 05-meta-tflite-riscv64-op-profiling.txt), appended to synthetic trials' real output text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from host.bench.trial import OP_PROFILING_FLAG, read_op_profile
from host.cli.main import app
from host.records import ModelFile, Trial, TrialParams
from host.report.ops import compare_ops
from host.store import Store, open_store
from tests.host.synthetic import builtin_tool, model_file, phone, synthetic_trial

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "benchmark_model"
COLUMNS = ("[node type]", "[start]", "[first]", "[avg ms]", "[%]", "[cdf%]", "[mem KB]", "[times called]", "[Name]")

Op = tuple[str, float, str]  # (node type, avg ms, name)

GRAPH: list[Op] = [
    ("CONV_2D", 0.40, "[conv0]:0"),
    ("DEPTHWISE_CONV_2D", 0.20, "[dw1]:1"),
    ("CONV_2D", 1.00, "[pw1]:2"),
    ("MEAN", 0.05, "[pool]:3"),
    ("FULLY_CONNECTED", 0.10, "[fc]:4"),
]


def op_table(ops: Sequence[Op], columns: Sequence[str] = COLUMNS) -> str:
    """benchmark_model's regular-runs profile (Run Order table only, then its end line)."""
    total = sum(ms for _, ms, _ in ops)
    lines = ["Operator-wise Profiling Info for Regular Benchmark Runs:", "=" * 30 + " Run Order " + "=" * 30]
    lines.append("".join(f"\t{c}" for c in columns))
    cdf = start = 0.0
    for node_type, ms, name in ops:
        cdf += 100 * ms / total
        cells = {
            "[node type]": node_type, "[start]": f"{start:.3f}", "[first]": f"{ms:.3f}", "[avg ms]": f"{ms:.3f}",
            "[%]": f"{100 * ms / total:.3f}%", "[cdf%]": f"{cdf:.3f}%", "[mem KB]": "0.000", "[times called]": "1",
            "[Name]": name,
        }  # fmt: skip
        lines.append("".join(f"\t{cells.get(c, '1')}" for c in columns))
        start += ms
    lines += ["", f"{len(ops)} nodes observed", ""]
    return "\n".join(lines)


def profiled_trial(
    run_id: int, model: ModelFile, ops: Sequence[Op] | None, *, index: int, rng: np.random.Generator,
    columns: Sequence[str] = COLUMNS, noise: float = 0.02,
) -> Trial:  # fmt: skip
    """A trial run with --ops: its latency is the ops' total; each op's time varies a little per trial."""
    jittered = [(t, ms * (1 + rng.normal(0, noise)), name) for t, ms, name in ops] if ops else None
    latency_us = 1000 * sum(ms for _, ms, _ in (jittered or GRAPH))
    trial = synthetic_trial(run_id, phone(), model, latency_us=latency_us, rng=rng, index=index, position=index)
    trial.tool = builtin_tool("arm64-v8a")
    trial.params = TrialParams(extra_flags=(OP_PROFILING_FLAG,))
    if jittered is not None:
        trial.raw_output += "\n" + op_table(jittered, columns)
    assert trial.result is not None
    trial.result = read_op_profile(trial.result, trial.raw_output)
    return trial


def add_run(store: Store, model: ModelFile, ops: Sequence[Op] | None, *, trials: int = 5, seed: int = 0, **kw) -> int:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    run_id = store.start_run("bench", {"command": "bench"})
    store.save_trials([profiled_trial(run_id, model, ops, index=i, rng=rng, **kw) for i in range(trials)])
    store.finish_run(run_id, "ok")
    return run_id


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lab.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with open_store(db_url) as opened:
        yield opened


def lab(db_url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--db", db_url, *args])


# ---- storing ----


def test_per_op_rows_are_stored_with_each_trial(store: Store) -> None:
    run_id = add_run(store, model_file(), GRAPH, trials=3)
    (group,) = store.op_groups([run_id])
    assert len(group.trials) == 3
    ops = group.trials[0]["op"]
    assert [(o.index, o.node_type, o.name, o.times_called) for o in ops] == [
        (i, t, name, 1) for i, (t, _, name) in enumerate(GRAPH)
    ]
    assert all(o.avg_ms is not None and o.avg_ms > 0 and o.percent is not None for o in ops)
    assert sum(o.percent or 0 for o in ops) == pytest.approx(100, abs=0.01)
    # the whole profile also comes back with the trial
    trial = store.load_trials(run_id)[0]
    assert trial.result is not None and trial.result.op_profile is not None
    assert trial.result.op_profile.runs is not None and len(trial.result.op_profile.runs.ops) == len(GRAPH)


def test_columns_in_an_unexpected_order_are_stored_by_their_names(store: Store) -> None:
    shuffled = ("[Name]", "[times called]", "[avg ms]", "[node type]", "[mem KB]", "[cdf%]", "[%]", "[first]")
    run_id = add_run(store, model_file(), GRAPH, trials=1, columns=shuffled)
    (group,) = store.op_groups([run_id])
    ops = group.trials[0]["op"]
    assert [(o.node_type, o.name) for o in ops] == [(t, name) for t, _, name in GRAPH]
    assert [o.avg_ms for o in ops] == pytest.approx([ms for _, ms, _ in GRAPH], rel=0.1)


def test_a_header_that_cannot_be_read_is_a_warning_quoting_it_and_the_trial_counts(store: Store) -> None:
    bad = ("[node type]", "[first]", "[avg ms]", "[%]", "[cdf%]", "[mem KB]", "[times called]", "[Name]", "[flops]")
    run_id = add_run(store, model_file(), GRAPH, trials=1, columns=bad)
    (trial,) = store.load_trials(run_id)
    assert trial.status == "ok" and trial.result is not None
    (warning,) = [w for w in trial.result.warnings if w.startswith("op profile unreadable")]
    assert "[flops]" in warning
    assert store.op_groups([run_id]) == []


def test_profiling_requested_but_absent_is_a_trial_warning_not_a_failure(store: Store, db_url: str) -> None:
    run_id = add_run(store, model_file(), None, trials=2)
    trials = store.load_trials(run_id)
    assert all(t.status == "ok" for t in trials)
    for t in trials:
        assert t.result is not None
        assert "op profiling requested but absent: benchmark_model printed no op profile" in t.result.warnings
    assert store.op_groups([run_id]) == []
    other = add_run(store, model_file(), GRAPH, trials=2)
    result = lab(db_url, "compare", str(run_id), str(other), "--ops")
    assert result.exit_code == 0, result.output
    assert "no op profile in the other run" in result.stdout


def test_the_runners_unavailable_line_is_the_reason_given() -> None:
    rng = np.random.default_rng(0)
    trial = synthetic_trial(1, phone(), model_file(), latency_us=1000, rng=rng)
    trial.raw_output += "\nINFO: Op profiling unavailable: LiteRT's Python API has no op profiler\n"
    from device_agent.output import parse

    result = read_op_profile(parse(trial.raw_output), trial.raw_output)
    assert result.warnings[-1] == "op profiling requested but absent: LiteRT's Python API has no op profiler"


def test_bench_ops_on_a_native_emulated_device_stores_the_warning(emulated_device, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The x86 emulated device's LiteRT runner has no op profiler and no QEMU plugin: a warning, exit 0."""
    db_url = f"sqlite:///{tmp_path / 'lab.db'}"
    model = str(FIXTURES.parent / "models" / "add.tflite")
    done = lab(db_url, "bench", model, "--device", emulated_device.serial, "--ops", "--trials", "1", "--runs", "3")
    assert done.exit_code == 0, done.output
    assert "warning: op profiling requested but absent: LiteRT's Python API has no op profiler" in done.output
    with open_store(db_url) as store:
        (trial,) = store.load_trials(store.latest_run_id() or 0)
    assert trial.status == "ok" and trial.params.extra_flags == (OP_PROFILING_FLAG,)
    assert trial.result is not None
    (warning,) = [w for w in trial.result.warnings if w.startswith("op profiling requested but absent")]
    assert "per-kernel counts: not running under the lab's QEMU counting plugin" in warning


def test_the_shared_samples_reach_the_store(store: Store) -> None:
    """The real op-profiling sample (TFLite 2.8, riscv64): its 31 ops become 31 rows per trial."""
    from device_agent.output import parse

    text = (FIXTURES / "05-meta-tflite-riscv64-op-profiling.txt").read_text(encoding="utf-8")
    trial = synthetic_trial(None, phone(), model_file(), latency_us=2.9e6, rng=np.random.default_rng(0))
    run_id = store.start_run("bench", {})
    trial.run_id = run_id
    trial.params = TrialParams(extra_flags=(OP_PROFILING_FLAG,))
    trial.raw_output = text
    trial.result = read_op_profile(parse(text), text)
    store.save_trial(trial)
    (group,) = store.op_groups([run_id])
    ops = group.trials[0]["op"]
    assert len(ops) == 31
    assert (ops[0].node_type, ops[0].name, ops[0].avg_ms) == ("CONV_2D", "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0", 60.957)


def test_export_and_import_keep_the_op_rows(store: Store, tmp_path: Path) -> None:
    run_id = add_run(store, model_file(), GRAPH, trials=2)
    lines = list(store.export_lines())
    with open_store(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.import_lines(lines)
        (copied,) = other.op_groups([r.id for r in other.list_runs()])
    (original,) = store.op_groups([run_id])
    assert copied.trials == original.trials


# ---- comparing ----


def test_compare_ops_names_the_op_that_got_slower_and_the_rest_stays_put(store: Store, db_url: str) -> None:
    slower = [op if op[2] != "[pw1]:2" else (op[0], 1.40, op[2]) for op in GRAPH]
    a = add_run(store, model_file(), GRAPH, seed=1)
    b = add_run(store, model_file(), slower, seed=2)
    (group,) = compare_ops(store, a, b).groups
    top = group.rows[0]
    assert (top.node_type, top.name, top.index_a, top.index_b) == ("CONV_2D", "[pw1]:2", 2, 2)
    assert top.matched_by == "index, type and name" and top.beyond_noise
    assert top.ratio == pytest.approx(1.4, rel=0.05)
    for row in group.rows[1:]:
        assert not row.beyond_noise, row
        assert row.ratio == pytest.approx(1.0, abs=0.1)
    changes = [abs(r.delta) for r in group.rows]
    assert changes == sorted(changes, reverse=True)

    table = lab(db_url, "compare", str(a), str(b), "--ops")
    assert table.exit_code == 0, table.output
    assert "ms per inference, per op" in table.stdout and "[pw1]:2" in table.stdout
    document = json.loads(lab(db_url, "compare", str(a), str(b), "--ops", "--json").stdout)
    assert document["ops"]["groups"][0]["rows"][0]["name"] == "[pw1]:2"
    assert "comparison" in document


def test_a_changed_graph_matches_by_type_and_lists_the_unmatched(store: Store, db_url: str) -> None:
    # B fused MEAN away, renamed the pointwise conv and added a SOFTMAX
    changed = [GRAPH[0], GRAPH[1], ("CONV_2D", 1.0, "[pw1_renamed]:2"), ("FULLY_CONNECTED", 0.10, "[fc]:3"), ("SOFTMAX", 0.02, "[sm]:4")]
    a = add_run(store, model_file(), GRAPH, seed=1)
    b = add_run(store, model_file(), changed, seed=2)
    (group,) = compare_ops(store, a, b).groups
    by_how = {(r.node_type, r.matched_by) for r in group.rows}
    assert ("CONV_2D", "index, type and name") in by_how and ("DEPTHWISE_CONV_2D", "index, type and name") in by_how
    assert ("FULLY_CONNECTED", "type and name") in by_how  # moved from index 4 to 3
    assert ("CONV_2D", "type (graph changed)") in by_how  # renamed
    assert {(r.node_type, r.matched_by) for r in group.unmatched} == {("MEAN", "only in A"), ("SOFTMAX", "only in B")}
    assert len(group.rows) == 6  # nothing dropped: 4 matched + 2 unmatched

    table = lab(db_url, "compare", str(a), str(b), "--ops")
    assert "only in A" in table.stdout and "only in B" in table.stdout and "MEAN" in table.stdout
    assert "2 op(s) in one run only" in table.stdout


def test_dense_against_pruned_pairs_the_one_model_on_each_side(store: Store) -> None:
    a = add_run(store, model_file("dense.tflite", "dense"), GRAPH, seed=1)
    b = add_run(store, model_file("pruned.tflite", "pruned"), GRAPH, seed=2)
    result = compare_ops(store, a, b)
    (group,) = result.groups
    assert (group.model_a, group.model_b) == ("dense.tflite", "pruned.tflite")
    assert result.not_compared == []


def test_check_ops_names_the_ops_behind_a_regression(store: Store, db_url: str) -> None:
    slower = [op if op[2] != "[pw1]:2" else (op[0], 1.60, op[2]) for op in GRAPH]
    add_run(store, model_file(), GRAPH, seed=1)
    add_run(store, model_file(), slower, seed=2)
    gate = lab(db_url, "check", "--ops")
    assert gate.exit_code == 1, gate.output
    assert "op behind it: CONV_2D [pw1]:2 #2" in gate.stdout
    assert "DEPTHWISE_CONV_2D" not in gate.stdout  # only the op that grew beyond noise is named
    plain = lab(db_url, "check")
    assert plain.exit_code == 1 and "op behind it" not in plain.stdout


def test_check_ops_without_profiles_says_so(store: Store, db_url: str) -> None:
    add_run(store, model_file(), None, seed=1)
    slower = [(t, ms * 1.5, name) for t, ms, name in GRAPH]
    add_run(store, model_file(), slower, seed=2)
    gate = lab(db_url, "check", "--ops")
    assert gate.exit_code == 1, gate.output
    assert "no op profile on both sides" in gate.stdout


def test_report_shows_the_top_ops(store: Store, db_url: str) -> None:
    add_run(store, model_file(), GRAPH, trials=2)
    report = lab(db_url, "report")
    assert report.exit_code == 0, report.output
    assert "top ops by ms per inference, dense.tflite" in report.stdout
    lines = report.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "top ops by ms" in line)
    assert "CONV_2D" in lines[first + 1] and "[pw1]:2" in lines[first + 1]  # the costliest first


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_exported_reports_show_the_top_ops(store: Store, db_url: str, fmt: str) -> None:
    add_run(store, model_file(), GRAPH, trials=2)
    exported = lab(db_url, "report", "--format", fmt)
    assert exported.exit_code == 0, exported.output
    text = exported.stdout
    assert "top ops by ms per inference, dense.tflite" in text
    costliest = text.index("[pw1]:2")
    assert text.index("CONV_2D", text.index("top ops by ms")) < costliest  # the costliest row comes first
