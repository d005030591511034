"""``lab tools add|list|fetch``: benchmark_model binaries per ABI in the tool cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from host.cli.context import lab_context
from host.cli.options import JsonOpt

if TYPE_CHECKING:
    from host.records import ToolInfo

__all__ = ["register"]

tools_app = typer.Typer(help="benchmark_model binaries per ABI (the tool cache under LAB_HOME/tools).", no_args_is_help=True)

AbiOpt = Annotated[str, typer.Option("--abi", help="Android ABI: arm64-v8a, armeabi-v7a, x86_64, x86.")]


def _describe(info: ToolInfo) -> str:
    return f"{info.abi} {info.sha256[:12]} {info.version or '(version unknown)'} → {info.path}"


@tools_app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A benchmark_model executable built for ABI.")],
    abi: AbiOpt,
) -> None:
    """Copy a benchmark_model binary into the cache (checked against --abi by its ELF header)."""
    from host.devices.tools import add_tool

    info = add_tool(lab_context(ctx).home, path, abi)
    typer.echo(f"added {_describe(info)}")


@tools_app.command("remove")
def remove(
    ctx: typer.Context,
    sha256: Annotated[str, typer.Argument(help="The tool's sha256, or enough of its start to name one tool.")],
) -> None:
    """Delete a cached tool; the next newest of its ABI becomes the default again."""
    from host.devices.tools import list_tools, remove_tool

    info = remove_tool(lab_context(ctx).home, sha256)
    left = [t for t in list_tools(lab_context(ctx).home) if t.default and t.info.abi == info.abi]
    now = f"; {info.abi} now uses {left[0].info.sha256[:12]}" if left else f"; no cached tool for {info.abi} left"
    typer.echo(f"removed {info.abi} {info.sha256[:12]}{now}")


@tools_app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Cached tools by ABI; the newest of each ABI is the one `lab bench` uses."""
    from host.devices.tools import list_tools
    from host.records import to_jsonable

    tools = list_tools(lab_context(ctx).home)
    if json_:
        rows = [
            {**to_jsonable(t.info), "platform": t.platform, "added_at": t.added_at.isoformat(), "default": t.default}
            for t in tools
        ]
        typer.echo(json.dumps({"tools": rows}, indent=2))
        return
    if not tools:
        Console(stderr=True).print("no cached tools: `lab tools fetch --abi ABI` or `lab tools add PATH --abi ABI`")
        return
    table = Table()
    for header in ("ABI", "default", "sha256", "version", "platform", "source", "added"):
        table.add_column(header)
    for t in tools:
        table.add_row(
            t.info.abi,
            "✓" if t.default else "",
            t.info.sha256[:16],
            escape(t.info.version or "—"),
            t.platform or "—",
            escape(t.info.source or "—"),
            t.added_at.strftime("%Y-%m-%d %H:%M"),
        )
    from host.report import stdout_console

    stdout_console().print(table)


@tools_app.command("fetch")
def fetch(
    ctx: typer.Context,
    abi: AbiOpt,
    plus_flex: Annotated[bool, typer.Option("--plus-flex", help="The build with TensorFlow (Flex) ops.")] = False,
    linux: Annotated[
        bool, typer.Option("--linux", help="The Linux build (for the lab's emulated device) instead of Android's.")
    ] = False,
) -> None:
    """Download Google's nightly benchmark_model for an ABI into the cache (exit 2 when offline)."""
    from host.devices.tools import fetch_tool

    err = Console(stderr=True, soft_wrap=True)
    info = fetch_tool(lab_context(ctx).home, abi, plus_flex=plus_flex, platform="linux" if linux else None)
    err.print(f"fetched from {escape((info.source or '').removeprefix('fetched:'))}", highlight=False)
    typer.echo(f"added {_describe(info)}")


def register(app: typer.Typer) -> None:
    """Adds ``lab tools``."""
    app.add_typer(tools_app, name="tools")
