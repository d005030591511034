"""``lab --help`` and every command's ``--help`` stay light: no heavy module is imported to print help.

One fresh interpreter imports the CLI and runs its ``main`` with each ``--help`` in turn, and records
which watched modules each one added to ``sys.modules`` (importing the CLI counts for ``lab --help``,
the first). ``lab --help`` itself imports no command module and not rich: it lists the commands from
``host.cli.main.COMMANDS``, whose summaries are checked against the commands' own help here. No
timing here: benchmarks/cli_startup.py measures the seconds.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

import host.cli
from host.cli import app
from host.cli.main import COMMANDS as ROOT_COMMANDS
from host.cli.report import _FORMATS

HEAVY = (
    "sqlalchemy",
    "alembic",
    "matplotlib",
    "numpy",
    "scipy",
    "tensorflow",
    "docker",
    "adbutils",
    "device_agent",
    "host.store",
    "host.farm",
    "host.bench",
    "host.report",
    "host.builder",
    "host.devices",
)
"""Third-party and lab packages that only the commands that use them may import."""

ROOT_HELP_SKIPS = ("rich", *sorted({f"host.cli.{entry.module}" for entry in ROOT_COMMANDS.values()}))
"""What ``lab --help`` alone does not import either: rich (help is plain text) and the command modules."""

_SCRIPT = textwrap.dedent(
    """
    import contextlib, io, json, sys

    from host.cli.main import main

    heavy, command_lines, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    loaded, before = {}, set()
    for args in command_lines:
        sys.argv = ["lab", *args]
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main()
            except SystemExit as exc:
                code = exc.code
            else:
                code = 0
        present = {name for name in heavy if name in sys.modules}
        loaded[" ".join(args)] = {"exit_code": code, "modules": sorted(present - before)}
        before = present
    with open(out, "w") as stream:
        json.dump(loaded, stream)
    """
)


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, sub in getattr(command, "commands", {}).items():
        yield (*prefix, name)
        yield from _command_paths(sub, (*prefix, name))


COMMANDS = sorted(_command_paths(typer.main.get_command(app)))
HELP_LINES = [["--help"]] + [[*path, "--help"] for path in COMMANDS]


@pytest.fixture(scope="module")
def loaded_after_help(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Per ``--help`` command line: its exit code and the heavy modules loaded so far, in one fresh process."""
    folder = tmp_path_factory.mktemp("startup")
    out = folder / "loaded.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}  # LAB_DB_URL makes --db check the store
    env["LAB_HOME"] = str(folder / "home")
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps([*HEAVY, *ROOT_HELP_SKIPS]), json.dumps(HELP_LINES), str(out)],
        env=env, capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_commands_are_enumerated() -> None:
    """The walk finds the sub-apps' commands, so the parametrized test below covers them."""
    assert {("bench",), ("history",), ("jobs", "cancel"), ("tools", "add"), ("emulator", "start")} <= set(COMMANDS)


@pytest.mark.parametrize("args", HELP_LINES, ids=" ".join)
def test_help_imports_nothing_heavy(args: list[str], loaded_after_help: dict[str, dict[str, Any]]) -> None:
    seen = loaded_after_help[" ".join(args)]
    heavy = [name for name in seen["modules"] if name in HEAVY]
    assert seen["exit_code"] == 0
    assert heavy == [], f"`lab {' '.join(args)}` imported {heavy}: import them inside the command"


def test_root_help_imports_no_command_module_and_not_rich(loaded_after_help: dict[str, dict[str, Any]]) -> None:
    assert loaded_after_help["--help"]["modules"] == []


def test_root_help_summaries_are_the_commands_own() -> None:
    """``lab --help`` shows each command's help up to its first sentence, as click would, from COMMANDS."""
    group = typer.main.get_command(app)
    for name, entry in ROOT_COMMANDS.items():
        own = group.commands[name].get_short_help_str(limit=sys.maxsize)
        assert entry.summary == own, f"update COMMANDS[{name!r}] in host/cli/main.py to the command's help: {own!r}"


def test_commands_name_every_module_and_what_it_registers() -> None:
    """Each module with a ``register`` is in COMMANDS, under exactly the names it registers."""
    modules = {
        info.name for info in pkgutil.iter_modules(host.cli.__path__)
        if not info.name.startswith("_") and hasattr(importlib.import_module(f"host.cli.{info.name}"), "register")
    }  # fmt: skip
    assert modules == {entry.module for entry in ROOT_COMMANDS.values()}
    for module in modules:
        scratch = typer.Typer()
        importlib.import_module(f"host.cli.{module}").register(scratch)
        registered = {info.name for info in scratch.registered_commands} | {
            info.name for info in scratch.registered_groups
        }
        assert registered == {name for name, entry in ROOT_COMMANDS.items() if entry.module == module}


def test_sub_apps_list_whole_summaries() -> None:
    """A sub-app's command list shows its commands' first sentences unabridged (wrapped), not cut with '...'."""
    result = CliRunner().invoke(app, ["images", "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    commands = result.stdout.split("Commands:")[1]
    assert "..." not in commands
    assert "lab.image)." in commands  # the end of `images list`'s first sentence


def test_unknown_command_suggests_the_close_one() -> None:
    result = CliRunner().invoke(app, ["histroy"])
    assert result.exit_code == 2
    assert "No such command 'histroy'" in result.output and "'history'" in result.output


def test_help_lists_every_command_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in {path[0] for path in COMMANDS}:
        assert name in result.stdout


def test_report_help_names_the_exporters_formats() -> None:
    """``lab report --help`` lists the formats without importing host.report; they must stay its FORMATS."""
    from host.report import FORMATS

    assert _FORMATS == FORMATS
