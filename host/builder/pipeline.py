"""The build: spec → dense.tflite, pruned.tflite (and the other variants asked for) and
manifest.json, cached under LAB_HOME.

``run_build`` is a pure function from a spec to a folder (what a container runs); ``build`` adds
the cache around it: the build id, the lookup, the atomic publish.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from host import __version__
from host.builder import _tf, cache
from host.builder.convert import evaluate_tflite, to_tflite
from host.builder.datasets import Dataset, load_dataset, parse_dataset
from host.builder.manifest import MANIFEST_VERSION, file_entry, package_versions, write_manifest
from host.builder.progress import BuildProgress, NullProgress, Stage
from host.builder.prune import (
    XNNPACK_MIN_SPARSITY,
    LayerSparsity,
    measure_sparsity,
    prune_and_fine_tune,
    require_sparsity,
)
from host.builder.recipes import build_recipe, load_model_file
from host.builder.references import write_references
from host.builder.spec import BuildSpec
from host.builder.tflite_inspect import ConvSparsity, TfliteInfo, inspect_tflite, verify_densify
from host.builder.train import compile_model, evaluate_keras, fit, make_inputs, uses_logits
from host.builder.variants import DEFAULT_VARIANTS, VARIANTS, Variant, parse_variants
from host.builder.xnnpack_check import CheckReport, find_problems, prepare_model
from host.builder.xnnpack_check import check_model_file as _check_model_file
from host.config import artifacts_dir
from host.errors import BuildError, DatasetError

__all__ = ["BuildResult", "build", "run_build", "check_spec", "result_of"]


@dataclass(frozen=True)
class BuildResult:
    """A finished build: its folder, its models (``files``: variant name -> path, in the matrix's
    order; ``dense`` and ``pruned`` always), the manifest, and whether it came from the cache."""

    build_id: str
    dir: Path
    files: dict[str, Path]
    manifest: dict[str, Any]
    cached: bool

    @property
    def dense(self) -> Path:
        return self.files["dense"]

    @property
    def pruned(self) -> Path:
        return self.files["pruned"]

    @property
    def failed_variants(self) -> dict[str, str]:
        """Variants the converter could not make, with the reason (the build went on without them)."""
        return dict(self.manifest.get("failed_variants") or {})


def build(spec: BuildSpec, home: Path, *, force: bool = False, progress: BuildProgress | None = None) -> BuildResult:
    """Builds ``spec`` into ``LAB_HOME/artifacts/<build id>``, or returns that folder when it is complete.

    The build id hashes the resolved spec, the dataset's and model's content identity, the lab
    version and the package versions; nothing is trained when a complete build with that id
    exists, unless ``force``.

    Raises:
        UsageError: a bad option value.
        DatasetError: the dataset is unknown, missing, malformed or (cifar10) not downloadable.
        ModelFileError: the model file is missing or cannot be loaded.
        ModelCheckError: the model cannot use XNNPACK's sparse path (``.problems`` has each rule).
        MissingExtraError: TensorFlow, tf-keras or tfmot is not installed.
        BuildError: pruning fell short of the target, or conversion / verification failed.
    """
    progress = progress or NullProgress()
    hp = spec.validate()
    inputs = cache.build_inputs(spec, hp)
    build_id = cache.build_id_of(inputs)
    root = artifacts_dir(home)
    final = root / build_id
    if not force:
        manifest = cache.find_complete(final)
        if manifest is not None:
            return result_of(build_id, final, manifest, cached=True)
    cache.remove_stale(root)
    with cache.staging(root, build_id) as staged:
        manifest = run_build(spec, staged, build_id=build_id, inputs=inputs, progress=progress)
        cache.publish(staged, final)
    return result_of(build_id, final, manifest, cached=False)


def result_of(build_id: str, folder: Path, manifest: dict[str, Any], cached: bool) -> BuildResult:
    """The BuildResult of a finished build folder and its manifest."""
    files = {name: folder / entry["path"] for name, entry in manifest["files"].items()}
    return BuildResult(build_id, folder, files, manifest, cached)


class _Stages:
    """Times each stage and reports its start and end."""

    def __init__(self, progress: BuildProgress) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, stage: Stage, epochs: int | None = None) -> Iterator[None]:
        self.progress.stage_started(stage, epochs)
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.timings[stage] = round(self.timings.get(stage, 0.0) + seconds, 3)
        self.progress.stage_finished(stage, seconds)


def _image_size(model: Any | None) -> tuple[int, int]:
    """The (height, width) a model takes; the recipe's 32x32 when it has none or accepts any."""
    if model is not None:
        height, width = model.input_shape[1:3]
        if height is not None and width is not None:
            return int(height), int(width)
    return 32, 32


