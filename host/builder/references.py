"""The build's reference outputs for the on-device output check (``host.bench.verify``).

Right after conversion, each variant runs on the first evaluation images on the host
(``host.reference``: LiteRT without XNNPACK) and its outputs are kept beside it. A device's
outputs are later compared with these, so a file changed after its build — or a device that
computes something else — shows as wrong output, not as agreement with itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from host.builder.train import normalised
from host.errors import BuildError, LabError
from host.hashing import file_sha256
from host.reference import REFERENCE_INTERPRETER, reference_outputs

__all__ = ["KEPT_INPUTS", "INPUTS_FILE", "write_references", "read_references"]

KEPT_INPUTS = 64
"""Evaluation images a build keeps for the check (``lab run --verify K`` uses the first K)."""
INPUTS_FILE = "verify_inputs.npy"


def _outputs_file(name: str) -> str:
    return f"{name}.reference.npz"


def write_references(out: Path, paths: Mapping[str, Path], images: np.ndarray) -> dict[str, Any]:
    """Writes the inputs and each variant's reference outputs into ``out``; returns the manifest's
    ``verification`` entry (files with their sha256, so a changed one is not trusted).

    Raises:
        BuildError: LiteRT cannot run a variant on the host.
    """
    inputs = normalised(images[:KEPT_INPUTS]).astype(np.float32)
    np.save(out / INPUTS_FILE, inputs)
    outputs: dict[str, dict[str, str]] = {}
    for name, path in paths.items():
        try:
            values = reference_outputs(path, [inputs])
        except LabError as exc:
            raise BuildError(f"reference outputs of {path.name}: {exc}") from exc
        target = out / _outputs_file(name)
        with target.open("wb") as f:
            np.savez(f, *values)
        outputs[name] = {"path": target.name, "sha256": file_sha256(target)}
    return {
        "interpreter": REFERENCE_INTERPRETER,
        "inputs": {"path": INPUTS_FILE, "sha256": file_sha256(out / INPUTS_FILE), "count": len(inputs)},
        "outputs": outputs,
    }


def read_references(folder: Path, manifest: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
    """Each variant's (inputs, reference outputs) kept by its build; variants whose files are
    missing or changed since are left out (the check then makes the host's reference on the spot)."""
    entry = manifest.get("verification") or {}
    inputs_entry = entry.get("inputs") or {}
    inputs_path = folder / str(inputs_entry.get("path", INPUTS_FILE))
    if not inputs_path.is_file() or file_sha256(inputs_path) != inputs_entry.get("sha256"):
        return {}
    inputs = np.load(inputs_path, allow_pickle=False)
    found: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
    for name, item in (entry.get("outputs") or {}).items():
        path = folder / str(item.get("path"))
        if not path.is_file() or file_sha256(path) != item.get("sha256"):
            continue
        with np.load(path, allow_pickle=False) as data:
            found[name] = (inputs, [data[f"arr_{i}"] for i in range(len(data.files))])
    return found
