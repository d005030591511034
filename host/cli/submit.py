"""``lab submit MODEL.tflite…``: queue benchmarks for the farm's devices, optionally wait for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from host.cli.context import lab_context
from host.cli.jobs import jobs_json, jobs_table
from host.cli.options import JsonOpt, request_options
from host.records import BenchRequest

if TYPE_CHECKING:
    from host.farm import FarmJob
    from host.store.queries.farm import FarmQueries

__all__ = ["register"]


@request_options(exclude=("binary", "timeout_s", "wait_for_device"))
def submit(
    ctx: typer.Context,
    models: Annotated[list[Path], typer.Argument(help="One or more .tflite files (stored in the database once).")],
    device: Annotated[str | None, typer.Option("--device", "-s", help="One job per device with this serial.")] = None,
    device_model: Annotated[
        str | None, typer.Option("--device-model", help="One job that any device of this model may take.")
    ] = None,
    abi: Annotated[str | None, typer.Option("--abi", help="One job per registered device with this ABI.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="One job per online device of the farm.")] = False,
    request: BenchRequest = BenchRequest(),
    priority: Annotated[int, typer.Option("--priority", help="Higher runs first; ties run oldest first.")] = 0,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the jobs until they finish.")] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="With --wait: give up after S seconds (jobs stay queued).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Queue benchmark jobs for the farm's agents; prints the job ids.

    The agents run them as lab bench would, without --binary (each uses its own tools) and with
    the default trial timeout (--timeout here bounds --wait).

    Exit codes: 0 queued (with --wait: all done), 1 with --wait some job failed or the timeout passed,
    2 bad input or unreachable database.
    """
    from host.farm import Target, open_farm_store, submit_jobs

    lab = lab_context(ctx)
    err = Console(stderr=True, soft_wrap=True)
    target = Target(serial=device, device_model=device_model, abi=abi, all=all_)
    with open_farm_store(lab.db_url) as store:
        ids = submit_jobs(store, models, target, request, priority=priority)
        jobs = store.list_jobs(ids=ids)
        lonely = store.jobs_without_device(jobs)
        for job in jobs:
            if job.id in lonely:
                err.print(f"job {job.id}: no matching device is registered for {job.target}; it stays queued",
                          highlight=False, markup=False)
        if wait:
            jobs = _follow(store, ids, timeout, err)
    if json_:
        typer.echo(json.dumps(jobs_json(jobs), indent=2))
    elif wait:
        from host.report import stdout_console

        stdout_console().print(jobs_table(jobs, set()))
    else:
        for job in jobs:
            typer.echo(f"{job.id}\t{job.status}\t{job.target}")
    if wait and any(job.status != "done" for job in jobs):
        raise typer.Exit(1)


def _follow(store: FarmQueries, ids: list[int], timeout: float | None, err: Console) -> list[FarmJob]:
    from rich.progress import BarColumn, Progress, TextColumn

    from host.farm import FINISHED, wait_for_jobs

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} jobs"),
                  console=err, transient=True) as progress:
        task = progress.add_task("waiting", total=len(ids))

        def update(jobs: list[FarmJob]) -> None:
            running = sum(job.status == "running" for job in jobs)
            finished = sum(job.status in FINISHED for job in jobs)
            progress.update(task, completed=finished, description=f"{running} running")

        return wait_for_jobs(store, ids, timeout_s=timeout, on_update=update)


def register(app: typer.Typer) -> None:
    """Adds ``lab submit``."""
    app.command("submit")(submit)