def _check_compatible(model: Any, data: Dataset) -> None:
    expected = tuple(model.input_shape[1:])
    if len(expected) != 3 or any(e is not None and e != d for e, d in zip(expected, data.image_shape)):
        raise DatasetError(
            f"dataset {data.ref} has images of shape {data.image_shape} but the model expects {expected}"
        )
    outputs = model.output_shape[-1]
    if outputs is not None and outputs < data.num_classes:
        raise DatasetError(
            f"dataset {data.ref} has {data.num_classes} classes but the model has {outputs} outputs"
        )


def run_build(
    spec: BuildSpec,
    out: Path,
    *,
    build_id: str,
    inputs: dict[str, Any] | None = None,
    progress: BuildProgress | None = None,
) -> dict[str, Any]:
    """Builds ``spec`` into the existing folder ``out``; returns the manifest it wrote there last.

    Touches nothing outside ``out`` (no cache, no LAB_HOME): the unit a container runs.
    """
    progress = progress or NullProgress()
    hp = spec.validate()
    inputs = inputs if inputs is not None else cache.build_inputs(spec, hp)
    started = time.perf_counter()
    _tf.tfmot()  # fails early with MissingExtraError; sets TF_USE_LEGACY_KERAS before tf_keras loads
    keras = _tf.tf_keras()
    keras.backend.clear_session()
    keras.utils.set_random_seed(hp.seed)
    stages = _Stages(progress)
    ref = parse_dataset(spec.dataset)

    fixes: list[str] = []
    user_model = None
    if spec.model_path is not None:
        with stages.stage("check"):
            user_model, fixes = prepare_model(load_model_file(spec.model_path), fix=spec.fix)
        if fixes:
            progress.note(f"--fix: rebuilt {spec.model_path.name} with GlobalAveragePooling2D(keepdims=True)")

    with stages.stage("dataset"):
        data = load_dataset(ref, seed=hp.seed, image_size=_image_size(user_model), subset=hp.subset)

    if user_model is None:
        with stages.stage("check"):
            model, _ = prepare_model(build_recipe(spec.recipe, data.num_classes, data.image_shape), fix=False)
    else:
        model = user_model
    _check_compatible(model, data)

    tf_inputs = make_inputs(data, hp.batch_size, hp.seed)
    from_logits = uses_logits(model)
    compile_model(model, from_logits)
    with stages.stage("train", hp.epochs):
        dense_history = fit(model, tf_inputs, hp.epochs, "train", progress)

    with stages.stage("prune", hp.fine_tune_epochs):
        pruned, schedule, prune_history = prune_and_fine_tune(model, tf_inputs, hp, from_logits, progress)
        layers = measure_sparsity(pruned)
        require_sparsity(layers, hp.final_sparsity)

    with stages.stage("convert"):
        made, failed = _convert_variants(spec, {"dense": model, "pruned": pruned}, data, out, progress)
    paths = {name: path for name, (path, _) in made.items()}
    pruned_info = made["pruned"][1]

    with stages.stage("evaluate"):
        tflite = {name: evaluate_tflite(path, data.x_test, data.y_test) for name, path in paths.items()}
        accuracy = {
            "split": "test",
            "samples": len(data.y_test),
            "meaningful": data.accuracy_meaningful,
            "keras_dense": evaluate_keras(model, tf_inputs),
            "keras_pruned": evaluate_keras(pruned, tf_inputs),
            "tflite_dense": tflite["dense"],
            "tflite_pruned": tflite["pruned"],
            "tflite": tflite,
        }
        verification = write_references(out, paths, data.x_test)

    warnings = []
    if hp.final_sparsity < XNNPACK_MIN_SPARSITY:
        warnings.append(
            f"target sparsity {hp.final_sparsity} is below XNNPACK's {XNNPACK_MIN_SPARSITY:.3f}: "
            "its sparse kernels will not run the 1x1 convolutions"
        )
    if not data.accuracy_meaningful:
        warnings.append(f"dataset {data.ref} is synthetic: its accuracies say nothing about a real task")
    for warning in warnings:
        progress.note(warning)

    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "build_id": build_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "lab_version": __version__,
        "inputs": inputs,
        "spec": spec.to_dict(),
        "recipe": {
            "name": spec.recipe if spec.model_path is None else None,
            "model_path": str(spec.model_path) if spec.model_path is not None else None,
            "model_sha256": (inputs.get("model") or {}).get("sha256"),
            "fixes": fixes,
            "from_logits": from_logits,
            "keras_model": model.name,
        },
        "dataset": {**data.describe(), "identity": inputs["dataset"]},
        "hyperparameters": {**dataclasses.asdict(hp), "optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
        "pruning": schedule.as_dict(),
        "files": {name: {**file_entry(path, info), "variant": _describe(VARIANTS[name])}
                  for name, (path, info) in made.items()},
        "failed_variants": failed,
        "sparsity": _sparsity_entry(layers, pruned_info, hp.final_sparsity),
        "accuracy": accuracy,
        "verification": verification,
        "history": {"dense": dense_history, "prune": prune_history},
        "versions": package_versions(),
        "timings_s": {**stages.timings, "total": round(time.perf_counter() - started, 3)},
        "warnings": warnings,
    }
    write_manifest(out, manifest)
    return manifest


