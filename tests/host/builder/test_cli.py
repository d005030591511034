"""``lab build`` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from host.builder import BuildResult
from host.cli import app

from .conftest import SMALL

SMALL_ARGS = ["--dataset", SMALL["dataset"], "--epochs", "1", "--prune-epochs", "1", "--fine-tune-epochs", "2"]
SMALL_ARGS += ["--batch-size", "64"]


def _lab(home: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--home", str(home), "build", *args])


@pytest.mark.tf
def test_table_and_cache(built: BuildResult, build_home: Path) -> None:
    result = _lab(build_home, *SMALL_ARGS)
    assert result.exit_code == 0, result.output
    for text in ("dense.tflite", "pruned.tflite", f"build {built.build_id} (from cache)", "synthetic: accuracy means nothing"):
        assert text in result.stdout
    assert "75.0% 75.0%" in result.stdout  # the pruned file's two 1x1 convs
    assert "cached:" in result.stderr and "--force" in result.stderr


@pytest.mark.tf
def test_json_prints_the_manifest(built: BuildResult, build_home: Path) -> None:
    result = _lab(build_home, *SMALL_ARGS, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == built.manifest


@pytest.mark.tf
def test_check_only_explains_keepdims(model_files: dict[str, Path], tmp_path: Path) -> None:
    result = _lab(tmp_path, "--check-only", "--model", str(model_files["keepdims_false"]))
    assert result.exit_code == 2
    assert "keepdims" in result.stdout and "keepdims=False" in result.stdout
    assert "run with --fix" in result.stderr
    fixed = _lab(tmp_path, "--check-only", "--fix", "--model", str(model_files["keepdims_false"]))
    assert fixed.exit_code == 0, fixed.output
    assert "can use XNNPACK's sparse inference after --fix (keepdims)" in fixed.stdout
    document = json.loads(_lab(tmp_path, "--check-only", "--json", "--model", str(model_files["keepdims_false"])).stdout)
    assert document["ok"] is False and [p["rule"] for p in document["problems"]] == ["keepdims"]
    assert document["problems"][0]["fixable"] is True
    recipe = _lab(tmp_path, "--check-only")
    assert recipe.exit_code == 0 and "recipe xnnpack-cnn can use XNNPACK's sparse inference" in recipe.stdout
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.tf
def test_a_rejected_model_is_not_built(model_files: dict[str, Path], tmp_path: Path) -> None:
    result = _lab(tmp_path, *SMALL_ARGS, "--model", str(model_files["keepdims_false"]))
    assert result.exit_code == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: GlobalAveragePooling2D") and "--fix" in last
    assert list((tmp_path / "artifacts").iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sparsity", "1.5"], "error: --sparsity must be between 0 and 1 (exclusive), got 1.5"),
        (["--sparsity", "0"], "error: --sparsity must be between 0 and 1"),
        (["--dataset", "imagenet"], "error: unknown dataset 'imagenet': use cifar10, synthetic"),
        (["--model", "/nonexistent/m.keras"], "error: model not found: /nonexistent/m.keras"),
        (["--prune-epochs", "16"], "error: --prune-epochs (16) exceeds --fine-tune-epochs (15)"),
        (["--dataset", "npz:/nonexistent.npz"], "error: npz dataset not found: /nonexistent.npz"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = _lab(tmp_path, *args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert result.stdout == ""


@pytest.mark.tf
@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("corrupt", "error: cannot load model"),
        ("keras3", "error: keras3.keras is a Keras 3."),
        ("not_a_model", "is not a Keras model file: pass a tf_keras model"),
    ],
)
def test_bad_model_files(model_files: dict[str, Path], tmp_path: Path, key: str, message: str) -> None:
    result = _lab(tmp_path, *SMALL_ARGS, "--model", str(model_files[key]))
    assert result.exit_code == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last
    if key == "keras3":
        assert "import tf_keras as keras" in last
