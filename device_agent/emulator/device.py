"""What every connection and service of one emulated device shares: its file system, properties
and the real processes its shell started (so that shutting down can stop them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from device_agent.emulator.props import FEATURES
from device_agent.emulator.sandbox import Sandbox

__all__ = ["Device", "ProcessRegistry", "Runner", "NATIVE_RUNNER"]


class ProcessRegistry:
    """Running child processes, each in its own process group."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[bytes]] = set()

    def add(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._processes.add(process)

    def discard(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._processes.discard(process)

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """Kill a child's whole process group (it was started with ``start_new_session``)."""
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill_all(self) -> None:
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            self.kill(process)


@dataclass(frozen=True)
class Runner:
    """How the shell's built-in benchmark_model starts: argv before the flags, and extra environment."""

    head: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


NATIVE_RUNNER = Runner((sys.executable, "-m", "device_agent", "bench"), (("PYTHONUNBUFFERED", "1"),))
"""The device agent's runner on this machine's own CPU."""


@dataclass
class Device:
    sandbox: Sandbox
    props: dict[str, str]
    features: tuple[str, ...] = FEATURES
    runner: Runner = NATIVE_RUNNER
    processes: ProcessRegistry = field(default_factory=ProcessRegistry)
