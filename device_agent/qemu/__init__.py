"""The arm64 emulated core: LiteRT's NEON and sparse kernels under QEMU user-mode emulation.

On x86 CPUs with AVX, XNNPACK switches its sparse kernels off, so a pruned model runs exactly as
fast as the dense one. Inside an arm64 Debian userland under ``qemu-aarch64`` with a phone-like
core (``neoverse-n1``), LiteRT runs XNNPACK's NEON kernels and, for a model pruned for XNNPACK, its
sparse ones. Emulated time says little about a real core, but the number of guest instructions per
inference, counted by a small QEMU plugin, is exact and repeatable.

API (stdlib only at import)::

    from device_agent.qemu import prepare, find_userland, MissingUserlandError

    userland = prepare(Path(dir), progress=print)      # idempotent, no root; cached in dir (≈ 95 MB download, ≈ 330 MB)
    userland = find_userland(Path(dir))                 # None when not prepared
    userland = require_userland(Path(dir))              # or MissingUserlandError with the prepare command
    argv, env = userland.bench_command(["--graph=/abs/m.tflite", "--num_runs=50"], cpu="neoverse-n1")
    subprocess.run(argv, env={**os.environ, **env})    # benchmark_model's output + one line:
    # INFO: Instructions per inference (emulated, qemu-user neoverse-n1): first=… min=… median=… count=… overhead=…

``CPUS`` lists the cores (``neoverse-n1`` default, ``cortex-a76``, ``cortex-a72``, ``cortex-a57``,
``cortex-a53``); ``main(argv)`` is ``python -m device_agent qemu prepare|bench|info``. The parser
(``device_agent.output.parse``) fills ``BenchmarkResult.instructions``. Counts are exact with one
thread (the runner's default); with ``--num_threads`` above 1 they include the workers' waiting.
With ``--enable_op_profiling=true`` the plugin also counts per translated block, and the runner
prints per-kernel instruction counts (``Instructions per kernel (…)``: the functions of LiteRT's
library, found in its ELF symbol table, see ``kernels``). See ``userland`` for the folder's
layout and the returned environment, ``bootstrap`` for the preparation steps (no root: Debian
packages from the mirror's index, see ``debian``; parts sealed with checksums, see ``seal``),
``counter`` and ``insn_count.c`` for how regions are counted.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Names are imported on first use, so that the runner inside the emulated userland, which needs
# only ``device_agent.qemu.counter``, does not pay for argparse and subprocess under emulation.
_EXPORTS = {
    "CPUS": "cpus",
    "DEFAULT_CPU": "cpus",
    "CpuModel": "cpus",
    "MissingToolError": "errors",
    "MissingUserlandError": "errors",
    "MirrorError": "errors",
    "NoSpaceError": "errors",
    "PrepareError": "errors",
    "QemuError": "errors",
    "Userland": "userland",
    "default_dest": "userland",
    "find_userland": "userland",
    "require_userland": "userland",
    "main": "cli",
    "prepare": "bootstrap",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from device_agent.qemu.bootstrap import prepare
    from device_agent.qemu.cli import main
    from device_agent.qemu.cpus import CPUS, DEFAULT_CPU, CpuModel
    from device_agent.qemu.errors import (
        MirrorError,
        MissingToolError,
        MissingUserlandError,
        NoSpaceError,
        PrepareError,
        QemuError,
    )
    from device_agent.qemu.userland import Userland, default_dest, find_userland, require_userland


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
