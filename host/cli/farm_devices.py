"""``lab devices --farm``: every host and device registered in the farm, with heartbeat and state.

``host/cli/devices.py`` calls ``show_farm_devices(lab_context(ctx), json_)`` when ``--farm`` is given.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from host.cli.context import LabContext

if TYPE_CHECKING:
    from host.farm import FarmDevice

__all__ = ["show_farm_devices", "farm_devices_json"]

_STATE_STYLE = {"idle": "green", "busy": "yellow", "offline": "red"}


def _ago(when: datetime) -> str:
    seconds = max(0.0, (datetime.now(timezone.utc) - when).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return when.strftime("%Y-%m-%d %H:%M UTC")


def farm_devices_json(devices: list[FarmDevice]) -> dict:
    return {
        "devices": [
            {
                "host": d.host, "serial": d.serial, "model": d.model, "abis": d.abis, "state": d.state,
                "heartbeat_at": d.heartbeat_at.isoformat(), "job": d.job_id,
            }
            for d in devices
        ]
    }


def _table(devices: list[FarmDevice]) -> Table:
    table = Table()
    for header in ("host", "serial", "model", "ABIs", "state", "job", "last heartbeat"):
        table.add_column(header, no_wrap=header in ("host", "serial"))
    for d in devices:
        style = _STATE_STYLE[d.state]
        table.add_row(
            escape(d.host), escape(d.serial), escape(d.model or "—"), escape(", ".join(d.abis) or "—"),
            f"[{style}]{d.state}[/]", str(d.job_id) if d.job_id is not None else "", _ago(d.heartbeat_at),
        )
    return table


def show_farm_devices(lab: LabContext, json_: bool) -> None:
    """Prints the farm's devices (a table, or JSON with ``json_``)."""
    from host.farm import open_farm_store

    with open_farm_store(lab.db_url) as store:
        devices = store.farm_devices()
    if json_:
        typer.echo(json.dumps(farm_devices_json(devices), indent=2))
        return
    if not devices:
        Console(stderr=True).print("no device is registered in the farm: run `lab agent` on a host with devices")
        return
    from host.report import stdout_console

    stdout_console().print(_table(devices))