def _convert_variants(
    spec: BuildSpec, models: dict[str, Any], data: Dataset, out: Path, progress: BuildProgress
) -> tuple[dict[str, tuple[Path, TfliteInfo]], dict[str, str]]:
    """Each variant of ``spec`` converted into ``out`` and verified: name -> (path, what it holds),
    and name -> reason for a variant that could not be made (dense and pruned must be)."""
    made: dict[str, tuple[Path, TfliteInfo]] = {}
    failed: dict[str, str] = {}
    for name in parse_variants(spec.variants):
        variant = VARIANTS[name]
        path = out / variant.file_name
        try:
            path.write_bytes(to_tflite(models[variant.base], sparse=variant.sparse, precision=variant.precision,
                                       calibration=data.x_train))
            info = inspect_tflite(path)
            note = _verify_variant(variant, info)
        except (BuildError, DatasetError) as exc:
            if name in DEFAULT_VARIANTS:
                raise
            failed[name] = str(exc)
            path.unlink(missing_ok=True)
            progress.note(f"variant {name} could not be made: {exc}")
            continue
        if note:
            progress.note(note)
        made[name] = (path, info)
    return made, failed


# The storage a variant's 1x1 filters may have. Dynamic-range quantization leaves tensors of fewer
# than 1,024 values in float32 (the converter's threshold), so small filters stay float there.
_FILTER_TYPES = {"fp32": {"float32"}, "fp16": {"float16"}, "int8": {"int8"}, "dynamic": {"int8", "float32"}}


def _verify_variant(variant: Variant, info: TfliteInfo) -> str | None:
    """Raises BuildError unless the file holds what its variant promises: DENSIFY-fed 1x1 filters
    for a pruned one (none for a dense one), stored in the variant's precision. Returns a note when
    the file is right but not what a reader would assume (a dynamic-range model left all float)."""
    if variant.sparse:
        verify_densify(info, variant.file_name)
    elif info.densify:
        raise BuildError(f"{variant.file_name} has DENSIFY ops: the dense model was converted with sparsity")
    allowed = _FILTER_TYPES[variant.precision]
    stored = {c.dtype for c in info.conv1x1}
    if stored - allowed:
        raise BuildError(f"{variant.file_name} stores 1x1 filters as {', '.join(sorted(stored - allowed))}, not "
                         f"{'/'.join(sorted(allowed))}: the converter did not apply {variant.precision}")
    if variant.precision == "dynamic" and stored == {"float32"}:
        return (f"{variant.file_name}: every 1x1 filter stayed float32 (dynamic-range quantization skips tensors "
                "of fewer than 1,024 values)")
    return None


def _describe(variant: Variant) -> dict[str, Any]:
    return {"base": variant.base, "precision": variant.precision, "sparse": variant.sparse}


def _match_tflite(layers: list[LayerSparsity], convs: list[ConvSparsity]) -> list[ConvSparsity | None]:
    """Each Keras 1x1 layer's CONV_2D in the .tflite: by the layer name in the filter's tensor name,
    else by position when the counts agree."""
    matched: list[ConvSparsity | None] = []
    for i, layer in enumerate(layers):
        by_name = [c for c in convs if f"/{layer.layer}/" in c.filter]
        if len(by_name) == 1:
            matched.append(by_name[0])
        elif len(convs) == len(layers):
            matched.append(convs[i])
        else:
            matched.append(None)
    return matched


def _sparsity_entry(layers: list[LayerSparsity], info: TfliteInfo, target: float) -> dict[str, Any]:
    rows = []
    for layer, conv in zip(layers, _match_tflite(layers, info.conv1x1)):
        rows.append(
            {
                "layer": layer.layer,
                "kernel_shape": list(layer.kernel_shape),
                "zeros": layer.zeros,
                "size": layer.size,
                "sparsity": round(layer.sparsity, 6),
                "tflite_sparsity": round(conv.sparsity, 6) if conv is not None else None,
            }
        )
    return {
        "target": target,
        "xnnpack_min": round(XNNPACK_MIN_SPARSITY, 6),
        "min": min((r["sparsity"] for r in rows), default=None),
        "layers": rows,
    }


def check_spec(spec: BuildSpec) -> CheckReport:
    """``lab build --check-only``: the XNNPACK check of ``spec``'s model, with no data and no training.

    Raises:
        ModelFileError: the model file is missing or cannot be loaded.
        ModelCheckError: it is a Keras 3 model.
        MissingExtraError: TensorFlow is not installed.
    """
    if spec.model_path is not None:
        return _check_model_file(spec.model_path, fix=spec.fix)
    spec.validate()
    return CheckReport(f"recipe {spec.recipe}", find_problems(build_recipe(spec.recipe, 10, (32, 32, 3))))
