"""`lab report [RUN]`: the dense-vs-pruned report as tables, or as md / html / csv / json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from host.cli.context import lab_context
from host.errors import NotFoundError, UsageError

_SUFFIXES = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".csv": "csv", ".json": "json"}
_FORMATS = tuple(dict.fromkeys(_SUFFIXES.values()))
"""host.report.FORMATS without importing host.report (the store, numpy) for ``--help``; a test keeps them equal."""


def report(
    ctx: typer.Context,
    run: Annotated[int | None, typer.Argument(help="Run id. Default: the latest run.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help=f"One of {', '.join(_FORMATS)}.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file (format from its suffix).")] = None,
) -> None:
    """Per device: latency with CI, speed-up with CI, size, accuracy, sparsity, device facts and notes."""
    from host.report import FORMATS, build_report, export_report, render_terminal, stdout_console, write_report
    from host.store import open_store

    if fmt is None and out is not None:
        fmt = _SUFFIXES.get(out.suffix.lower())
        if fmt is None:
            raise UsageError(f"--out {out}: cannot tell the format from its suffix; add --format ({', '.join(FORMATS)})")
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    with open_store(lab_context(ctx).db_url) as store:
        run_id = run if run is not None else store.latest_run_id()
        if run_id is None:
            raise NotFoundError("the store has no runs yet: run `lab bench MODEL.tflite` or `lab run` first")
        built = build_report(store, run_id)
    if fmt is None:
        render_terminal(built, stdout_console())
    elif out is None:
        typer.echo(export_report(built, fmt), nl=False)
    else:
        write_report(built, fmt, out)
        Console(stderr=True).print(f"report of run {run_id} written to {out}")


def register(app: typer.Typer) -> None:
    """Adds this module's command(s) to the root app."""
    app.command("report")(report)
