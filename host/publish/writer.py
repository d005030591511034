"""Writing the site's files incrementally: a page whose bytes did not change is not rewritten.

The writer keeps ``.lab-publish.json`` in the site's folder: the sha256 of each file it wrote, the
runs' records (``model.RunEntry``), and what they were made with (lab version, templates, filters).
A file written last time and not produced this time (a run gone, another filter) is removed, so
no link of the new site points at a stale page.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host.errors import UsageError
from host.publish.model import RunEntry

__all__ = ["SiteWriter", "WriteCounts", "STATE_FILE"]

STATE_FILE = ".lab-publish.json"
_STATE_FORMAT = 1


@dataclass(frozen=True)
class WriteCounts:
    written: int
    unchanged: int
    removed: int


def _prepare(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is a file, not a folder: give lab publish a folder for the site")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the site folder {root}: {exc.strerror}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to the site folder {root}: permission denied")


class SiteWriter:
    """Files of one publish into ``root``; ``finish()`` removes stale ones and saves the state.

    Raises:
        UsageError: ``root`` is a file, or cannot be created or written.
    """

    def __init__(self, root: Path, made_with: dict[str, Any]) -> None:
        _prepare(root)
        self.root = root
        self._made_with = made_with
        old = self._load()
        valid = old.get("format") == _STATE_FORMAT and old.get("made_with") == made_with
        self._old_files: dict[str, str] = old.get("files", {})
        self._files: dict[str, str] = {}
        self.runs: dict[int, RunEntry] = {}
        if valid:
            self.runs = {entry["run_id"]: RunEntry.from_json(entry) for entry in old.get("runs", [])}
        else:
            self._old_files = {k: "" for k in self._old_files}  # other templates: every page is rewritten
        self._written = self._unchanged = 0

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def has(self, path: str) -> bool:
        """Whether ``path`` was written by the last publish and is still there, unchanged since."""
        return bool(self._old_files.get(path)) and (self.root / path).is_file()

    def keep(self, path: str) -> None:
        """Keeps a file of the last publish as it is (its content was not rendered again)."""
        self._files[path] = self._old_files[path]
        self._unchanged += 1

    def write(self, path: str, content: str | bytes) -> None:
        """Writes ``path`` (relative to the root) unless it already holds these bytes."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        digest = hashlib.sha256(data).hexdigest()
        self._files[path] = digest
        if self._old_files.get(path) == digest and (self.root / path).is_file():
            self._unchanged += 1
            return
        self._put(path, data)
        self._written += 1

    def _put(self, path: str, data: bytes) -> None:
        target = self.root / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", delete=False) as tmp:
                tmp.write(data)
            os.chmod(tmp.name, 0o644)
            os.replace(tmp.name, target)  # a browser or server never reads a half-written page
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror}") from None

    def finish(self) -> WriteCounts:
        """Removes the last publish's files that this one did not produce, and saves the state."""
        removed = 0
        for path in self._old_files.keys() - self._files.keys():
            try:
                (self.root / path).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        state = {
            "format": _STATE_FORMAT,
            "made_with": self._made_with,
            "files": self._files,
            "runs": [entry.to_json() for entry in self.runs.values()],
        }
        self._put(STATE_FILE, json.dumps(state, separators=(",", ":")).encode())
        return WriteCounts(self._written, self._unchanged, removed)
