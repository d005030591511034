"""The on-device output check (`--verify K`): real LiteRT on the host, real adb and emulated devices,
real stores. The rules by themselves; matching outputs stored and shown; a tool that writes no or a
short output file; a model altered after its build caught as wrong output; bad settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from host.bench import model_file, run_bench
from host.bench.verify import TOLERANCES, Reference, build_reference, build_references, compare
from host.cli.main import app
from host.devices import select_devices
from host.errors import UsageError
from host.records import BenchRequest, TrialParams
from host.reference import ModelIO, TensorSpec, model_io, random_inputs
from host.store import open_store

from ..devices.elf_files import write_script

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"
FAST = TrialParams(runs=5, warmup_runs=1, timeout_s=120)


def _scores(rows: list[list[float]], dtype: type = np.float32) -> Reference:
    outputs = np.array(rows, dtype)
    io = ModelIO((TensorSpec("x", "float32", (1, 2)),), (TensorSpec("y", outputs.dtype.name, (1, outputs.shape[1])),))
    return Reference((np.zeros((len(rows), 2), np.float32),), (outputs,), io, "fp32", "test")


def test_the_rules_per_precision() -> None:
    ref = _scores([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    same = compare([ref.outputs[0] * (1 + 5e-5)], ref, TOLERANCES["fp32"])
    assert same.status == "ok" and same.top1_agreement == 1.0 and 0 < same.max_rel_error <= 1e-4
    off = compare([ref.outputs[0] * 1.01], ref, TOLERANCES["fp32"])
    assert off.status == "wrong" and "allowed 0.0001" in off.detail
    assert compare([ref.outputs[0] * 1.005], ref, TOLERANCES["fp16"]).status == "ok"
    nan = ref.outputs[0].copy()
    nan[0, 0] = np.nan
    assert compare([nan], ref, TOLERANCES["fp16"]).status == "wrong"

    # int8: top-1 agreement, a flip between two classes within two int8 steps of the range excepted
    tie = _scores([[0.500, 0.498, 0.002], [0.9, 0.05, 0.05]])
    flipped_tie = np.array([[0.498, 0.500, 0.002], [0.9, 0.05, 0.05]], np.float32)
    assert compare([flipped_tie], tie, TOLERANCES["int8"]).status == "ok"
    flipped = np.array([[0.500, 0.498, 0.002], [0.05, 0.9, 0.05]], np.float32)
    wrong = compare([flipped], tie, TOLERANCES["int8"])
    assert wrong.status == "wrong" and wrong.top1_agreement == 0.5 and "0.0% on 1 inputs without near ties" in wrong.detail

    # a rule that needs class scores, on an output that is not: cannot be compared, said so
    flat = _scores([[0.3], [0.4]])
    cannot = compare([flat.outputs[0]], flat, TOLERANCES["dynamic"])
    assert cannot.status == "failed" and cannot.detail.startswith("cannot be compared: its first output (2, 1)")


def test_host_reference_of_a_file_and_bad_inputs() -> None:
    io = model_io(MODELS / "mixed_dtypes.tflite")
    assert [s.dtype for s in io.inputs] == ["int32", "float32", "int8"]
    inputs = random_inputs(io, 4, seed=1)
    assert [a.shape for a in inputs] == [(4, 2), (4, 4), (4, 4)]
    assert all(np.array_equal(a, b) for a, b in zip(inputs, random_inputs(io, 4, seed=1)))
    ref = build_reference(MODELS / "mixed_dtypes.tflite", inputs, role=None, source="test")
    assert ref.precision == "dynamic" and [o.shape for o in ref.outputs] == [(4, 2), (4, 4)]
    with pytest.raises(UsageError, match=r"conv.tflite has shape \(1, 16, 16, 3\), the check's values \(8, 8, 3\)"):
        build_reference(MODELS / "conv.tflite", [np.zeros((2, 8, 8, 3), np.float32)], role=None, source="test")
    with pytest.raises(UsageError, match="conv.tflite has 1 inputs, the check has values for 2"):
        build_reference(MODELS / "conv.tflite", [np.zeros((2, 16, 16, 3), np.float32)] * 2, role=None, source="test")
    with pytest.raises(UsageError, match="--verify must be between 0 \\(off\\) and 1,024 inputs, got 5,000"):
        BenchRequest(verify=5000).check()


def _bench(adb_server: Any, tmp_path: Path, models: list[Path], serial: str, **kwargs: Any) -> Any:
    request = BenchRequest(params=FAST, **{"trials": 1, **kwargs})
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        return run_bench(
            request,
            [model_file(m) for m in models],
            select_devices(adb_server.client, [serial]),
            store=store,
            home=tmp_path / "home",
            progress=None,
            client=adb_server.client,
        )


def _stored(tmp_path: Path, run_id: int) -> list[Any]:
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        return store.output_checks([run_id])


@pytest.mark.slow
def test_outputs_checked_on_the_device_stored_and_shown(
    adb_server: Any, emulated_device: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = [MODELS / "conv.tflite", MODELS / "add.tflite", MODELS / "mixed_dtypes.tflite"]
    out = _bench(adb_server, tmp_path, models, emulated_device.serial, verify=8)
    assert out.exit_code == 0, [c.error for c in out.checks]
    assert [(c.model.name, c.status, c.inputs) for c in out.checks] == [
        ("add.tflite", "ok", 8), ("conv.tflite", "ok", 8), ("mixed_dtypes.tflite", "ok", 8)
    ]
    conv = out.checks[1]
    assert conv.precision == "fp32" and conv.max_rel_error is not None and conv.max_rel_error <= 1e-4
    assert conv.top1_agreement == 1.0 and conv.baseline_agreement == 1.0 and conv.baseline == "conv.tflite"
    assert conv.reference.startswith("LiteRT on the host, builtin kernels without XNNPACK, 8 seeded inputs")
    assert conv.command is not None and "--input_layer_shape=8,16,16,3" in conv.command
    assert "--input_layer_value_files=serving_default_x::0:verify_input_" in conv.command
    assert "--output_filepath=verify_output.bin" in conv.command
    stored = _stored(tmp_path, out.run_id)
    assert [(c.model.name, c.status, c.max_rel_error) for c in stored] == [
        (c.model.name, c.status, c.max_rel_error) for c in out.checks
    ]

    # lab export / lab import carry the checks (twice imported: added once)
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        lines = list(store.export_lines())
    assert sum('"type":"check"' in line for line in lines) == 3
    with open_store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        copy.import_lines(lines)
        copy.import_lines(lines)
        (run,) = copy.list_runs()
        copied = copy.output_checks([run.id])
    assert [(c.model.name, c.status, c.max_rel_error, c.command) for c in copied] == [
        (c.model.name, c.status, c.max_rel_error, c.command) for c in stored
    ]

    # the CLI: an "outputs" column, a line per model, and the checks in --json
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "cli"))
    result = CliRunner().invoke(app, ["bench", str(MODELS / "conv.tflite"), "-s", emulated_device.serial,
                                      "--trials", "1", "--runs", "5", "--verify", "4", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    (check,) = document["output_checks"]
    assert check["status"] == "ok" and check["inputs"] == 4 and document["outputs_ok"] is True
    assert check["model"]["name"] == "conv.tflite" and check["wrong_output_on_device"] is False
    text = CliRunner().invoke(app, ["bench", str(MODELS / "conv.tflite"), "-s", emulated_device.serial,
                                    "--trials", "1", "--runs", "5", "--verify", "4"])
    assert text.exit_code == 0 and "outputs" in text.stdout and "ok (4, top-1 100%)" in text.stdout
    assert "conv.tflite: outputs match the host's on 4 inputs" in text.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("rm -f verify_output.bin", "output check failed: the tool wrote no verify_output.bin"),
        ("[ -f verify_output.bin ] && head -c 100 verify_output.bin > t.bin && mv t.bin verify_output.bin",
         "output check failed: verify_output.bin holds 100 bytes, the outputs take 256: truncated"),
    ],
    ids=["missing", "truncated"],
)
def test_an_output_file_missing_or_short_fails_the_check(
    adb_server: Any, emulated_device: Any, tmp_path: Path, after: str, expected: str
) -> None:
    from host.cli.render.bench import failure_lines

    tool = write_script(tmp_path / "benchmark_model", f'"{sys.executable}" -m device_agent bench "$@"; rc=$?; {after}; exit $rc')
    out = _bench(adb_server, tmp_path, [MODELS / "conv.tflite"], emulated_device.serial, verify=8, binary=str(tool))
    assert [t.status for t in out.trials] == ["ok"]
    (check,) = out.checks
    assert check.status == "failed" and out.exit_code == 1
    assert any(expected in line for line in failure_lines(out)), failure_lines(out)
    (stored,) = _stored(tmp_path, out.run_id)
    assert stored.status == "failed" and stored.error == check.error


@pytest.mark.slow
def test_a_model_whose_trials_all_failed_is_not_checked(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    out = _bench(adb_server, tmp_path, [MODELS / "add.tflite", MODELS / "flex.tflite"], emulated_device.serial, verify=4)
    assert [c.model.name for c in out.checks] == ["add.tflite"] and out.checks[0].status == "ok"
    assert out.exit_code == 1  # from flex.tflite's failed trial, which says why


def _negate_float_weights(path: Path) -> None:
    """Weights altered after conversion, names and shapes kept: every float32 constant of more than
    16 values negated (in place, through TensorFlow's flatbuffer tools)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    changed = 0
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            data = model.buffers[tensor.buffer].data
            if tensor.type == schema.TensorType.FLOAT32 and data is not None and len(data) > 64:
                values = np.frombuffer(bytes(data), np.float32)
                model.buffers[tensor.buffer].data = (-values).tobytes()
                changed += 1
    assert changed
    flatbuffer_utils.write_model(model, str(path))


@pytest.mark.tf
@pytest.mark.slow
def test_a_model_altered_after_its_build_is_caught(
    adb_server: Any, emulated_device: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from host.builder import BuildSpec, build

    built = build(BuildSpec(dataset="synthetic", quick=True), tmp_path / "home")
    assert built.manifest["verification"]["inputs"]["count"] == 64
    _negate_float_weights(built.files["pruned"])
    models = [model_file(path, role=name, build_id=built.build_id, manifest=built.manifest)
              for name, path in built.files.items()]
    assert model_io(built.files["pruned"]) == model_io(built.files["dense"])  # same names and shapes
    references = build_references(models, built.dir, built.manifest)
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        out = run_bench(
            BenchRequest(params=FAST, trials=1, verify=16),
            models,
            select_devices(adb_server.client, [emulated_device.serial]),
            store=store,
            home=tmp_path / "home",
            progress=None,
            client=adb_server.client,
            references=references,
        )
    by_name = {c.model.name: c for c in out.checks}
    assert by_name["dense.tflite"].status == "ok" and by_name["dense.tflite"].reference.startswith(f"build {built.build_id}")
    pruned = by_name["pruned.tflite"]
    assert pruned.status == "wrong" and out.exit_code == 1 and all(t.status == "ok" for t in out.trials)
    assert pruned.error is not None and pruned.error.startswith("wrong output on this device: max |device − host| is ")
    assert _stored(tmp_path, out.run_id)[1].status == "wrong"

    # the report: the matrix's order, an "outputs on device" column, the reason in the device's notes
    from host.report import build_report
    from host.report import md

    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        report = build_report(store, out.run_id)
    (section,) = report.devices
    assert [r.role for r in section.rows] == ["dense", "pruned"]
    assert [r.outputs.status if r.outputs else None for r in section.rows] == ["ok", "wrong"]
    assert any(n.startswith("pruned.tflite: wrong output on this device: max |device − host| is ") for n in section.notes)
    text = md.render(report)
    assert "| outputs on device |" in text and "| WRONG |" in text and "| ok (16, top-1 100%) |" in text

    # lab bench on the build's own files checks them against that build's references too
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "cli"))
    result = CliRunner().invoke(app, ["bench", str(built.files["dense"]), str(built.files["pruned"]), "-s",
                                      emulated_device.serial, "--trials", "1", "--runs", "3", "--verify", "8", "--json"])
    assert result.exit_code == 1, result.output
    checks = {c["model"]["name"]: c for c in json.loads(result.stdout)["output_checks"]}
    assert checks["dense.tflite"]["status"] == "ok" and checks["pruned.tflite"]["status"] == "wrong"
    assert checks["pruned.tflite"]["reference"].startswith(f"build {built.build_id}")
    assert json.loads(result.stdout)["status"] == "wrong outputs"


