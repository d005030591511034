"""``manifest.json``: everything needed to tie a latency back to how its model was made.

Format, ``manifest_version`` 1 (JSON object)::

    manifest_version   1
    build_id           the artifacts folder's name: hash of everything under "inputs"
    created_at         ISO 8601, UTC
    lab_version        host.__version__ of the lab that built it
    inputs             what the build id hashes: spec (hyper-parameters resolved), dataset identity,
                       model identity, lab version, package versions
    spec               the BuildSpec as requested (None = default)
    recipe             {name, model_path, model_sha256, fixes: ["keepdims"] when --fix changed it,
                        from_logits}
    dataset            {name, kind, source, identity, accuracy_meaningful, num_classes, image_shape,
                        dtype, samples: {train, val, test}}
    hyperparameters    epochs, prune_epochs, fine_tune_epochs, batch_size, initial_sparsity,
                       final_sparsity, subset, seed, optimizer, loss
    pruning            {schedule, policy, initial_sparsity, final_sparsity, begin_step, end_step,
                        frequency, power, steps_per_epoch}
    files              {VARIANT: FILE} for every variant built (dense and pruned always; see
                       host.builder.variants); FILE = {path (relative to the folder), sha256,
                        size_bytes, ops (execution order), op_counts, densify: {count, feeds:
                        [{tensor, consumers}]}, conv1x1: [{filter, shape, zeros, size, sparsity,
                        densified, dtype}], variant: {base, precision, sparse}}
    failed_variants    {VARIANT: reason} for a variant the converter could not make
    sparsity           {target, xnnpack_min, min, layers: [{layer, kernel_shape, zeros, size,
                        sparsity, tflite_sparsity}]} for every 1x1 Conv2D of the pruned model
    accuracy           {split: "test", samples, meaningful, keras_dense, keras_pruned,
                        tflite_dense, tflite_pruned, tflite: {VARIANT: top-1 accuracy}}
    history            Keras' per-epoch logs: {dense: {...}, prune: {...}}
    versions           python, tensorflow, tf-keras, tensorflow-model-optimization, ai-edge-litert,
                       numpy (None when not installed)
    timings_s          seconds per stage (dataset, check, train, prune, convert, evaluate) and total
    warnings           notes for the reader (e.g. a target below XNNPACK's 2/3)

``load_manifest`` reads any version this code knows and upgrades it to the current one.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from pathlib import Path
from typing import Any

from host.builder.tflite_inspect import TfliteInfo
from host.errors import BuildError
from host.hashing import file_sha256

__all__ = [
    "MANIFEST_VERSION",
    "MANIFEST_NAME",
    "PACKAGES",
    "package_versions",
    "file_entry",
    "write_manifest",
    "load_manifest",
]

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
PACKAGES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy")
"""Distributions whose versions shape a build (hashed into its id)."""


def package_versions() -> dict[str, str | None]:
    """Installed versions of ``PACKAGES`` and Python, read from metadata (nothing is imported)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_entry(path: Path, info: TfliteInfo) -> dict[str, Any]:
    """A ``files.*`` entry for the .tflite at ``path``, inspected as ``info``."""
    return {
        "path": path.name,
        "sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
        "ops": list(info.ops),
        "op_counts": info.op_counts,
        "densify": {
            "count": len(info.densify),
            "feeds": [{"tensor": d.tensor, "consumers": list(d.consumers)} for d in info.densify],
        },
        "conv1x1": [
            {
                "filter": c.filter,
                "shape": list(c.shape),
                "zeros": c.zeros,
                "size": c.size,
                "sparsity": round(c.sparsity, 6),
                "densified": c.densified,
                "dtype": c.dtype,
            }
            for c in info.conv1x1
        ],
    }


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Writes ``manifest.json`` in ``folder`` (flushed and synced: it is what makes a build complete)."""
    path = folder / MANIFEST_NAME
    with path.open("w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def _upgrade(manifest: dict[str, Any]) -> dict[str, Any]:
    version = manifest.get("manifest_version")
    if version == MANIFEST_VERSION:
        return manifest
    if isinstance(version, int) and version > MANIFEST_VERSION:
        raise BuildError(
            f"manifest version {version} is newer than this lab understands ({MANIFEST_VERSION}): upgrade lab"
        )
    raise BuildError(f"unknown manifest version {version!r}")


def load_manifest(folder: Path) -> dict[str, Any]:
    """Reads ``folder/manifest.json``, upgraded to ``MANIFEST_VERSION``.

    Raises:
        BuildError: missing, not JSON, or of an unknown version.
    """
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BuildError(f"{path} does not hold a JSON object")
    return _upgrade(manifest)
