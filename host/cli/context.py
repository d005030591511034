"""State the root callback hands to every command through ``ctx.obj``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from host import config

__all__ = ["LabContext", "lab_context"]


@dataclass(frozen=True)
class LabContext:
    home: Path
    db_url: str


def lab_context(ctx: typer.Context) -> LabContext:
    """The LabContext of this invocation (built from the environment when a command runs alone)."""
    root = ctx.find_root()
    if isinstance(root.obj, LabContext):
        return root.obj
    home = config.lab_home()
    return LabContext(home=home, db_url=config.default_db_url(home))