@pytest.mark.slow
def test_xnnpack_fp16_runs_the_flag_and_checks_with_the_fp16_tolerance(
    adb_server: Any, emulated_device: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "cli"))
    result = CliRunner().invoke(app, ["bench", str(MODELS / "conv.tflite"), "-s", emulated_device.serial, "--trials", "1",
                                      "--runs", "3", "--xnnpack-fp16", "--verify", "4", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    (check,) = document["output_checks"]
    assert check["status"] == "ok" and check["precision"] == "fp32"
    assert check["tolerance"] == "max |device − host| ≤ 0.01 × max |host| (XNNPACK forced to compute in fp16)"
    assert "--xnnpack_force_fp16=true" in check["command"]
    with open_store(f"sqlite:///{tmp_path / 'cli' / 'lab.db'}") as store:
        (trial,) = store.load_trials(document["run_id"])
    assert "--xnnpack_force_fp16=true" in trial.params.extra_flags and "CompiledModel" in (trial.tool.version or "")


@pytest.mark.slow
def test_lab_check_fails_a_candidate_whose_outputs_were_wrong_on_the_device(
    adb_server: Any, emulated_device: Any, tmp_path: Path
) -> None:
    from host.report.check import check_run

    good = _bench(adb_server, tmp_path, [MODELS / "conv.tflite"], emulated_device.serial, verify=4, trials=3)
    assert good.exit_code == 0
    # a tool that times like the real one but writes other outputs: what a broken delegate does
    corrupt = f'"{sys.executable}" -c "import numpy as n; a = n.fromfile(\'verify_output.bin\', n.float32); (1 - a).tofile(\'verify_output.bin\')"'
    tool = write_script(tmp_path / "benchmark_model", f'"{sys.executable}" -m device_agent bench "$@"; rc=$?; '
                                                      f'[ -f verify_output.bin ] && {corrupt}; exit $rc')
    bad = _bench(adb_server, tmp_path, [MODELS / "conv.tflite"], emulated_device.serial, verify=4, trials=3,
                 binary=str(tool))
    (check,) = bad.checks
    assert check.status == "wrong" and bad.exit_code == 1
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        result = check_run(store, bad.run_id, baseline=str(good.run_id))
    outputs = [r for r in result.rows if r.test == "outputs"]
    assert [(r.model_name, r.outcome) for r in outputs] == [("conv.tflite", "failed")]
    assert outputs[0].reason.startswith("wrong output on this device: ") and result.exit_code == 1
