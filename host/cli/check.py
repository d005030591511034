"""`lab check`: the CI gate. Exit 1: a regression; 0: none; 2: nothing to compare."""

from __future__ import annotations

from typing import Annotated

import typer

from host.cli.context import lab_context
from host.cli.options import JsonOpt


def check(
    ctx: typer.Context,
    baseline: Annotated[
        str | None, typer.Option(help="A run id, or last:N for the N runs before the checked one (pooled).")
    ] = None,
    max_regression: Annotated[
        str | None,
        typer.Option(help="Slow-down of the p5 invoke (the headline) allowed: 3% by default (0.1% for --metric instructions)."),
    ] = None,
    run: Annotated[int | None, typer.Option(help="The run to check. Default: the latest run.")] = None,
    metric: Annotated[str, typer.Option(help="time (trial latencies) or instructions (QEMU counts).")] = "time",
    ops: Annotated[
        bool, typer.Option("--ops", help="Name the ops behind each regression (runs benchmarked with lab bench --ops).")
    ] = False,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="Pass when a baseline model × device is missing from the run or failed every trial (default: fail).",
        ),
    ] = False,
    max_median_regression: Annotated[
        str | None,
        typer.Option(help="Slow-down of the median invoke allowed (slowdowns that spare the fastest invokes): 10% by default."),
    ] = None,
    max_tail_regression: Annotated[
        str | None,
        typer.Option(help="Also gate the p95 invoke, e.g. 50%. Default: not gated (it moves with the machine's load)."),
    ] = None,
    max_init_regression: Annotated[
        str | None, typer.Option(help="Also gate init time: slow-down allowed, e.g. 20%. Default: not gated.")
    ] = None,
    max_memory_regression: Annotated[
        str | None, typer.Option(help="Also gate peak memory: growth allowed, e.g. 10%. Default: not gated.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Exit 1 when a model on a device got slower beyond the threshold with statistical confidence,
    or when a model × device of the baseline failed every trial or is missing from the run.

    Tests each trial's p5 invoke (the headline) and median invoke, Holm-adjusted over all tests of
    the check. Exit codes: 0 no regression, 1 regression or missing/failed model, 2 nothing
    to compare. Emulated-device results are compared only with emulated-device results.
    """
    from host.figures import HEADLINE
    from host.records import to_jsonable
    from host.report import check_run, render_check, stdout_console
    from host.report import json as report_json
    from host.report.check import parse_threshold
    from host.store import open_store

    thresholds = {
        name: parse_threshold(text, option) if text is not None else None
        for name, option, text in (
            ("latency", "--max-regression", max_regression),
            ("typical", "--max-median-regression", max_median_regression),
            ("tail", "--max-tail-regression", max_tail_regression),
            ("init", "--max-init-regression", max_init_regression),
            ("memory", "--max-memory-regression", max_memory_regression),
        )
    }
    with open_store(lab_context(ctx).db_url) as store:
        result = check_run(
            store,
            run,
            baseline,
            thresholds["latency"],
            metric,
            ops=ops,
            allow_missing=allow_missing,
            max_median_regression=thresholds["typical"],
            max_tail_regression=thresholds["tail"],
            max_init_regression=thresholds["init"],
            max_memory_regression=thresholds["memory"],
        )
    if as_json:
        rows = [{**to_jsonable(r), "regression": r.regression} for r in result.rows]
        document = {**to_jsonable(result), "rows": rows, "exit_code": result.exit_code, "headline": HEADLINE}
        typer.echo(report_json.dumps(document))
    else:
        render_check(result, stdout_console())
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Adds this module's command(s) to the root app."""
    app.command("check")(check)
