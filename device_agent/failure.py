"""The runner's failure: the ``ERROR: …`` lines benchmark_model prints before ``Benchmarking failed.``.

``BenchmarkFailed`` is a ``RunnerError``; the whole tree of the agent's errors is on the page of
``device_agent.errors``.
"""

from __future__ import annotations

from device_agent.errors import RunnerError
from device_agent.output import FAILED

__all__ = ["BenchmarkFailed", "message_lines"]


class BenchmarkFailed(RunnerError):
    """The run failed; ``lines`` are the ``ERROR:`` messages benchmark_model would print for it."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else FAILED)
        self.lines = lines


def message_lines(exc: BaseException) -> list[str]:
    """An exception's message as ``ERROR:`` lines: its non-blank lines, or its type's name."""
    return [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
