"""The root ``lab`` app: global options, error-to-exit-code mapping, and the command modules.

Exit codes: 0 success; 1 failure (for ``bench``/``run``: some trials failed; for ``check``: a
regression); 2 usage errors, nothing could run, or nothing to compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from host import __version__, config
from host.cli import (
    agent,
    bench,
    build,
    check,
    compare,
    devices,
    doctor,
    emulator,
    history,
    images,
    jobs,
    publish,
    report,
    run,
    submit,
    tools,
    transfer,
)
from host.cli.context import LabContext, check_new_store
from host.errors import LabError

__all__ = ["app", "main"]


class _LabGroup(TyperGroup):
    """Turns a LabError raised by any command into one line on stderr and its exit code."""

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


for _module in (
    run, build, devices, tools, bench, history, compare, check, report, publish, transfer, emulator, images, submit,
    jobs, agent, doctor,
):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
