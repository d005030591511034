"""``lab --help`` and every command's ``--help`` stay light: no heavy module is imported to print help.

One fresh interpreter imports the CLI and runs its ``main`` with each ``--help`` in turn, and records
which heavy modules each one added to ``sys.modules`` (importing the CLI counts for ``lab --help``,
the first). No timing here: benchmarks/cli_startup.py measures the seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from host.cli import app
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
        [sys.executable, "-c", _SCRIPT, json.dumps(HEAVY), json.dumps(HELP_LINES), str(out)],
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
    assert seen["exit_code"] == 0
    assert seen["modules"] == [], f"`lab {' '.join(args)}` imported {seen['modules']}: import them inside the command"


def test_help_lists_every_command_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in {path[0] for path in COMMANDS}:
        assert name in result.stdout


def test_report_help_names_the_exporters_formats() -> None:
    """``lab report --help`` lists the formats without importing host.report; they must stay its FORMATS."""
    from host.report import FORMATS

    assert _FORMATS == FORMATS
