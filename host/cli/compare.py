"""`lab compare RUN_A RUN_B`: run B against run A per model × device, with a verdict."""

from __future__ import annotations

from typing import Annotated

import typer

from host.cli.context import lab_context
from host.cli.options import JsonOpt


def compare(
    ctx: typer.Context,
    run_a: Annotated[int, typer.Argument(help="The baseline run id.")],
    run_b: Annotated[int, typer.Argument(help="The run to compare with it.")],
    ops: Annotated[
        bool, typer.Option("--ops", help="Also diff the per-op profiles (runs benchmarked with lab bench --ops).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Both latencies (p5 invoke), their ratio B/A with a 95% CI, and faster / slower / no change
    (a trimmed t-test on log values, Holm-adjusted over the rows, and a change beyond ±3%: lab check's latency test).

    Exit codes: 0 compared, 2 nothing in common between the two runs (both sides named; with --ops,
    per-op profiles paired across the runs count, e.g. a dense run against a pruned one).

    With --ops, per model × device: each op in both runs (matched by index, type and name, or by type
    when the graph changed; kernels by function), sorted by its part in the total change; ops in one
    run only are listed.
    """
    from host.report import compare_ops, compare_runs, render_comparison, render_op_comparison, stdout_console
    from host.report import json as report_json
    from host.store import open_store

    with open_store(lab_context(ctx).db_url) as store:
        result = compare_runs(store, run_a, run_b)
        op_result = compare_ops(store, run_a, run_b) if ops else None
    if as_json:
        typer.echo(report_json.dumps(result if op_result is None else {"comparison": result, "ops": op_result}))
    else:
        console = stdout_console()
        render_comparison(result, console)
        if op_result is not None:
            render_op_comparison(op_result, console)
    if not result.rows and not (op_result is not None and op_result.groups):
        typer.echo(f"error: runs {run_a} and {run_b} have no model × device in common: " + "; ".join(result.unmatched), err=True)
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Adds this module's command(s) to the root app."""
    app.command("compare")(compare)
