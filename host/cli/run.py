"""``lab run``: the guide's experiment in one command — build, devices, bench, store, report.

With no phone attached it runs on two emulated devices, this machine's x86 CPU and an ARM core
under QEMU (prepared on first use), and closes with the finding in one sentence.

Exit codes follow ``lab bench``: 0 every trial ok, 1 some trials failed, 2 nothing could run
(no device and ``--emulator never``, an unknown ``--device``, a bad option, ``--emulator arm64``
or ``both`` when the ARM core cannot be prepared).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from host.cli.build import RichBuildProgress
from host.cli.context import lab_context
from host.cli.emulator import RichPrepareProgress
from host.cli.options import JsonOpt, RunsOpt, SerialOpt, ThreadsOpt, TrialsOpt, WarmupOpt

if TYPE_CHECKING:
    from host.bench.render import RichBenchProgress

__all__ = ["register"]


class _RichRunProgress:
    """Stage lines on stderr, with the build's and the bench's own rich progress in between."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def stage(self, message: str) -> None:
        self.console.print(f"[bold cyan]▶[/] {escape(message)}", highlight=False)

    @contextmanager
    def building(self) -> Iterator[RichBuildProgress]:
        with RichBuildProgress(self.console) as progress:
            yield progress

    @contextmanager
    def preparing(self) -> Iterator[RichPrepareProgress]:
        with RichPrepareProgress(self.console) as progress:
            yield progress

    @contextmanager
    def benching(self) -> Iterator[RichBenchProgress]:
        from host.bench.render import RichBenchProgress

        with RichBenchProgress(self.console) as progress:
            yield progress


def run(
    ctx: typer.Context,
    dataset: Annotated[
        str, typer.Option("--dataset", help="cifar10, synthetic[:N], npz:PATH or images:DIR.")
    ] = "cifar10",
    quick: Annotated[bool, typer.Option("--quick", help="A data subset and one epoch per phase (about 2 minutes).")] = False,
    device: SerialOpt = None,
    emulator: Annotated[
        Literal["auto", "x86", "arm64", "both", "never", "always"],
        typer.Option(
            "--emulator",
            help="auto: attached devices, else two emulated ones — this machine's x86 CPU and an ARM core under QEMU "
            "(prepared on first use, about 95 MB; without it the x86 one alone, saying why); x86: only a new "
            "emulated x86 device; arm64: only a new emulated ARM core (instruction counts); both: the two; "
            "never: attached devices only. always: the old name of x86.",
        ),
    ] = "auto",
    threads: ThreadsOpt = 1,
    runs: RunsOpt = 100,
    warmup: WarmupOpt = 10,
    trials: TrialsOpt = 5,
    cooldown: Annotated[float, typer.Option("--cooldown", min=0, help="Seconds to pause between trials.")] = 0.0,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds one trial may take.")] = 300.0,
    force: Annotated[bool, typer.Option("--force", help="Rebuild the models even when cached.")] = False,
    backend: Annotated[
        Literal["auto", "docker", "local"],
        typer.Option(
            "--backend",
            envvar="LAB_BUILD_BACKEND",
            help="Where to build: docker (the builder image), local, or auto (docker when an engine answers and has the builder image).",
        ),
    ] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Seed of training and of the trial order.")] = 0,
    json_: JsonOpt = False,
) -> None:
    """Build the guide's CNN, prune it for XNNPACK, benchmark dense vs pruned on every device, store and report.

    Exit codes: 0 all trials ok, 1 some failed, 2 nothing could run.
    """
    from host.bench.render import failure_lines, outcome_json
    from host.builder import BuildSpec
    from host.experiment import EMULATOR_ALIASES, RunRequest, run_experiment, run_finding
    from host.records import TrialParams, to_jsonable
    from host.report import build_report, render_terminal, stdout_console
    from host.store import open_store

    lab = lab_context(ctx)
    err = Console(stderr=True, soft_wrap=True)
    if emulator in EMULATOR_ALIASES:
        err.print(f"note: --emulator {emulator} is now --emulator {EMULATOR_ALIASES[emulator]}", highlight=False)
    request = RunRequest(
        build=BuildSpec(dataset=dataset, quick=quick, seed=seed),
        params=TrialParams(threads=threads, runs=runs, warmup_runs=warmup, timeout_s=timeout),
        backend=backend,
        trials=trials,
        serials=device,
        emulator=EMULATOR_ALIASES.get(emulator, emulator),  # type: ignore[arg-type]
        cooldown_s=cooldown,
        force_build=force,
        seed=seed,
    )
    outcome = run_experiment(request, home=lab.home, db_url=lab.db_url, progress=_RichRunProgress(err))
    with open_store(lab.db_url) as store:
        report = build_report(store, outcome.run_id)
        finding = run_finding(store, report)
    if json_:
        document = {
            "build": {"build_id": outcome.build.build_id, "dir": str(outcome.build.dir), "cached": outcome.build.cached},
            "bench": outcome_json(outcome.bench),
            "report": to_jsonable(report),
            "db_url": outcome.db_url,
            "emulated_devices_started": outcome.started_emulated,
            "notes": outcome.notes,
            "finding": finding,
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        out = stdout_console()
        render_terminal(report, out)
        for note in outcome.notes:  # soft wrap: one line each, whole for grep and copy
            out.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
        if finding:
            out.print(f"[bold]finding:[/] {escape(finding)}", highlight=False, soft_wrap=True)
        for line in failure_lines(outcome.bench):
            err.print(escape(line), highlight=False)
        err.print(f"run {outcome.run_id} stored in {escape(outcome.db_url)}", highlight=False)
    raise typer.Exit(outcome.exit_code)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
