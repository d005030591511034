"""`lab publish OUT_DIR`: a static results site from the store; `--serve` keeps it live on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from host.cli.context import lab_context


def publish(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Argument(help="Folder of the site (created; updated in place on later runs).")],
    since: Annotated[str | None, typer.Option(help="Only runs from this date/time or age (2025-03-01, 7d).")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Only this model (file name, .tflite optional, or sha256 prefix).")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", "-s", help="Only this device (serial or model name).")
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve the site, regenerated on request when the store changed.")
    ] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for --serve (0: any free port).")] = 8000,
    bind: Annotated[
        str | None, typer.Option(help="Address for --serve instead of 127.0.0.1 (exposes the results to the network).")
    ] = None,
) -> None:
    """Write a static site: devices × models grid, history charts, runs, comparisons, reports. Opens from file://."""
    from rich.console import Console

    from host.publish import SiteFilter
    from host.publish import publish as publish_site
    from host.report.dates import parse_when
    from host.store import open_store

    err = Console(stderr=True)
    flt = SiteFilter(since=parse_when(since, "--since") if since else None, model=model, device=device)
    url = lab_context(ctx).db_url

    def build() -> None:
        with open_store(url) as store:
            counts = publish_site(store, out_dir, flt)
        err.print(
            f"site in {out_dir}: {counts.written} file(s) written, {counts.unchanged} unchanged, "
            f"{counts.removed} removed; open {out_dir / 'index.html'}"
        )

    build()
    if not serve:
        return
    from host.publish.serve import LOOPBACK, make_server

    if bind is not None and bind != LOOPBACK:
        err.print(f"[yellow]warning:[/] serving on {bind}: anyone who can reach this address sees every result")
    server = make_server(out_dir, bind or LOOPBACK, port, build)
    host, bound = server.server_address[:2]
    err.print(f"serving http://{host}:{bound}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    """Adds this module's command(s) to the root app."""
    app.command("publish")(publish)
