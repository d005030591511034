"""Writing the site's files incrementally: a page whose bytes did not change is not rewritten.

The writer keeps its state in the site's ``.lab-publish/`` folder: ``site.json`` (what the pages
were made with: lab version, templates, filters; and the sha256 of each file it wrote) and one
``runs/<id>.json`` per run (``model.RunEntry``), so a publish after one new run writes that run's
record and the small site record, not the records of every run. A file written last time and not
produced this time (a run gone, another filter) is removed, so no link of the new site points at a
stale page.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host.errors import UsageError
from host.publish.model import RunEntry

__all__ = ["SiteWriter", "WriteCounts", "STATE_DIR"]

STATE_DIR = ".lab-publish"
_SITE_STATE = f"{STATE_DIR}/site.json"
_RUNS = f"{STATE_DIR}/runs"
_LEGACY_STATE = ".lab-publish.json"  # one file with every run's record, before format 2
_STATE_FORMAT = 2


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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


class SiteWriter:
    """Files of one publish into ``root``; ``finish()`` removes stale ones and saves the state.

    ``runs`` holds the runs' records of the last publish (empty when it was made with other
    templates, another lab or other filters); the caller replaces it and names the records it
    created or changed with ``changed_run``, so only those are saved again.

    Raises:
        UsageError: ``root`` is a file, or cannot be created or written.
    """

    def __init__(self, root: Path, made_with: dict[str, Any]) -> None:
        _prepare(root)
        self.root = root
        self._made_with = made_with
        old = _read_json(root / _SITE_STATE)
        if not isinstance(old, dict):
            legacy = _read_json(root / _LEGACY_STATE)
            old = {"files": legacy.get("files", {})} if isinstance(legacy, dict) else {}
        valid = old.get("format") == _STATE_FORMAT and old.get("made_with") == made_with
        self._old_files: dict[str, str] = old.get("files", {})
        self._files: dict[str, str] = {}
        self._saved_runs = self._run_files()
        self.runs: dict[int, RunEntry] = {}
        if valid:
            self.runs = self._load_runs()
        else:
            self._old_files = {k: "" for k in self._old_files}  # other templates: every page is rewritten
        self._changed_runs: set[int] = set()
        self._written = self._unchanged = 0

    def _run_files(self) -> set[int]:
        try:
            names = os.listdir(self.root / _RUNS)
        except OSError:
            return set()
        return {int(name[:-5]) for name in names if name.endswith(".json") and name[:-5].isdigit()}

    def _load_runs(self) -> dict[int, RunEntry]:
        runs = {}
        for run_id in self._saved_runs:
            data = _read_json(self.root / _RUNS / f"{run_id}.json")
            if isinstance(data, dict):
                try:
                    runs[run_id] = RunEntry.from_json(data)
                except (KeyError, TypeError, ValueError):
                    continue  # unreadable: the run is computed again
        return runs

    def changed_run(self, run_id: int) -> None:
        """The record of ``run_id`` in ``runs`` is new or changed: ``finish`` saves it."""
        self._changed_runs.add(run_id)

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
        tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            except FileNotFoundError:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, target)  # a browser or server never reads a half-written page
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
        for run_id in self._saved_runs - self.runs.keys():
            (self.root / _RUNS / f"{run_id}.json").unlink(missing_ok=True)
        for run_id in sorted(self._changed_runs & self.runs.keys()):
            record = json.dumps(self.runs[run_id].to_json(), separators=(",", ":"), ensure_ascii=False)
            self._put(f"{_RUNS}/{run_id}.json", record.encode())
        state = {"format": _STATE_FORMAT, "made_with": self._made_with, "files": self._files}
        self._put(_SITE_STATE, json.dumps(state, separators=(",", ":")).encode())
        (self.root / _LEGACY_STATE).unlink(missing_ok=True)
        return WriteCounts(self._written, self._unchanged, removed)
