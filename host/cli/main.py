"""The root ``lab`` app: global options, error-to-exit-code mapping, and the command modules.

Exit codes: 0 success; 1 failure (for ``bench``/``run``: some trials failed; for ``check``: a
regression); 2 usage errors, nothing could run, or nothing to compare.

A command's module is imported when that command is looked up, not before: ``lab history`` loads
``host.cli.history`` only, and ``lab --help`` lists the commands from the summaries in
``COMMANDS`` without importing any (tests/host/cli/test_startup.py checks that each summary is
the one its command's help starts with). Help is click's plain text, not rich panels: rendering
with rich imports ~50 ms of modules, several times the interpreter's own start-up.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from host import __version__, config
from host.cli.context import LabContext, check_new_store
from host.errors import LabError

if TYPE_CHECKING:
    from typer.core import TyperCommand

    _Command = TyperCommand | TyperGroup

__all__ = ["app", "main", "COMMANDS", "CommandEntry"]


@dataclass(frozen=True)
class CommandEntry:
    """Where a root command is defined (its module under ``host.cli``, which has a ``register(app)``)
    and the summary ``lab --help`` shows for it: its help's first sentence."""

    module: str
    summary: str


COMMANDS: dict[str, CommandEntry] = {
    "run": CommandEntry(
        "run", "Build the guide's CNN, prune it for XNNPACK, benchmark dense vs pruned on every device, store and report."
    ),
    "build": CommandEntry(
        "build", "Train the guide's CNN (or --model), prune it for XNNPACK, convert dense and pruned to TFLite."
    ),
    "devices": CommandEntry(
        "devices", "List attached devices with their facts; unauthorized or offline ones with what to do."
    ),
    "bench": CommandEntry(
        "bench", "Benchmark .tflite models on every selected device: interleaved trials, medians with 95% CIs."
    ),
    "history": CommandEntry(
        "history", "Show stored results: when, median latency with its 95% CI, trials, threads, XNNPACK, tool, status."
    ),
    "compare": CommandEntry(
        "compare",
        "Both latencies (p5 invoke), their ratio B/A with a 95% CI, and faster / slower / no change (a trimmed "
        "t-test on log values, Holm-adjusted over the rows, and a change beyond ±3%: lab check's latency test).",
    ),
    "check": CommandEntry(
        "check",
        "Exit 1 when a model on a device got slower beyond the threshold with statistical confidence, or when a "
        "model × device of the baseline failed every trial or is missing from the run.",
    ),
    "report": CommandEntry(
        "report", "Per device: latency with CI, speed-up with CI, size, accuracy, sparsity, device facts and notes."
    ),
    "publish": CommandEntry(
        "publish", "Write a static site: devices × models grid, history charts, runs, comparisons, reports."
    ),
    "export": CommandEntry(
        "transfer", "Write runs and their trials as JSON Lines (stdout by default): `lab export > runs.jsonl`."
    ),
    "import": CommandEntry(
        "transfer", "Merge an export into this store; records already there are skipped, a bad line imports nothing."
    ),
    "submit": CommandEntry("submit", "Queue benchmark jobs for the farm's agents; prints the job ids."),
    "agent": CommandEntry(
        "agent", "Register this host and its devices in the shared database and run the jobs queued for them."
    ),
    "doctor": CommandEntry(
        "doctor",
        "Check adb and devices, TensorFlow, LiteRT, the tool cache, the database and Docker; say how to fix what "
        "is missing.",
    ),
    "tools": CommandEntry("tools", "benchmark_model binaries per ABI (the tool cache under LAB_HOME/tools)."),
    "emulator": CommandEntry("emulator", "Emulated Android devices (the device agent on loopback)."),
    "images": CommandEntry(
        "images", "Build and list the lab's Docker images: builder (TensorFlow), lab (host app + adb), emulator."
    ),
    "jobs": CommandEntry("jobs", "The farm's job queue: list jobs, cancel one."),
}
"""The root's commands in the order ``lab --help`` lists them."""


class _LazyCommands(MutableMapping[str, "_Command"]):
    """The root group's commands by name. Iterating gives every name without importing anything;
    looking one up imports its module (once) and converts what it registers into click commands."""

    def __init__(self, loaded: Mapping[str, _Command], load: Callable[[str], Mapping[str, _Command]]) -> None:
        self._loaded = dict(loaded)
        self._load = load

    def __getitem__(self, name: str) -> _Command:
        if name not in self._loaded and name in COMMANDS:
            self._loaded.update(self._load(COMMANDS[name].module))
        return self._loaded[name]

    def __setitem__(self, name: str, command: _Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._loaded]))

    def __len__(self) -> int:
        return len(COMMANDS.keys() | self._loaded.keys())


def _unabridged(group: _Command) -> None:
    """A sub-app lists its commands with their help's whole first sentence, wrapped, as the root
    does; click would cut it at the width of one line."""
    for command in getattr(group, "commands", {}).values():
        if not command.short_help and not command.deprecated:
            command.short_help = command.get_short_help_str(limit=sys.maxsize)


class _LabGroup(TyperGroup):
    """Loads command modules on demand, and turns a LabError raised by any command into one line on
    stderr and its exit code."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.commands, self._load)

    def _load(self, module: str) -> dict[str, _Command]:
        """The click commands that ``host.cli.<module>`` registers, built with this group's settings."""
        scratch = typer.Typer(rich_markup_mode=self.rich_markup_mode)
        importlib.import_module(f"host.cli.{module}").register(scratch)
        commands = dict(typer.main.get_group(scratch).commands)
        for command in commands.values():
            _unabridged(command)
        return commands

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(self.commands.keys())

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:
        """The commands and their summaries from ``COMMANDS``, so that ``lab --help`` imports none of them."""
        rows = [(name, entry.summary) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="lab",
    cls=_LabGroup,
    help="On-device benchmarking lab for TensorFlow Lite models: dense vs pruned, history, CI gates.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="LAB_DB_URL", help="Result store: SQLAlchemy URL or SQLite file path."),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="LAB_HOME", help="Data folder (database, artifacts, tools)."),
    ] = None,
    init: Annotated[
        bool,
        typer.Option("--init", help="Create the store given by --db / LAB_DB_URL where its folder does not exist yet."),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    lab_home = home if home is not None else config.lab_home()
    db_url = db if db else f"sqlite:///{lab_home / 'lab.db'}"
    if "://" not in db_url:
        db_url = f"sqlite:///{Path(db_url).expanduser().resolve()}"
    if db and not init:
        check_new_store(db, db_url)
    ctx.obj = LabContext(home=lab_home, db_url=db_url)


def main() -> None:
    """Console-script entry point."""
    app()
