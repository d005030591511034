"""The real pipeline on small synthetic data: the manifest checked against the files it describes."""

from __future__ import annotations

import hashlib
import importlib.metadata
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from host.builder import BuildResult, BuildSpec, build
from host.builder.datasets import load_dataset, parse_dataset
from host.builder.manifest import MANIFEST_VERSION, load_manifest
from host.builder.train import normalised

from .conftest import SMALL

pytestmark = pytest.mark.tf


def _interpreter(path: Path, preserve: bool = False) -> Any:
    """LiteRT's reference kernels (no XNNPACK delegate), so every tensor can be read back."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # preserve_all_tensors' "debugging only" note
        interpreter = Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=preserve,
        )
    interpreter.allocate_tensors()
    return interpreter


def test_the_folder_holds_both_models_and_the_manifest(built: BuildResult, build_home: Path) -> None:
    assert built.dir == build_home / "artifacts" / built.build_id
    assert sorted(p.name for p in built.dir.iterdir()) == [
        "dense.reference.npz", "dense.tflite", "manifest.json", "pruned.reference.npz", "pruned.tflite", "verify_inputs.npy"
    ]  # the models, and their host outputs on the first evaluation images for the on-device output check
    assert (built.dense, built.pruned) == (built.dir / "dense.tflite", built.dir / "pruned.tflite")
    assert not built.cached
    assert load_manifest(built.dir) == built.manifest
    assert built.manifest["manifest_version"] == MANIFEST_VERSION and built.manifest["build_id"] == built.build_id
    verification = built.manifest["verification"]
    assert verification["inputs"]["path"] == "verify_inputs.npy" and verification["inputs"]["count"] > 0
    assert set(verification["outputs"]) == {"dense", "pruned"}
    assert verification["interpreter"] == "LiteRT on the host, builtin kernels without XNNPACK"


@pytest.mark.parametrize("role", ["dense", "pruned"])
def test_file_entries_match_the_files(built: BuildResult, role: str) -> None:
    entry = built.manifest["files"][role]
    data = (built.dir / entry["path"]).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["size_bytes"] == len(data)
    ops = [op["op_name"] for op in _interpreter(built.dir / entry["path"])._get_ops_details()]
    assert entry["ops"] == ops
    assert entry["op_counts"] == {name: ops.count(name) for name in set(ops)}


def test_densify_feeds_every_1x1_conv_of_the_pruned_file_only(built: BuildResult) -> None:
    dense, pruned = built.manifest["files"]["dense"], built.manifest["files"]["pruned"]
    assert "DENSIFY" not in dense["ops"] and dense["densify"] == {"count": 0, "feeds": []}
    assert pruned["densify"]["count"] == pruned["ops"].count("DENSIFY") == 2
    interpreter = _interpreter(built.pruned)
    details = interpreter._get_ops_details()
    for op in details:
        if op["op_name"] == "DENSIFY":
            readers = [d for d in details if op["outputs"][0] in list(d["inputs"])]
            assert [r["op_name"] for r in readers] == ["CONV_2D"]
            assert interpreter.get_tensor_details()[op["outputs"][0]]["shape"][1:3].tolist() == [1, 1]
    assert [f["consumers"] for f in pruned["densify"]["feeds"]] == [["CONV_2D#4"], ["CONV_2D#8"]]
    assert all(c["densified"] for c in pruned["conv1x1"]) and not any(c["densified"] for c in dense["conv1x1"])


def test_each_1x1_conv_of_the_pruned_file_is_at_least_74_percent_zeros(built: BuildResult) -> None:
    interpreter = _interpreter(built.pruned, preserve=True)
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], np.zeros(inp["shape"], np.float32))
    interpreter.invoke()
    measured = [
        float((interpreter.get_tensor(op["outputs"][0]) == 0).mean())
        for op in interpreter._get_ops_details()
        if op["op_name"] == "DENSIFY"
    ]
    layers = built.manifest["sparsity"]["layers"]
    assert [row["layer"] for row in layers] == ["pw1", "pw2"]
    assert len(measured) == 2 and min(measured) >= 0.74
    assert [row["tflite_sparsity"] for row in layers] == pytest.approx(measured)
    assert all(row["sparsity"] >= 0.74 and row["zeros"] == round(row["sparsity"] * row["size"]) for row in layers)
    assert built.manifest["sparsity"]["target"] == 0.75 and built.manifest["sparsity"]["min"] >= 0.74
    dense = _interpreter(built.dense)
    for op in dense._get_ops_details():
        if op["op_name"] == "CONV_2D" and dense.get_tensor_details()[op["inputs"][1]]["shape"][1] == 1:
            assert (dense.get_tensor(op["inputs"][1]) == 0).mean() < 0.5  # the dense model was not pruned with it


def test_tflite_accuracies_are_those_of_the_files(built: BuildResult) -> None:
    data = load_dataset(parse_dataset(SMALL["dataset"]), seed=0)
    accuracy = built.manifest["accuracy"]
    assert accuracy["samples"] == len(data.y_test) and accuracy["meaningful"] is False
    for role, path in (("dense", built.dense), ("pruned", built.pruned)):
        interpreter = _interpreter(path)
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        correct = 0
        for image, label in zip(normalised(data.x_test), data.y_test):
            interpreter.set_tensor(inp["index"], image[None])
            interpreter.invoke()
            correct += int(interpreter.get_tensor(out["index"]).argmax() == label)
        assert accuracy[f"tflite_{role}"] == pytest.approx(correct / len(data.y_test))
        assert 0.0 <= accuracy[f"keras_{role}"] <= 1.0


def test_manifest_records_how_the_models_were_made(built: BuildResult, small_spec: BuildSpec) -> None:
    m = built.manifest
    hp = m["hyperparameters"]
    assert {k: hp[k] for k in ("epochs", "prune_epochs", "fine_tune_epochs", "batch_size", "seed")} == {
        "epochs": 1,
        "prune_epochs": 1,
        "fine_tune_epochs": 2,
        "batch_size": 64,
        "seed": 0,
    }
    assert (hp["initial_sparsity"], hp["final_sparsity"]) == (0.25, 0.75)
    pruning = m["pruning"]
    assert pruning["steps_per_epoch"] == 9 and pruning["end_step"] == 9  # 540 images / 64, one epoch
    assert pruning["end_step"] % pruning["frequency"] == 0 and pruning["frequency"] < 100
    assert m["recipe"]["name"] == "xnnpack-cnn" and m["recipe"]["fixes"] == []
    assert m["dataset"]["accuracy_meaningful"] is False and m["dataset"]["samples"] == {"train": 540, "val": 60, "test": 120}
    assert m["spec"] == small_spec.to_dict()
    assert m["versions"]["tensorflow"] == importlib.metadata.version("tensorflow")
    assert m["versions"]["tensorflow-model-optimization"] == "0.8.1"
    assert m["inputs"]["versions"] == m["versions"]
    assert set(m["timings_s"]) == {"dataset", "check", "train", "prune", "convert", "evaluate", "total"}
    assert len(m["history"]["dense"]["loss"]) == 1 and len(m["history"]["prune"]["val_accuracy"]) == 2
    assert any("synthetic" in w for w in m["warnings"])


def test_a_user_model_needing_the_keepdims_fix(model_files: dict[str, Path], tmp_path: Path) -> None:
    spec = BuildSpec(**{**SMALL, "dataset": "synthetic:200", "fine_tune_epochs": 1}, model_path=model_files["keepdims_false"], fix=True)
    result = build(spec, tmp_path)
    recipe = result.manifest["recipe"]
    assert recipe["fixes"] == ["keepdims"] and recipe["name"] is None
    assert recipe["model_sha256"] == hashlib.sha256(model_files["keepdims_false"].read_bytes()).hexdigest()
    assert result.manifest["files"]["pruned"]["densify"]["count"] == 2
    assert result.manifest["sparsity"]["min"] >= 0.74
