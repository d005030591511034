"""The .tflite files a benchmark runs: checked before anything reaches a device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from host.errors import UsageError
from host.hashing import file_sha256
from host.records import ModelFile

__all__ = ["model_file", "build_entry", "TFLITE_IDENTIFIER"]

TFLITE_IDENTIFIER = b"TFL3"  # the flatbuffer file identifier, bytes 4..8 of every .tflite


def model_file(
    path: Path, role: str | None = None, build_id: str | None = None, manifest: dict[str, Any] | None = None
) -> ModelFile:
    """A ModelFile for ``path`` with its sha256.

    Raises:
        UsageError: the file is missing, unreadable, or not a TFLite flatbuffer (one line naming it).
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"model file {path} does not exist")
    if not path.is_file():
        raise UsageError(f"model file {path} is not a file")
    try:
        with path.open("rb") as f:
            head = f.read(8)
        sha256 = file_sha256(path)
    except OSError as exc:
        raise UsageError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
        raise UsageError(f"{path} is not a TFLite model (no 'TFL3' identifier at bytes 4..8): pass a .tflite file")
    return ModelFile(
        sha256=sha256,
        name=path.name,
        size_bytes=path.stat().st_size,
        path=str(path.resolve()),
        role=role,
        build_id=build_id,
        manifest=manifest,
    )


def build_entry(path: Path) -> tuple[str, Path, dict[str, Any]] | None:
    """(variant name, build folder, manifest) when ``path`` lies in a lab build folder whose
    ``manifest.json`` lists a file of its name; None otherwise (or when the manifest is unreadable)."""
    folder = Path(path).resolve().parent
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    for name, entry in (files or {}).items():
        if isinstance(entry, dict) and entry.get("path") == Path(path).name:
            return str(name), folder, manifest
    return None

