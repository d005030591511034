"""Starting an emulated device in a child process and waiting for its ``listening on`` line.

For tests, benchmarks and the host's ``lab emulator start``::

    device = spawn(root=Path("/tmp/dev"), log_path=Path("/tmp/dev.log"))
    ...  # adb connect 127.0.0.1:{device.port}
    device.stop()
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from device_agent.errors import AgentError

__all__ = ["EmulatorStartError", "DeviceProcess", "spawn"]


class EmulatorStartError(AgentError):
    """The emulated device did not start listening; the message holds what it printed."""


@dataclass
class DeviceProcess:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    root: Path | None  # None: a temporary folder the device removes when it stops
    log_path: Path | None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def log_text(self) -> str:
        """What the device logged so far (its stderr), when it logs to a file."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def spawn(
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    root: Path | None = None,
    model: str | None = None,
    log_path: Path | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = 30.0,
    detach: bool = False,
) -> DeviceProcess:
    """Start ``python -m device_agent emulator`` and return once it listens.

    Its stderr goes to ``log_path`` (or is inherited). ``detach`` starts it in a session of its
    own, so that it outlives the caller and the caller's Ctrl-C (``lab emulator start``).

    Raises:
        EmulatorStartError: it exited, or printed something else, or did not listen in ``timeout`` s.
    """
    args = [sys.executable, "-m", "device_agent", "emulator", "--port", str(port), "--host", host, *extra_args]
    if root is not None:
        args += ["--root", str(root)]
    if model is not None:
        args += ["--model", model]
    log = open(log_path, "ab") if log_path else None
    try:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=detach
        )
    finally:
        if log:
            log.close()
    line = _first_line(process, timeout)
    prefix = "listening on "
    if not line.startswith(prefix):
        process.kill()
        process.wait()
        details = log_path.read_text(errors="replace").strip() if log_path else ""
        raise EmulatorStartError(
            f"emulated device did not start (exit status {process.returncode}): {line.strip()!r} {details}".strip()
        )
    address = line[len(prefix):].strip()
    return DeviceProcess(process, host, int(address.rsplit(":", 1)[1]), root, log_path)


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The first stdout line, or what there was when the process ended or the time ran out."""
    if process.stdout is None:
        return ""
    fd = process.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")
