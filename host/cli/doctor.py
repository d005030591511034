"""``lab doctor``: what this machine has and lacks for each stage, with the command that fixes it.

Exit codes: 0 nothing essential missing (warnings allowed), 1 something missing.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.markup import escape
from rich.table import Table

from host.cli.context import lab_context
from host.cli.options import JsonOpt

__all__ = ["register"]

_MARK = {"ok": "[green]ok[/]", "warning": "[yellow]warning[/]", "missing": "[red]missing[/]"}


def doctor(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Check adb and devices, TensorFlow, LiteRT, the tool cache, the database and Docker; say how to fix what is missing."""
    from host.doctor import run_checks
    from host.report import stdout_console

    lab = lab_context(ctx)
    checks = run_checks(lab.home, lab.db_url)
    if json_:
        typer.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        table = Table(title="lab doctor")
        for header in ("stage", "check", "status", "detail", "fix"):
            table.add_column(header)
        for c in checks:
            table.add_row(c.stage, escape(c.name), _MARK[c.status], escape(c.detail), escape(c.fix or ""))
        stdout_console().print(table)
    raise typer.Exit(1 if any(c.status == "missing" for c in checks) else 0)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
