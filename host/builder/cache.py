"""The build cache: build ids, finding a finished build, and writing a new one atomically.

A build is written into ``.tmp-…`` next to its final folder and renamed into place only when
every file and the manifest are on disk. Lookups only ever open ``<artifacts>/<build id>`` and
check its files against the manifest's sha256, so an interrupted build (exception, Ctrl-C,
SIGKILL) leaves nothing a later build reuses; its leftover ``.tmp-…`` folder is removed by the
next build on the same host once its process is gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from host import __version__
from host.builder.datasets import identity, parse_dataset
from host.builder.manifest import load_manifest, package_versions
from host.hashing import file_sha256
from host.builder.recipes import model_identity
from host.builder.spec import BuildSpec, Hyperparameters
from host.builder.variants import DEFAULT_VARIANTS, parse_variants
from host.errors import BuildError

__all__ = ["build_inputs", "build_id_of", "find_complete", "staging", "publish", "remove_stale"]

_OWNER = ".owner.json"
_TEMP_PREFIXES = (".tmp-", ".old-")
_ORPHAN_AGE_S = 3600


def build_inputs(spec: BuildSpec, hp: Hyperparameters) -> dict[str, Any]:
    """Everything that determines a build's result, as JSON-ready data (no TensorFlow import).

    Raises:
        DatasetError: the dataset name is unknown or its file/folder is missing.
        ModelFileError: the model file is missing or not a model.
    """
    ref = parse_dataset(spec.dataset)
    custom = spec.model_path is not None
    variants = parse_variants(spec.variants)
    return {
        # only when asked for: the guide's two models keep the build ids they always had
        **({"variants": list(variants)} if variants != DEFAULT_VARIANTS else {}),
        "recipe": None if custom else spec.recipe,
        "model": model_identity(spec.model_path) if spec.model_path is not None else None,
        "fix": spec.fix if custom else False,
        "quick": spec.quick,
        "hyperparameters": dataclasses.asdict(hp),
        "dataset": identity(ref),
        "lab_version": __version__,
        "versions": package_versions(),
    }


def build_id_of(inputs: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of ``inputs`` in canonical JSON."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def find_complete(folder: Path) -> dict[str, Any] | None:
    """The manifest of the finished build in ``folder``, or None when absent, partial or altered."""
    if not folder.is_dir():
        return None
    try:
        manifest = load_manifest(folder)
        files = manifest["files"]
        if "dense" not in files or "pruned" not in files:
            return None
        for entry in files.values():
            path = folder / entry["path"]
            if not path.is_file() or file_sha256(path) != entry["sha256"]:
                return None
    except (BuildError, KeyError, TypeError):
        return None
    return manifest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(root: Path) -> list[Path]:
    """Removes temp folders of builds on this host whose process has ended; returns them.

    The owner is matched by host name as well as pid, so a build running in a container (another
    pid namespace) is never mistaken for a dead one.
    """
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    host = socket.gethostname()
    for entry in root.iterdir():
        if not entry.is_dir() or not entry.name.startswith(_TEMP_PREFIXES):
            continue
        try:
            owner = json.loads((entry / _OWNER).read_text())
            stale = owner["host"] == host and not _alive(int(owner["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            # No owner: being created this instant, or killed while publishing; only the old go.
            stale = time.time() - entry.stat().st_mtime > _ORPHAN_AGE_S
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _make_temp(root: Path, prefix: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    (folder / _OWNER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    return folder


@contextlib.contextmanager
def staging(root: Path, build_id: str) -> Iterator[Path]:
    """A fresh temp folder in ``root`` for ``build_id``; removed if the block raises (even Ctrl-C)."""
    folder = _make_temp(root, f".tmp-{build_id}-")
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def publish(staged: Path, final: Path) -> None:
    """Moves a finished ``staged`` folder to ``final`` with renames, replacing an older ``final``.

    If another process published the same build id first, its (equal) result is kept.
    """
    (staged / _OWNER).unlink(missing_ok=True)
    if final.exists():
        old = _make_temp(final.parent, f".old-{final.name}-")
        os.replace(final, old / final.name)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.rename(staged, final)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or find_complete(final) is None:
            raise
        shutil.rmtree(staged, ignore_errors=True)
