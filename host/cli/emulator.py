"""``lab emulator prepare | start | stop | status``: emulated devices for machines without phones.

An emulated device is ``python -m device_agent emulator`` running in the background, connected to
the adb server as ``127.0.0.1:PORT``. An x86_64 one measures this machine's CPU, never a phone's;
an arm64 one runs benchmark_model in an arm64 userland under QEMU (``prepare`` makes it once) and
counts instructions per inference, exact and repeatable, while its wall time means little.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from host.cli.context import lab_context
from host.cli.options import JsonOpt
from host.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["register", "RichPrepareProgress"]

emulator_app = typer.Typer(help="Emulated Android devices (the device agent on loopback).", no_args_is_help=True)


ArchOpt = Annotated[
    str, typer.Option("--arch", help="x86_64: this machine's CPU; arm64: an ARM core under QEMU (run prepare first).")
]


class RichPrepareProgress:
    """The arm64 userland's preparation on a (stderr) console: its lines, and a download bar once
    there is something to download (a prepared userland shows one line and no bar)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

        self.console = console
        self.progress = Progress(
            TextColumn("[bold]download[/]"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichPrepareProgress:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def line(self, message: str) -> None:
        self.progress.console.print(f"  [dim]arm64:[/] {escape(message)}", highlight=False)

    def downloaded(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("download", total=total)
        self.progress.update(self.task, completed=done, total=total)


@emulator_app.command("prepare")
def prepare(
    arch: ArchOpt = "arm64",
    dir_: Annotated[
        Path | None,
        typer.Option("--dir", help="Where the userland goes (default $LAB_QEMU_CACHE or ~/.cache/lab/qemu-arm64)."),
    ] = None,
    mirror: Annotated[
        str | None,
        typer.Option("--mirror", envvar="LAB_DEBIAN_MIRROR", help="Debian mirror (default https://deb.debian.org/debian)."),
    ] = None,
) -> None:
    """Prepare the arm64 emulated device once: QEMU, a Debian arm64 userland with LiteRT, the counting plugin.

    No root needed: Debian packages are downloaded from the mirror and unpacked (about 95 MB, 230 MB
    on disk); the plugin is built with the machine's C compiler when there is one. `lab run` does
    this by itself on first use.
    """
    if arch != "arm64":
        raise UsageError("only --arch arm64 needs preparing; x86_64 emulated devices run on this machine as they are")
    from device_agent.errors import AgentError
    from device_agent.qemu import default_dest, prepare as prepare_userland

    err = Console(stderr=True, soft_wrap=True)
    try:
        with RichPrepareProgress(err) as display:
            userland = prepare_userland(dir_ or default_dest(), progress=display.line, on_bytes=display.downloaded, mirror=mirror)
    except AgentError as exc:
        raise ConfigError(str(exc)) from exc
    typer.echo(f"arm64 userland ready in {userland.root}")


@emulator_app.command("start")
def start(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="TCP port (default: a free one).")] = None,
    arch: ArchOpt = "x86_64",
    cpu: Annotated[str | None, typer.Option("--cpu", help="arm64 only: the emulated core (default neoverse-n1).")] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="Answer as a phone: pixel4 (SDK 33, 1+3+4 cores), galaxy_a50 (SDK 28), galaxy_j2_core (armeabi-v7a); "
            "its die heats and throttles, its slowdowns padded with sleep and said so.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Start an emulated device in the background and connect it to the adb server."""
    from host.devices import adb_client, start_emulated_device

    lab = lab_context(ctx)
    err = Console(stderr=True, soft_wrap=True)
    client = adb_client(on_start=lambda message: err.print(escape(message), highlight=False))
    handle = start_emulated_device(lab.home, port=port, arch=arch, cpu=cpu, client=client, profile=profile)
    if json_:
        typer.echo(json.dumps(asdict(handle), indent=2))
    else:
        typer.echo(f"started emulated device {handle.serial} (pid {handle.pid}, files in {handle.root})")


@emulator_app.command("stop")
def stop(
    ctx: typer.Context,
    serial: Annotated[str | None, typer.Argument(help="Serial of the device to stop, e.g. 127.0.0.1:40123.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stop every emulated device this LAB_HOME started.")] = False,
) -> None:
    """Disconnect and stop an emulated device (its files stay under LAB_HOME)."""
    from host.devices import list_emulated_devices, stop_emulated_device

    lab = lab_context(ctx)
    if (serial is None) == (not all_):
        raise UsageError("give one SERIAL or --all (see lab emulator status)")
    serials = [h.serial for h in list_emulated_devices(lab.home)] if all_ else [serial]
    for name in serials:
        stop_emulated_device(name, home=lab.home)
        typer.echo(f"stopped {name}")
    if not serials:
        typer.echo("no emulated device is running")


@emulator_app.command("status")
def status(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List the emulated devices this LAB_HOME started."""
    from host.devices import list_emulated_devices

    lab = lab_context(ctx)
    handles = list_emulated_devices(lab.home)
    if json_:
        typer.echo(json.dumps([asdict(h) | {"running": h.running} for h in handles], indent=2))
        return
    if not handles:
        typer.echo("no emulated device is running (start one: lab emulator start)")
        return
    table = Table(title="emulated devices")
    for header in ("serial", "arch", "pid", "running", "started", "files"):
        table.add_column(header)
    for h in handles:
        table.add_row(h.serial, h.arch, str(h.pid), "yes" if h.running else "no", h.started_at, escape(h.root))
    from host.report import stdout_console

    stdout_console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(emulator_app, name="emulator")
