"""What every connection and service of one emulated device shares: its file system, properties
and the real processes its shell started (so that shutting down can stop them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from device_agent.emulator.props import FEATURES
from device_agent.emulator.sandbox import Sandbox

if TYPE_CHECKING:
    from device_agent.emulator.confine import Confinement
    from device_agent.emulator.phone import Phone

__all__ = ["Device", "ProcessRegistry", "Runner", "NATIVE_RUNNER", "PHONE_RUNNER"]


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
    """How the shell's built-in benchmark_model starts: argv before the flags, and extra environment.

    ``address_space`` False: no RLIMIT_AS for it (QEMU reserves the guest's address space at start).
    """

    head: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    address_space: bool = True


# -I: no PYTHON* variables, no user site, nothing from the working folder (the sandbox) on sys.path;
# the device agent is imported from where this one was, given as the first argument.
_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from device_agent.__main__ import main; "
         "sys.exit(main(['bench', *sys.argv[1:]]))")
_AGENT_HOME = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NATIVE_RUNNER = Runner((sys.executable, "-I", "-u", "-c", _BOOT, _AGENT_HOME))
"""The device agent's runner on this machine's own CPU, its imports from the agent's own install."""
_PHONE_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from device_agent.emulator.phone_runner import main; "
               "sys.exit(main(sys.argv[1:]))")
PHONE_RUNNER = Runner((sys.executable, "-I", "-u", "-c", _PHONE_BOOT, _AGENT_HOME))
"""The same runner on a profiled device, its invokes padded to the phone's speed (``phone_runner``);
the device adds its state folder and profile to the environment."""


@dataclass
class Device:
    sandbox: Sandbox
    props: dict[str, str]
    features: tuple[str, ...] = FEATURES
    runner: Runner = NATIVE_RUNNER
    processes: ProcessRegistry = field(default_factory=ProcessRegistry)
    confinement: Confinement | None = None  # None: unconfined (in-process tests of the shell)
    phone: Phone | None = None  # a phone profile's live state (--profile); None: the host's own facts
