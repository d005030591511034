"""``lab jobs [--status S…] [--json]`` and ``lab jobs cancel ID``: the farm's queue."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from host.cli.context import lab_context
from host.cli.options import JsonOpt

if TYPE_CHECKING:
    from host.farm import FarmJob

__all__ = ["register", "jobs_json", "jobs_table"]

_STYLE = {"queued": "cyan", "running": "yellow", "done": "green", "failed": "red", "cancelled": "dim"}


def jobs_json(jobs: list[FarmJob], lonely: set[int] | None = None) -> dict[str, Any]:
    from host.records import to_jsonable

    rows = []
    for job in jobs:
        row = to_jsonable(job)
        row["no_matching_device"] = job.id in (lonely or set())
        rows.append(row)
    return {"jobs": rows}


def jobs_table(jobs: list[FarmJob], lonely: set[int]) -> Table:
    table = Table()
    for header in ("job", "status", "target", "models", "trials", "priority", "host", "attempt", "run", "note"):
        table.add_column(header, no_wrap=header in ("job", "status"))
    for job in jobs:
        note = "no matching device is registered" if job.id in lonely else (job.error or "")
        table.add_row(
            str(job.id), f"[{_STYLE[job.status]}]{job.status}[/]", escape(job.target),
            escape(", ".join(m["name"] for m in job.models)), str(job.trials), str(job.priority),
            escape(job.host_name or ""), f"{job.attempt}/{job.max_attempts}",
            str(job.run_id) if job.run_id is not None else "", escape(note),
        )
    return table


jobs_app = typer.Typer(help="The farm's job queue: list jobs, cancel one.", invoke_without_command=True)


@jobs_app.callback()
def jobs(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only jobs in this status (repeatable): queued, running, done, failed, cancelled"),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List the farm's jobs, oldest first; queued jobs no registered device can take say so."""
    if ctx.invoked_subcommand is not None:
        return
    from host.farm import open_farm_store

    lab = lab_context(ctx)
    with open_farm_store(lab.db_url) as store:
        found = store.list_jobs(statuses=status)
        lonely = store.jobs_without_device(found)
    if json_:
        typer.echo(json.dumps(jobs_json(found, lonely), indent=2))
        return
    if not found:
        Console(stderr=True).print("no jobs" + (f" in status {', '.join(status)}" if status else "") +
                                   ": queue some with `lab submit`")
        return
    from host.report import stdout_console

    stdout_console().print(jobs_table(found, lonely))


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: Annotated[int, typer.Argument(help="The job to cancel.")]) -> None:
    """Cancel a queued or running job (a running one stops before its next trial)."""
    from host.farm import open_farm_store

    lab = lab_context(ctx)
    with open_farm_store(lab.db_url) as store:
        job = store.cancel_job(job_id)
    typer.echo(f"job {job.id} cancelled")


def register(app: typer.Typer) -> None:
    """Adds ``lab jobs`` and ``lab jobs cancel``."""
    app.add_typer(jobs_app, name="jobs")
