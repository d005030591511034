"""``lab devices [--json]``: every device adb knows, with its facts or what to do about it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from host.cli.context import lab_context
from host.cli.farm_devices import show_farm_devices
from host.cli.options import JsonOpt

if TYPE_CHECKING:
    from host.devices import DeviceEntry
    from host.records import DeviceFacts

__all__ = ["register"]


def _cores(facts: DeviceFacts) -> str:
    """``8: cpu0-3 1.79, cpu4-6 2.42, cpu7 2.84 GHz``: the clusters, slowest first."""
    from host.devices.facts import clusters

    if not facts.cores:
        return "—"
    found = clusters(facts)
    if not found:
        return str(facts.cores)
    groups = ", ".join(f"cpu{c.cpus} {c.max_freq_khz / 1e6:.2f}" for c in found)
    return f"{facts.cores}: {groups} GHz"


def _table(entries: list[DeviceEntry]) -> Table:
    table = Table()
    table.add_column("serial", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for header in ("model", "SoC", "ABIs", "Android", "cores", "status"):
        table.add_column(header)
    for e in entries:
        f = e.facts
        if f is None:
            table.add_row(escape(e.serial), "", "", "", "", "", "", f"[red]{escape(e.problem or e.state)}[/]")
            continue
        model = " ".join(x for x in (f.manufacturer, f.model) if x) or "—"
        android = f"{f.release or '?'} (SDK {f.sdk})" if f.sdk is not None else (f.release or "—")
        table.add_row(
            escape(e.serial),
            f.kind + (f" ({f.emulation})" if f.emulation and f.emulation != "native" else ""),
            escape(model),
            escape(f.soc or "—"),
            escape(", ".join(f.abis) or "—"),
            android,
            _cores(f),
            "ready" + "".join(f"\n[yellow]{escape(n)}[/]" for n in e.notes),
        )
    return table


def _clusters_json(facts: DeviceFacts | None) -> list[dict[str, object]]:
    from host.devices.facts import clusters

    if facts is None:
        return []
    return [{"cpus": c.cpus, "cores": list(c.cores), "max_freq_khz": c.max_freq_khz} for c in clusters(facts)]


def devices(
    ctx: typer.Context,
    farm: Annotated[
        bool, typer.Option("--farm", help="Every farm host's devices (shared database), with heartbeat and state.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """List attached devices with their facts; unauthorized or offline ones with what to do.

    Facts: model, SoC, ABIs, Android version, cores and their clusters (cores sharing a maximum
    frequency; the last is what --cores big picks, the first --cores little), and kind (physical,
    emulator, emulated). With --farm: the hosts and devices registered by `lab agent`.
    """
    if farm:
        show_farm_devices(lab_context(ctx), json_)
        return
    from host.devices import adb_client, list_devices, server_address
    from host.records import to_jsonable

    err = Console(stderr=True, soft_wrap=True)
    client = adb_client(on_start=lambda message: err.print(message, highlight=False))
    entries = list_devices(client)
    if json_:
        host, port = server_address()
        document = {
            "adb_server": f"{host}:{port}",
            "devices": [
                {"serial": e.serial, "state": e.state, "ready": e.ready, "problem": e.problem, "facts": to_jsonable(e.facts),
                 "clusters": _clusters_json(e.facts), "notes": list(e.notes)}
                for e in entries
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    if not entries:
        err.print("no devices attached: connect a phone with USB debugging on, or start one with `lab emulator start`")
        return
    from host.report import stdout_console

    stdout_console().print(_table(entries))


def register(app: typer.Typer) -> None:
    """Adds ``lab devices``."""
    app.command("devices")(devices)
