"""Timing invokes: benchmark_model's measuring loop, its statistics, and the clock's own cost."""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Sequence

from device_agent.failure import BenchmarkFailed, message_lines
from device_agent.output import RunStats

__all__ = ["Marks", "NO_MARKS", "do_nothing", "run_loop", "summarize", "timer_overhead_us"]

Marks = tuple[Callable[[], object], Callable[[], object]]
"""(start, stop): called just outside the clock reads around each timed invoke."""


def do_nothing() -> None:
    return None


NO_MARKS: Marks = (do_nothing, do_nothing)


def summarize(samples_ns: Sequence[int]) -> RunStats:
    """Per-invoke times in ns → benchmark_model's statistics in µs.

    std is the population standard deviation (as tflite's ``Stat``); p5, median and p95 are
    linear interpolations between order statistics (numpy's default).
    """
    import numpy as np

    if not samples_ns:
        return RunStats(count=0, curr_us=float("nan"))
    us = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    p5, median, p95 = (float(x) for x in np.percentile(us, [5, 50, 95]))
    return RunStats(
        count=len(us),
        curr_us=float(us[-1]),
        first_us=float(us[0]),
        min_us=float(us.min()),
        max_us=float(us.max()),
        avg_us=float(us.mean()),
        std_us=float(us.std()),
        p5_us=p5,
        median_us=median,
        p95_us=p95,
    )


def timer_overhead_us(iterations: int = 20_000) -> float:
    """Median time, in µs, that ``clock(); call(); clock()`` measures around a call that does nothing.

    Every per-invoke sample includes this much that is not the model's work.
    """
    clock = time.perf_counter_ns

    def nothing() -> None:
        return None

    deltas = array("q", bytes(8 * iterations))
    for i in range(iterations):
        t0 = clock()
        nothing()
        deltas[i] = clock() - t0
    ordered = sorted(deltas)
    return ordered[iterations // 2] / 1000.0


def run_loop(
    invoke: Callable[[], object],
    min_runs: int,
    min_secs: float,
    max_secs: float,
    delay_s: float,
    marks: Marks = NO_MARKS,
) -> array[int]:
    """benchmark_model's ``Run``: at least min_runs runs and min_secs, at most max_secs; each invoke's ns.

    ``marks`` (start, stop) enclose each timed invoke outside the clock reads: the instruction
    counter's markers, which so never add to the times.

    Raises:
        BenchmarkFailed: an invoke raised (its message, then ``Failed to invoke the interpreter``).
    """
    clock = time.perf_counter_ns
    samples: array[int] = array("q")
    append = samples.append
    start, stop = marks
    now = clock()
    min_finish = now + int(min_secs * 1e9)
    max_finish = now + int(max_secs * 1e9)
    run = 0
    while (run < min_runs or now < min_finish) and now <= max_finish:
        start()
        t0 = clock()
        try:
            invoke()
        except (RuntimeError, ValueError) as exc:
            raise BenchmarkFailed(*message_lines(exc), "Failed to invoke the interpreter") from exc
        now = clock()
        stop()
        append(now - t0)
        if delay_s > 0:
            time.sleep(delay_s)
            now = clock()
        run += 1
    return samples
