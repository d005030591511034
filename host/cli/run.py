"""``lab run``: the guide's experiment in one command — build, devices, bench, store, report.

With no phone attached it runs on two emulated devices, this machine's x86 CPU and an ARM core
under QEMU (prepared on first use), and closes with the finding in one sentence.

Each model's outputs are checked on the device against the host's (``--verify K``, 16 inputs by
default; ``--no-verify``). Exit codes follow ``lab bench``: 0 every trial ok and every output right,
1 some trials failed or some model gave wrong outputs on a device, 2 nothing could run
(no device and ``--emulator never``, an unknown ``--device``, a bad option, ``--emulator arm64``
or ``both`` when the ARM core cannot be prepared).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from host.cli.context import lab_context
from host.cli.options import JsonOpt, SerialOpt, VariantsOpt, XnnpackFp16Opt, request_options
from host.records import RUN_VERIFY_INPUTS, BenchRequest, to_jsonable

__all__ = ["register"]


@request_options(defaults={"verify": RUN_VERIFY_INPUTS})
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
    request: BenchRequest = BenchRequest(),
    variants: VariantsOpt = "dense,pruned",
    force: Annotated[bool, typer.Option("--force", help="Rebuild the models even when cached.")] = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip the on-device output check (the same as --verify 0).")
    ] = False,
    backend: Annotated[
        Literal["auto", "docker", "local"],
        typer.Option(
            "--backend",
            envvar="LAB_BUILD_BACKEND",
            help="Where to build: docker (the builder image), local, or auto (docker when an engine answers and has the builder image).",
        ),
    ] = "auto",
    xnnpack_fp16: XnnpackFp16Opt = False,
    json_: JsonOpt = False,
) -> None:
    """Build the guide's CNN, prune it for XNNPACK, benchmark dense vs pruned on every device, store and report.

    --seed seeds the training too. Exit codes: 0 all trials ok and outputs right, 1 some failed or gave
    wrong outputs on a device, 2 nothing could run.
    """
    from host.builder import BuildSpec
    from host.cli.render.bench import failure_lines, outcome_json
    from host.cli.render.progress import RichRunProgress
    from host.experiment import EMULATOR_ALIASES, RunRequest, run_experiment, run_finding
    from host.report import build_report, render_terminal, stdout_console
    from host.store import open_store

    lab = lab_context(ctx)
    err = Console(stderr=True, soft_wrap=True)
    if emulator in EMULATOR_ALIASES:
        err.print(f"note: --emulator {emulator} is now --emulator {EMULATOR_ALIASES[emulator]}", highlight=False)
    if no_verify:
        request = replace(request, verify=0)
    if xnnpack_fp16:
        from host.bench.trial import XNNPACK_FP16_FLAG

        request = request.with_flags(XNNPACK_FP16_FLAG)
    run_request = RunRequest(
        build=BuildSpec(dataset=dataset, quick=quick, seed=request.seed, variants=tuple(variants.split(","))),
        bench=request,
        backend=backend,
        serials=device,
        emulator=EMULATOR_ALIASES.get(emulator, emulator),  # type: ignore[arg-type]
        force_build=force,
    )
    outcome = run_experiment(run_request, home=lab.home, db_url=lab.db_url, progress=RichRunProgress(err))
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
