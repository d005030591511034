"""The ``lab`` command line: one module per command, wired in ``main``.

Command modules import the store, the farm, the bench, the reports, the build and the device code
inside the functions that use them, never at module level: ``lab CMD --help`` imports CMD's module
(``main`` loads a command's module when that command is looked up, and ``lab --help`` none), so a
module-level import would make it pay for SQLAlchemy, adbutils or numpy
(tests/host/cli/test_startup.py checks this; benchmarks/cli_startup.py times it). Names needed only
in annotations that are not command parameters go under ``TYPE_CHECKING``. A new command module is
added to ``main.COMMANDS`` with its summary for ``lab --help``.
"""

from host.cli.main import app, main

__all__ = ["app", "main"]
