"""Every variant of the optimization matrix, built for real on small synthetic data and checked
against what its file holds: DENSIFY where it must be, the filters' storage type, sparsity kept,
an accuracy per variant; and a variant that cannot be made recorded with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.builder import BuildResult, BuildSpec, build
from host.builder.cache import build_inputs
from host.builder.tflite_inspect import inspect_tflite
from host.builder.variants import DEFAULT_VARIANTS, VARIANTS, parse_variants
from host.errors import UsageError

from .conftest import SMALL

_STORED = {"fp32": {"float32"}, "fp16": {"float16"}, "int8": {"int8"}}


@pytest.fixture(scope="module")
def every_variant(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return build(BuildSpec(**SMALL, variants=("all",)), tmp_path_factory.mktemp("variants_home"))


def test_names_parse_in_the_matrix_order_with_dense_and_pruned_always() -> None:
    assert parse_variants("all") == tuple(VARIANTS)
    assert parse_variants("pruned-int8, dense-fp16") == ("dense", "pruned", "dense-fp16", "pruned-int8")
    assert parse_variants("") == DEFAULT_VARIANTS
    with pytest.raises(UsageError, match=r"unknown variant\(s\) dense-fp8: choose from dense, pruned, dense-fp16"):
        parse_variants("dense-fp8")
    with pytest.raises(UsageError, match="unknown variant"):
        BuildSpec(variants=("int4",)).validate()


def test_the_guides_two_models_keep_their_build_id() -> None:
    spec = BuildSpec(**SMALL)
    assert "variants" not in build_inputs(spec, spec.validate())
    more = BuildSpec(**SMALL, variants=("dense-fp16",))
    assert build_inputs(more, more.validate())["variants"] == ["dense", "pruned", "dense-fp16"]


@pytest.mark.tf
def test_every_variant_is_built_and_holds_what_its_name_says(every_variant: BuildResult) -> None:
    built = every_variant
    assert list(built.files) == list(VARIANTS) and built.failed_variants == {}
    assert sorted(p.name for p in built.dir.glob("*.tflite")) == sorted(f"{name}.tflite" for name in VARIANTS)
    for name, variant in VARIANTS.items():
        entry = built.manifest["files"][name]
        assert entry["variant"] == {"base": variant.base, "precision": variant.precision, "sparse": variant.sparse}
        info = inspect_tflite(built.files[name])
        assert info.conv1x1, name
        # dynamic range leaves filters under 1,024 values (all of this small model's) in float32
        assert {c.dtype for c in info.conv1x1} == _STORED.get(variant.precision, {"float32"}), name
        assert all(c.densified for c in info.conv1x1) == variant.sparse, name
        assert bool(info.densify) == variant.sparse, name
        if variant.sparse:  # pruning's zeros survive every precision
            assert min(c.sparsity for c in info.conv1x1) >= 0.7, name
        if name in ("dense-fp16", "dense-int8", "pruned-fp16"):  # smaller than its float32 model; not
            # pruned-int8 here: on filters this small, its sparse indices outweigh what int8 saves
            assert entry["size_bytes"] < built.manifest["files"][variant.base]["size_bytes"], name
        accuracy = built.manifest["accuracy"]["tflite"][name]
        assert 0.0 <= accuracy <= 1.0
    assert built.manifest["accuracy"]["tflite_dense"] == built.manifest["accuracy"]["tflite"]["dense"]
    ops = built.manifest["files"]["dense-int8"]["op_counts"]
    assert ops.get("QUANTIZE") == 1 and ops.get("DEQUANTIZE") == 1  # float in, float out


@pytest.mark.tf
def test_a_dataset_too_small_to_calibrate_int8_fails_those_variants_only(tmp_path: Path) -> None:
    spec = BuildSpec(**{**SMALL, "subset": 60}, variants=("dense-int8", "pruned-int8", "dense-fp16"))
    built = build(spec, tmp_path)
    assert list(built.files) == ["dense", "pruned", "dense-fp16"]
    assert set(built.failed_variants) == {"dense-int8", "pruned-int8"}
    reason = built.failed_variants["dense-int8"]
    assert reason.startswith("int8 calibration needs at least 100 training images, the dataset has 60")
    assert not (built.dir / "dense-int8.tflite").exists()
