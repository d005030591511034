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
from host.cli.options import JsonOpt, RunsOpt, SerialOpt, ThreadsOpt, TrialsOpt, WarmupOpt

__all__ = ["register"]


def bench(
    ctx: typer.Context,
    models: Annotated[list[Path], typer.Argument(help="One or more .tflite files; ratios are relative to the first.")],
    device: SerialOpt = None,
    threads: ThreadsOpt = 1,
    runs: RunsOpt = 100,
    warmup: WarmupOpt = 10,
    trials: TrialsOpt = 5,
    cooldown: Annotated[float, typer.Option("--cooldown", min=0, help="Seconds to pause between trials.")] = 0.0,
    max_temp: Annotated[
        float | None,
        typer.Option("--max-temp", help="Before each trial, wait (bounded) until every thermal zone is below C °C."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds one trial may take before it counts as timed out.")
    ] = 300.0,
    no_xnnpack: Annotated[bool, typer.Option("--no-xnnpack", help="Run without the XNNPACK delegate.")] = False,
    binary: Annotated[
        Path | None, typer.Option("--binary", help="A benchmark_model to push and use for this run only.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the shuffled trial order.")] = 0,
    ops: Annotated[
        bool,
        typer.Option(
            "--ops",
            help="Per-op profiles: benchmark_model's per-op times (--enable_op_profiling=true), or per-kernel "
            "instruction counts on an arm64 emulated device; stored with each trial.",
        ),
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option("--no-wait", help="A device another run is using: fail its trials at once instead of waiting."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Benchmark .tflite models on every selected device: interleaved trials, medians with 95% CIs.

    Exit codes: 0 all trials ok, 1 some failed, 2 nothing could run.
    """
    from host.bench import model_file, run_bench
    from host.bench.render import RichBenchProgress, failure_lines, note_lines, outcome_json, summary_table
    from host.bench.trial import OP_PROFILING_FLAG
    from host.devices import adb_client, select_devices
    from host.records import TrialParams, to_jsonable
    from host.report import stdout_console
    from host.store import open_store

    lab = lab_context(ctx)
    err = Console(stderr=True, soft_wrap=True)
    files = [model_file(path) for path in models]
    client = adb_client(on_start=lambda message: err.print(message, highlight=False))
    devices = select_devices(client, device)
    params = TrialParams(
        threads=threads,
        runs=runs,
        warmup_runs=warmup,
        use_xnnpack=not no_xnnpack,
        timeout_s=timeout,
        extra_flags=(OP_PROFILING_FLAG,) if ops else (),
    )
    config = {
        "command": "bench",
        "models": [{"name": m.name, "sha256": m.sha256, "path": m.path} for m in files],
        "devices": [d.serial for d in devices],
        "params": to_jsonable(params),
        "trials": trials,
        "cooldown_s": cooldown,
        "max_temp_c": max_temp,
        "seed": seed,
        "binary": str(binary) if binary else None,
    }
    with open_store(lab.db_url) as store, RichBenchProgress(err) as progress:
        outcome = run_bench(
            files,
            devices,
            params,
            trials=trials,
            cooldown_s=cooldown,
            max_temp_c=max_temp,
            store=store,
            binary=binary,
            home=lab.home,
            config=config,
            progress=progress,
            seed=seed,
            client=client,
            wait_for_device=not no_wait,
        )
    if json_:
        typer.echo(json.dumps(outcome_json(outcome), indent=2))
    else:
        console = stdout_console()
        console.print(summary_table(outcome.summaries, title=f"run {outcome.run_id}"))
        for line in note_lines(outcome):
            console.print(f"  note: {line}", highlight=False, markup=False)
    for line in failure_lines(outcome):
        err.print(line, highlight=False, markup=False)
    raise typer.Exit(outcome.exit_code)


def register(app: typer.Typer) -> None:
    """Adds ``lab bench``."""
    app.command("bench")(bench)
