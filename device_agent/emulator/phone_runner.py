"""benchmark_model on a profiled device: the device agent's runner, padded to the phone's speed.

Started instead of ``python -m device_agent bench`` by a device run with ``--profile``. Each timed
invoke is followed by a wait of ``(factor − 1) ×`` its own time, where factor is the fastest
cluster's speed over the speed of the cluster this runner is on now (``phone.Phone`` rewrites it in
``$LAB_PHONE_STATE/state.json`` as the die heats and the caps move). The padding falls inside the
runner's clock reads, so the printed times slow down as a throttled phone's would — and the output
says so in ``lab emulated phone:`` lines, so an emulated slowdown is never taken for a real one.

``$LAB_PHONE_CPUS`` is the affinity ``taskset`` gave it (the device's CPU numbers; unset: all).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from device_agent.facts import parse_cpu_list

__all__ = ["main"]

_REREAD_NS = 20_000_000  # the state file is read at most every 20 ms
PREFIX = "lab emulated phone:"


_SPIN_NS = 1_000_000  # a sleep overshoots by tens of µs: the last millisecond is waited by spinning


def _wait_ns(ns: int) -> None:
    """Wait ``ns`` nanoseconds accurately: sleep most of a long wait, spin the rest."""
    deadline = time.perf_counter_ns() + ns
    if ns > _SPIN_NS:
        time.sleep((ns - _SPIN_NS) / 1e9)
    while time.perf_counter_ns() < deadline:
        pass


class _Padding:
    """The per-invoke sleep, from the state file, and what it added."""

    def __init__(self, state_dir: str, cpus: set[int] | None) -> None:
        self.path = os.path.join(state_dir, "state.json")
        self.cpus = cpus
        self.factor = 1.0
        self.read_at = 0
        self.invokes = 0
        self.padded_ns = 0
        self.max_factor = 1.0
        self.min_factor = float("inf")

    def current(self) -> float:
        now = time.perf_counter_ns()
        if now - self.read_at >= _REREAD_NS:
            self.read_at = now
            try:
                with open(self.path) as f:
                    state = json.load(f)
                speeds = [c["speed"] for c in state["clusters"] if self.cpus is None or self.cpus & set(c["cpus"])]
                self.factor = max(1.0, state["ref"] / max(speeds)) if speeds else 1.0
            except (OSError, ValueError, KeyError):
                pass  # the previous factor stays: the emulator is rewriting the file
        return self.factor

    def wrap(self, invoke: Callable[[], object]) -> Callable[[], object]:
        clock = time.perf_counter_ns

        def padded() -> object:
            t0 = clock()
            result = invoke()
            spent = clock() - t0
            factor = self.current()
            self.invokes += 1
            self.max_factor = max(self.max_factor, factor)
            self.min_factor = min(self.min_factor, factor)
            if factor > 1.0:
                pad = int(spent * (factor - 1.0))
                _wait_ns(pad)
                self.padded_ns += pad
            return result

        return padded


def main(argv: list[str]) -> int:
    """Run the device agent's runner with padded invokes; print what the padding did."""
    from device_agent import bench

    state_dir = os.environ.get("LAB_PHONE_STATE", "")
    cpu_text = os.environ.get("LAB_PHONE_CPUS") or None
    padding = _Padding(state_dir, set(parse_cpu_list(cpu_text)) if cpu_text else None)
    original = bench.run_loop

    def run_loop(invoke: Callable[[], object], *args: Any, **kwargs: Any) -> Any:
        return original(padding.wrap(invoke), *args, **kwargs)

    bench.run_loop = run_loop  # type: ignore[assignment]
    profile = os.environ.get("LAB_PHONE_PROFILE", "?")
    print(f"{PREFIX} profile {profile}; runner affinity: cpus {cpu_text or 'all'}", flush=True)
    status = bench.main(argv)
    if padding.invokes:
        print(f"{PREFIX} invokes padded with sleep to the simulated clock: {padding.invokes} invokes, "
              f"{padding.padded_ns / 1e6:.1f} ms added, slowdown x{padding.min_factor:.2f}-x{padding.max_factor:.2f}",
              flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
