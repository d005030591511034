"""``lab bench MODEL.tflite...``: benchmark models on devices, store the run, print statistics.

Exit codes: 0 every trial ok, 1 some trials failed, 2 nothing could run (or bad input).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from host.cli.context import lab_context
from host.cli.options import JsonOpt, SerialOpt, XnnpackFp16Opt, request_options
from host.records import BenchRequest

__all__ = ["register"]


@request_options()
def bench(
    ctx: typer.Context,
    models: Annotated[list[Path], typer.Argument(help="One or more .tflite files; ratios are relative to the first.")],
    device: SerialOpt = None,
    request: BenchRequest = BenchRequest(),
    ops: Annotated[
        bool,
        typer.Option(
            "--ops",
            help="Per-op profiles: benchmark_model's per-op times (--enable_op_profiling=true), or per-kernel "
            "instruction counts on an arm64 emulated device; stored with each trial.",
        ),
    ] = False,
    xnnpack_fp16: XnnpackFp16Opt = False,
    json_: JsonOpt = False,
) -> None:
    """Benchmark .tflite models on every selected device: interleaved trials, medians with 95% CIs.

    With --verify K each model's outputs on K inputs are checked against the host's afterwards.
    Exit codes: 0 all trials ok (and outputs right), 1 some failed or gave wrong outputs, 2 nothing could run.
    """
    from host.bench import model_file, run_bench
    from host.bench.verify import references_beside
    from host.bench.trial import OP_PROFILING_FLAG, XNNPACK_FP16_FLAG
    from host.cli.render.bench import failure_lines, note_lines, outcome_json, summary_table
    from host.cli.render.progress import RichBenchProgress
    from host.devices import adb_client, select_devices
    from host.devices.discovery import skipped_devices
    from host.report import stdout_console
    from host.store import open_store

    lab = lab_context(ctx)
    err = Console(stderr=True, soft_wrap=True)
    if ops:
        request = request.with_flags(OP_PROFILING_FLAG)
    if xnnpack_fp16:
        request = request.with_flags(XNNPACK_FP16_FLAG)
    files = [model_file(path) for path in models]
    references = references_beside(files) if request.verify else None
    client = adb_client(on_start=lambda message: err.print(message, highlight=False))
    devices = select_devices(client, device)
    skipped = skipped_devices(client, device)  # stored with the run, so its results say who was left out
    for serial, problem in skipped.items():
        err.print(f"skipping {serial}: {problem}", highlight=False, markup=False)
    with open_store(lab.db_url) as store, RichBenchProgress(err) as progress:
        outcome = run_bench(request, files, devices, store=store, home=lab.home, progress=progress, client=client,
                            references=references,
                            config={"skipped_devices": skipped} if skipped else None)
    if json_:
        typer.echo(json.dumps(outcome_json(outcome), indent=2))
    else:
        console = stdout_console()
        console.print(summary_table(outcome.summaries, title=f"run {outcome.run_id}", checks=outcome.checks))
        for line in note_lines(outcome):
            console.print(f"  note: {line}", highlight=False, markup=False)
    for line in failure_lines(outcome):
        err.print(line, highlight=False, markup=False)
    raise typer.Exit(outcome.exit_code)


def register(app: typer.Typer) -> None:
    """Adds ``lab bench``."""
    app.command("bench")(bench)
