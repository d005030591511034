"""The ``lab`` command line: one module per command, wired in ``main``.

Command modules import the store, the farm, the bench, the reports, the build and the device code
inside the functions that use them, never at module level: Typer loads every command module to
parse any command line, so a module-level import would make ``lab --help`` pay for SQLAlchemy,
adbutils or numpy (tests/host/cli/test_startup.py checks this; benchmarks/cli_startup.py times it).
Names needed only in annotations that are not command parameters go under ``TYPE_CHECKING``.
"""

from host.cli.main import app, main

__all__ = ["app", "main"]
