"""The ``lab`` command line: one module per command, wired in ``main``."""

from host.cli.main import app, main

__all__ = ["app", "main"]
