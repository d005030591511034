"""``lab agent``: serve this host's devices to the farm until SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from host.cli.context import lab_context

__all__ = ["register"]


def agent(
    ctx: typer.Context,
    host_name: Annotated[
        str | None, typer.Option("--host-name", help="This host's name in the farm. Default: the machine's name.")
    ] = None,
    max_parallel: Annotated[int, typer.Option("--max-parallel", min=1, help="Jobs run at once (one per device).")] = 4,
    lease: Annotated[
        float,
        typer.Option("--lease", min=1, help="Seconds a job stays ours without a heartbeat before it is requeued."),
    ] = 60.0,
    heartbeat: Annotated[float, typer.Option("--heartbeat", min=0.1, help="Seconds between heartbeats.")] = 10.0,
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="Seconds between looks at the queue.")] = 1.0,
    rediscover: Annotated[
        float, typer.Option("--rediscover", min=0.1, help="Seconds between looks for devices attached or removed.")
    ] = 30.0,
) -> None:
    """Register this host and its devices in the shared database and run the jobs queued for them.

    Needs a server database (LAB_DB_URL=postgresql+psycopg://…). SIGTERM: claim nothing more and give
    running jobs back to the queue after their current trial (requeued for another device, the attempt
    not counted), then stop. A second SIGTERM or Ctrl-C stops at once (running jobs are requeued when
    their lease expires).
    """
    from host.devices import adb_client
    from host.farm import AgentOptions, FarmAgent, open_farm_store

    lab = lab_context(ctx)
    err = Console(stderr=True, soft_wrap=True)
    options = AgentOptions(
        host_name=host_name or socket.gethostname(), max_parallel=max_parallel, lease_s=lease,
        heartbeat_s=heartbeat, poll_s=poll, rediscover_s=rediscover,
    )
    options.check()
    stop = threading.Event()
    farm_agent: FarmAgent | None = None

    def _stop(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGTERM and not stop.is_set():
            err.print(f"{name}: giving running jobs back to the queue after their current trial, claiming no more "
                      "(SIGTERM again or Ctrl-C: stop now)", highlight=False)
            if farm_agent is not None:
                farm_agent.release()
            stop.set()
            return
        err.print(f"{name}: stopping now; running jobs are requeued when their lease expires", highlight=False)
        os._exit(130 if signum == signal.SIGINT else 143)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with open_farm_store(lab.db_url, server_only=True) as store:
        client = adb_client(on_start=lambda message: err.print(message, highlight=False))
        farm_agent = FarmAgent(store, lab.home, options, client,
                               log=lambda message: err.print(message, highlight=False, markup=False))
        report = farm_agent.run(stop)
    typer.echo(json.dumps({"done": report.done, "failed": report.failed, "lost": report.lost, "released": report.released}))


def register(app: typer.Typer) -> None:
    """Adds ``lab agent``."""
    app.command("agent")(agent)
