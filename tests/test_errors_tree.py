"""The error pages: ``host.errors`` lists every ``LabError`` subclass (with its exit code),
``device_agent.errors`` every ``AgentError`` subclass, each under its real parent and in its module,
and every name on a page exists, so neither page can go stale."""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType

import pytest

import device_agent
import device_agent.errors
import host
import host.errors
from device_agent.errors import AgentError
from host.errors import LabError

_OPTIONAL_EXTRAS = frozenset({"tensorflow", "tf_keras", "tensorflow_model_optimization", "docker", "psycopg"})
"""Top-level packages of the optional extras: a module that cannot import without one is skipped."""

_ROOT = re.compile(r"^(?P<name>\w+)\s+(?P<text>.*)$")
_BRANCH = re.compile(r"^(?P<indent>(?:│   |    )*)(?:├── |└── )(?P<name>\w+)\s+(?P<text>.*)$")
_EXIT = re.compile(r"\(exit (\d+)\)")
_MODULE = re.compile(r"\[([\w.]+)\]\s*$")


@dataclass(frozen=True)
class Entry:
    name: str
    parent: str | None
    module: str
    exit_code: int | None  # None: the page gives none (the parent's)


def _import_all(package: ModuleType) -> None:
    """Imports every module of ``package`` (not ``__main__``, which would run the program)."""

    def failed(name: str) -> None:
        raise ImportError(f"cannot import package {name}")

    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.", onerror=failed):
        if info.name.rpartition(".")[2] == "__main__":
            continue
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] not in _OPTIONAL_EXTRAS:
                raise


def _page(module: ModuleType) -> dict[str, Entry]:
    """The tree drawn in ``module``'s docstring: each class with its parent, module and exit code."""
    lines = (module.__doc__ or "").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    ") and _ROOT.match(line[4:]))
    entries: dict[str, Entry] = {}
    parents: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        line = line[4:]
        branch = _BRANCH.match(line)
        found = branch or _ROOT.match(line)
        assert found, f"{module.__name__}: not a line of the tree: {line!r}"
        depth = len(branch["indent"]) // 4 + 1 if branch else 0
        del parents[depth:]
        name, text = found["name"], found["text"]
        assert name not in entries, f"{module.__name__}: {name} is listed twice"
        exit_code, where = _EXIT.search(text), _MODULE.search(text)
        entries[name] = Entry(
            name,
            parents[-1] if parents else None,
            where[1] if where else module.__name__,
            int(exit_code[1]) if exit_code else None,
        )
        parents.append(name)
    return entries


def _subclasses(root: type) -> dict[str, type]:
    """``root`` and every class below it that host or device_agent defines, by name (names are unique)."""
    found: set[type] = set()
    todo = [root]
    while todo:
        cls = todo.pop()
        if cls.__module__.partition(".")[0] in ("host", "device_agent"):
            found.add(cls)
        todo.extend(cls.__subclasses__())
    by_name = {cls.__name__: cls for cls in found}
    assert len(by_name) == len(found), f"two {root.__name__} subclasses share a name: the page could not tell them apart"
    return by_name


@pytest.fixture(scope="module", autouse=True)
def _every_module_imported() -> None:
    _import_all(host)
    _import_all(device_agent)


@pytest.mark.parametrize(("root", "page"), [(LabError, host.errors), (AgentError, device_agent.errors)])
def test_the_page_lists_the_whole_tree_and_nothing_else(root: type, page: ModuleType) -> None:
    entries = _page(page)
    classes = _subclasses(root)
    assert sorted(set(classes) - set(entries)) == [], f"add these to the tree in {page.__name__}'s docstring"
    assert sorted(set(entries) - set(classes)) == [], f"no such {root.__name__} subclasses: drop them from the page"
    for name, cls in classes.items():
        entry = entries[name]
        assert cls.__module__ == entry.module, f"{name} is defined in {cls.__module__}, the page says {entry.module}"
        parent = next((base.__name__ for base in cls.__bases__ if issubclass(base, root)), None)
        assert parent == entry.parent, f"{name} derives from {parent}, the page draws it under {entry.parent}"


def _page_exit_code(entries: dict[str, Entry], name: str) -> int | None:
    """The exit code the page gives ``name``: its own, else its parent's on the page."""
    entry = entries[name]
    if entry.exit_code is not None or entry.parent is None:
        return entry.exit_code
    return _page_exit_code(entries, entry.parent)


def test_the_host_page_gives_each_exit_code() -> None:
    entries = _page(host.errors)
    for name, cls in _subclasses(LabError).items():
        if name in entries:  # a missing one fails the test above
            expected = _page_exit_code(entries, name)
            assert cls.exit_code == expected, f"{name} exits with {cls.exit_code}, the page says {expected}"
