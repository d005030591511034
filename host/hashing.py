"""Content hashes of files: models, binaries and datasets are identified by their sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256", "update_with_file"]

_CHUNK = 1 << 20


def update_with_file(digest: hashlib._Hash, path: Path) -> None:
    """Feeds ``path``'s bytes to ``digest`` in 1 MiB chunks (files can be larger than memory)."""
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's content. Raises OSError when it cannot be read."""
    digest = hashlib.sha256()
    update_with_file(digest, path)
    return digest.hexdigest()
