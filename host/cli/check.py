"""`lab check`: the CI gate. Exit 1: a regression; 0: none; 2: nothing to compare."""

from __future__ import annotations

from typing import Annotated

import typer

from host.cli.context import lab_context
from host.cli.options import JsonOpt
from host.records import to_jsonable
from host.report import check_run, render_check, stdout_console
from host.report import json as report_json
from host.report.check import parse_threshold
from host.store import open_store


def check(
    ctx: typer.Context,
    baseline: Annotated[
        str | None, typer.Option(help="A run id, or last:N for the N runs before the checked one (pooled).")
    ] = None,
    max_regression: Annotated[
        str | None, typer.Option(help="Slow-down allowed: 5% by default (0.1% for --metric instructions).")
    ] = None,
    run: Annotated[int | None, typer.Option(help="The run to check. Default: the latest run.")] = None,
    metric: Annotated[str, typer.Option(help="time (trial latencies) or instructions (QEMU counts).")] = "time",
    ops: Annotated[
        bool, typer.Option("--ops", help="Name the ops behind each regression (runs benchmarked with lab bench --ops).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Exit 1 when a model on a device got slower beyond the threshold with statistical confidence.

    Exit codes: 0 no regression, 1 regression, 2 nothing to compare. Emulated-device results are
    compared only with emulated-device results.
    """
    threshold = parse_threshold(max_regression) if max_regression is not None else None
    with open_store(lab_context(ctx).db_url) as store:
        result = check_run(store, run, baseline, threshold, metric, ops=ops)
    if as_json:
        typer.echo(report_json.dumps({**to_jsonable(result), "exit_code": result.exit_code}))
    else:
        render_check(result, stdout_console())
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Adds this module's command(s) to the root app."""
    app.command("check")(check)
