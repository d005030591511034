"""``lab images build|list``: the lab's Docker images (builder, lab, emulator).

Build output goes to stderr (the ``Step`` lines; every line with ``--verbose``), the summary
table (or ``--json``) to stdout. Exit codes: 0 ok; 1 an image build failed (its log tail is in
the error); 2 no Docker engine, debootstrap unavailable, or a bad option.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from host.cli.options import JsonOpt
from host.errors import UsageError
from host.images import BASE_TAG, DEFAULT_BASE, BuiltImage, ImageInfo, build_images, list_images, make_base_image

__all__ = ["register"]

images_app = typer.Typer(
    help="Build and list the lab's Docker images: builder (TensorFlow), lab (host app + adb), emulator.",
    no_args_is_help=True,
)


_SHOWN = ("Step ", "building ", "running ", "importing ", "imported ")
"""Start of the build-output lines shown without --verbose: Dockerfile steps and lab's own."""


class ImageChoice(str, Enum):
    builder = "builder"
    lab = "lab"
    emulator = "emulator"


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e9:.2f} GB" if size_bytes >= 1e9 else f"{size_bytes / 1e6:.0f} MB"


def _built_table(built: list[BuiltImage], base: str) -> Table:
    table = Table(title="lab images build", caption=f"base {escape(base)}")
    for header in ("image", "tags", "id"):
        table.add_column(header)
    table.add_column("size", justify="right")
    table.add_column("seconds", justify="right")
    for image in built:
        table.add_row(image.name, escape(" ".join(image.tags)), image.id.removeprefix("sha256:")[:12],
                      _size(image.size_bytes), f"{image.seconds:.1f}")
    return table


def _list_table(images: list[ImageInfo]) -> Table:
    table = Table(title="lab images")
    for header in ("image", "tags", "id", "size", "created", "lab version", "base"):
        table.add_column(header, justify="right" if header == "size" else "left")
    for image in images:
        table.add_row(image.name, escape(" ".join(image.tags) or "<none>"), image.id.removeprefix("sha256:"),
                      _size(image.size_bytes), image.created[:19].replace("T", " "), image.version or "?",
                      escape(image.base or "?"))
    return table


@images_app.command("build")
def build_command(
    base: Annotated[
        str | None, typer.Option("--base", help=f"Base image with Python 3.10+ and venv [default: {DEFAULT_BASE}].")
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle",
            help="PEM file of extra certificate authorities for the builds to trust (networks that intercept "
            "TLS), e.g. /etc/ssl/certs/ca-certificates.crt. Not needed on an open network.",
        ),
    ] = None,
    only: Annotated[
        list[ImageChoice] | None, typer.Option("--only", help="Build only this image (repeatable). Default: all three.")
    ] = None,
    make_base: Annotated[
        bool,
        typer.Option(
            "--make-base",
            help=f"Make {BASE_TAG} with debootstrap + docker import (root; no registry needed; reused when "
            "present) and build from it.",
        ),
    ] = False,
    network: Annotated[str, typer.Option("--network", help="Network mode of the build steps.")] = "host",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every line of the build output.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Build the lab's Docker images from images/Dockerfile's targets (dependencies first, then the lab's code).

    Exit codes: 0 built; 1 a build step failed; 2 no Docker engine or a bad option.
    """
    if make_base and base is not None:
        raise UsageError(f"--make-base builds from {BASE_TAG}: leave out --base {base}")
    err = Console(stderr=True)

    def show(line: str) -> None:
        if verbose or line.startswith(_SHOWN) or "exists: reused" in line:
            err.print(escape(line), style=None if verbose else "dim", highlight=False)

    if make_base:
        make_base_image(BASE_TAG, progress=show)
    chosen = base or (BASE_TAG if make_base else DEFAULT_BASE)
    names = [choice.value for choice in only] if only else None
    built = build_images(chosen, ca_bundle, show, only=names, network=network)
    if json_:
        typer.echo(json.dumps({"base": chosen, "images": [asdict(image) for image in built]}, indent=2))
        return
    Console().print(_built_table(built, chosen))


@images_app.command("list")
def list_command(json_: JsonOpt = False) -> None:
    """List the lab's images in the Docker engine (those labelled lab.image)."""
    images = list_images()
    if json_:
        typer.echo(json.dumps([asdict(image) for image in images], indent=2))
        return
    if not images:
        Console(stderr=True).print("no lab images in the engine: `lab images build` makes them", highlight=False)
        return
    Console().print(_list_table(images))


def register(app: typer.Typer) -> None:
    """Adds ``lab images build`` and ``lab images list``."""
    app.add_typer(images_app, name="images")
