"""`lab history`: stored results, filtered, one row per (run, model, device); --plot draws them over time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from host.cli.context import lab_context
from host.cli.options import JsonOpt
from host.errors import UsageError


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
    from host.report import csv as report_csv
    from host.report import history_png, history_rows, render_history, stdout_console
    from host.report import json as report_json
    from host.report.dates import parse_when
    from host.report.plot import write_png
    from host.store import HistoryFilter, open_store

    flt = HistoryFilter(
        model=model,
        device=device,
        since=parse_when(since, "--since") if since else None,
        until=parse_when(until, "--until", end_of_day=True) if until else None,
        limit=limit or None,
    )
    err = Console(stderr=True)
    with open_store(lab_context(ctx).db_url) as store:
        rows = history_rows(store, flt)
        empty_store = not rows and store.count_runs() == 0
    if as_json:
        typer.echo(report_json.render_history(rows), nl=False)
    elif as_csv:
        typer.echo(report_csv.render_history(rows), nl=False)
    elif rows:
        render_history(rows, stdout_console())
    if not rows:
        if empty_store:
            err.print("no results stored yet: run `lab bench MODEL.tflite` or `lab run` to make some")
        else:
            err.print("no stored results match these filters")
        return
    if plot is not None:
        write_png(history_png(rows), plot)
        err.print(f"plot written to {plot}")


def register(app: typer.Typer) -> None:
    """Adds this module's command(s) to the root app."""
    app.command("history")(history)
