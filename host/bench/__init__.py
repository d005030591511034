"""Benchmarking: checking models, planning interleaved trials, running them on devices in
parallel, and the statistics over them (``stats``, ``summary``).

The runner's names (``run_bench`` and its records) load on first use (PEP 562): importing the
package, or ``host.bench.stats`` for a report, must not pull in adb and the device layer.
"""

from __future__ import annotations

import typing

from host.bench.models import model_file
from host.bench.plan import PlannedTrial, plan_trials

if typing.TYPE_CHECKING:
    from host.bench.runner import BenchOutcome, BenchProgress, run_bench

__all__ = ["model_file", "PlannedTrial", "plan_trials", "BenchOutcome", "BenchProgress", "run_bench"]

_RUNNER_EXPORTS = ("BenchOutcome", "BenchProgress", "run_bench")


def __getattr__(name: str) -> object:
    if name in _RUNNER_EXPORTS:
        from host.bench import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_RUNNER_EXPORTS})
