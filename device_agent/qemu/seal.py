"""A part of the userland folder is complete when it holds a ``.lab-complete`` file listing its files.

``seal(folder, info)`` writes it once the part is made (last, after a rename from ``.partial``):
every regular file with its size and sha256, every link with its target, and ``info`` (what the
part was made from). ``__pycache__`` folders are left out: Python rewrites them as it likes. ``check(folder)`` says what is wrong with a part, or None: a missing or
unreadable list is a half-made part; a file missing, of another size or a link changed is a
damaged one; with ``full`` each file's sha256 is compared too (a file changed in place).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["COMPLETE", "seal", "check", "sealed_info", "file_sha256"]

COMPLETE = ".lab-complete"
_VERSION = 1


def file_sha256(path: str | Path) -> str:
    """A file's sha256, read in 1 MiB chunks (the package's one copy: debian.py checks downloads with it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def seal(folder: Path, info: dict[str, Any]) -> None:
    """Write ``folder/.lab-complete``: ``info`` and each file's size and sha256 (links: their target)."""
    files: dict[str, list[Any]] = {}
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = os.path.join(top, name)
            relative = os.path.relpath(path, folder)
            if relative == COMPLETE:
                continue
            if os.path.islink(path):
                files[relative] = ["link", os.readlink(path)]
            elif os.path.isfile(path):
                files[relative] = [os.path.getsize(path), file_sha256(path)]
    document = {"version": _VERSION, "info": info, "files": files}
    partial = folder / f"{COMPLETE}.partial"
    partial.write_text(json.dumps(document, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, folder / COMPLETE)


def _load(folder: Path) -> dict[str, Any] | str:
    try:
        document = json.loads((folder / COMPLETE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{folder.name} is half-made (no {COMPLETE})" if folder.exists() else f"{folder.name} is missing"
    except (OSError, ValueError) as exc:
        return f"{folder / COMPLETE} is unreadable ({exc})"
    if not isinstance(document, dict) or document.get("version") != _VERSION or not isinstance(document.get("files"), dict):
        return f"{folder / COMPLETE} is of another kind"
    return document


def sealed_info(folder: Path) -> dict[str, Any] | None:
    """The ``info`` a part was sealed with, or None when it is not sealed."""
    document = _load(folder)
    return document.get("info") if isinstance(document, dict) else None


def check(folder: Path, *, full: bool = False) -> str | None:
    """None when every file the seal lists is there as sealed; else the first thing that is not."""
    document = _load(folder)
    if isinstance(document, str):
        return document
    for relative, entry in document["files"].items():
        path = os.path.join(folder, relative)
        if entry[0] == "link":
            try:
                if os.readlink(path) != entry[1]:
                    return f"{folder.name}/{relative} points elsewhere than when it was made"
            except OSError:
                return f"{folder.name}/{relative} is missing"
            continue
        try:
            size = os.stat(path, follow_symlinks=False).st_size
        except OSError:
            return f"{folder.name}/{relative} is missing"
        if size != entry[0]:
            return f"{folder.name}/{relative} has {size} bytes, not {entry[0]} (damaged or half-written)"
        if full and file_sha256(path) != entry[1]:
            return f"{folder.name}/{relative} does not match its sha256 (damaged)"
    return None
