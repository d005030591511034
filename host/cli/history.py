"""`lab history`: stored results, filtered, one row per (run, model, device); --plot draws them over time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from host.cli.context import lab_context
from host.cli.options import JsonOpt
from host.errors import UsageError

if TYPE_CHECKING:
    from host.report import HistoryRow


def history(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model file name (.tflite optional) or sha256 prefix.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", "-s", help="Device serial or model name.")] = None,
    since: Annotated[str | None, typer.Option(help="From this date/time or age (2025-03-01, 7d).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this date (inclusive) or date-time.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many rows, newest first; 0 for all.")] = 50,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Also draw latency over time into this PNG file.")] = None,
) -> None:
    """Show stored results: when, median latency with its 95% CI, trials, threads, XNNPACK, tool, status."""
    if as_json and as_csv:
        raise UsageError("--json and --csv exclude each other: pick one")
    from rich.console import Console

    from host.report.dates import parse_when
    from host.store import HistoryFilter, sqlite_store_is_empty

    flt = HistoryFilter(
        model=model,
        device=device,
        since=parse_when(since, "--since") if since else None,
        until=parse_when(until, "--until", end_of_day=True) if until else None,
        limit=limit or None,
    )
    err = Console(stderr=True)
    url = lab_context(ctx).db_url
    rows: list[HistoryRow] = []
    if sqlite_store_is_empty(url):  # nothing can match: answer without importing SQLAlchemy and the models
        empty_store = True
    else:
        from host.report import history_rows
        from host.store import open_store

        with open_store(url) as store:
            rows = history_rows(store, flt)
            empty_store = not rows and store.count_runs() == 0
    if as_json:
        from host.report import json as report_json

        typer.echo(report_json.render_history(rows), nl=False)
    elif as_csv:
        from host.report import csv as report_csv

        typer.echo(report_csv.render_history(rows), nl=False)
    elif rows:
        from host.report import render_history, stdout_console

        render_history(rows, stdout_console())
    if not rows:
        if empty_store:
            err.print("no results stored yet: run `lab bench MODEL.tflite` or `lab run` to make some")
        else:
            err.print("no stored results match these filters")
        return
    if plot is not None:
        from host.report import history_png
        from host.report.plot import write_png

        write_png(history_png(rows), plot)
        err.print(f"plot written to {plot}")


def register(app: typer.Typer) -> None:
    """Adds this module's command(s) to the root app."""
    app.command("history")(history)
