"""Running commands on a device: exit code, a hard deadline, and what it printed even when it fails.

adbutils' ``shell2`` gives the exit code, but its timeout applies to each socket read (a command
that keeps printing never times out) and a timeout or a dropped device loses the output read so
far. Benchmark trials need both: a total deadline, and the raw output kept as data when a trial
fails. So this module drives adbutils' transport (``open_transport``) itself and reads the
``shell,v2`` frames (1-byte id, u32 length: 1 stdout, 2 stderr, 3 exit) until a deadline, falling
back to ``shell:`` plus adbutils' ``; echo X4EXIT:$?`` trailer on devices without shell_v2.
Commands given as a list are quoted with shlex, so user-supplied names reach the device intact.
"""

from __future__ import annotations

import re
import shlex
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import adbutils

from host.devices.errors import DeviceGoneError, OutputTooLargeError, ShellTimeoutError
from host.errors import DeviceError

__all__ = ["ShellResult", "DeviceShell", "command_line", "run_sections"]

_EXIT_MARK = b"X4EXIT:"
_SECTION_MARK = "@@lab@@"
_SECTION_RE = re.compile(re.escape(_SECTION_MARK) + r"(\d+)\r?\n")
_DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ShellResult:
    """One finished command. On devices without shell_v2, stderr arrives mixed into stdout."""

    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr: what a person would want to see of a failure."""
        if not self.stderr:
            return self.stdout
        return f"{self.stdout}{'' if self.stdout.endswith(chr(10)) or not self.stdout else chr(10)}{self.stderr}"


def command_line(command: str | Sequence[str]) -> str:
    """A device shell command line: a list is quoted word by word; a string is taken as written."""
    if isinstance(command, str):
        return command
    return shlex.join(str(part) for part in command)


class _Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.at = time.monotonic() + timeout_s

    def remaining(self) -> float:
        return self.at - time.monotonic()


class DeviceShell:
    """Shell and file transfer for one device serial, with adbutils errors turned into lab errors."""

    def __init__(self, client: adbutils.AdbClient, serial: str, v2: bool | None = None) -> None:
        """``v2``: None asks the device whether it has shell_v2; False forces the old ``shell:``."""
        self.serial = serial
        self.device = client.device(serial)
        self._v2 = v2

    # -- transport ---------------------------------------------------------------------------

    def _gone(self, exc: BaseException, what: str, output: str = "") -> DeviceGoneError:
        return DeviceGoneError(f"device {self.serial} stopped answering during {what}: {_reason(exc)}", self.serial, output)

    def supports_v2(self) -> bool:
        """Whether the device advertises shell_v2 (separate stdout/stderr and a real exit code)."""
        if self._v2 is None:
            try:
                features = self.device.get_features()
            except (adbutils.AdbError, OSError, EOFError) as exc:
                raise self._gone(exc, "a features request") from exc
            self._v2 = "shell_v2" in features.split(",")
        return self._v2

    def _open(self, service: str, deadline: _Deadline, what: str) -> adbutils.AdbConnection:
        conn: adbutils.AdbConnection | None = None
        try:
            conn = self.device.open_transport(timeout=max(deadline.remaining(), 0.001))
            conn.send_command(service)
            conn.check_okay()
        except (adbutils.AdbError, OSError, EOFError) as exc:
            if conn is not None:
                _close(conn)
            if isinstance(exc, adbutils.AdbTimeout):
                message = f"{what} on {self.serial}: no answer in {deadline.timeout_s:g} s"
                raise ShellTimeoutError(message, self.serial) from exc
            raise self._gone(exc, what) from exc
        return conn

    def run(self, command: str | Sequence[str], timeout: float = _DEFAULT_TIMEOUT_S,
            max_output: int | None = None) -> ShellResult:
        """Runs ``command`` and waits at most ``timeout`` seconds in total.

        ``max_output`` bounds the bytes read (stdout and stderr together), so a command that prints
        without end cannot grow the host's memory with it.

        Raises:
            ShellTimeoutError: the deadline passed (``.output`` holds what was printed so far).
            DeviceGoneError: the device vanished or the stream broke before an exit code came
                (``.output`` holds what was printed so far).
            OutputTooLargeError: more than ``max_output`` bytes came (``.output`` holds the first ones).
        """
        line = command_line(command)
        deadline = _Deadline(timeout)
        if self.supports_v2():
            return self._run_v2(line, deadline, max_output)
        return self._run_v1(line, deadline, max_output)

    def _too_large(self, line: str, max_output: int, data: bytes | bytearray) -> OutputTooLargeError:
        return OutputTooLargeError(
            f"`{_short(line)}` on {self.serial} printed more than {max_output:,} bytes; stopped reading",
            self.serial, _text(data[:max_output]),
        )

    def _run_v2(self, line: str, deadline: _Deadline, max_output: int | None) -> ShellResult:
        out, err = bytearray(), bytearray()
        conn = self._open(f"shell,v2:{line}", deadline, f"`{_short(line)}`")
        try:
            while True:
                header = _read_exact(conn.conn, 5, deadline)
                length = int.from_bytes(header[1:5], "little")
                data = _read_exact(conn.conn, length, deadline) if length else b""  # a frame: ≤ adb's max payload
                if max_output is not None and header[0] in (1, 2) and len(out) + len(err) + length > max_output:
                    raise self._too_large(line, max_output, out + err + data)
                if header[0] == 1:
                    out += data
                elif header[0] == 2:
                    err += data
                elif header[0] == 3:
                    return ShellResult(line, data[0] if data else 255, _text(out), _text(err))
        except socket.timeout as exc:
            raise ShellTimeoutError(
                f"`{_short(line)}` on {self.serial} did not finish in {deadline.timeout_s:g} s", self.serial,
                _text(out) + _text(err),
            ) from exc
        except (OSError, EOFError) as exc:
            raise self._gone(exc, f"`{_short(line)}`", _text(out) + _text(err)) from exc
        finally:
            _close(conn)

    def _run_v1(self, line: str, deadline: _Deadline, max_output: int | None) -> ShellResult:
        data = bytearray()
        conn = self._open(f"shell:{line}; echo {_EXIT_MARK.decode()}$?", deadline, f"`{_short(line)}`")
        limit = None if max_output is None else max_output + len(_EXIT_MARK) + 8  # room for the trailer
        try:
            while True:
                conn.conn.settimeout(max(deadline.remaining(), 0.001))
                chunk = conn.conn.recv(65536)
                if not chunk:
                    break
                data += chunk
                if limit is not None and max_output is not None and len(data) > limit:
                    raise self._too_large(line, max_output, data)
        except socket.timeout as exc:
            raise ShellTimeoutError(
                f"`{_short(line)}` on {self.serial} did not finish in {deadline.timeout_s:g} s", self.serial, _text(data)
            ) from exc
        except OSError as exc:
            raise self._gone(exc, f"`{_short(line)}`", _text(data)) from exc
        finally:
            _close(conn)
        mark = data.rfind(_EXIT_MARK)
        code = data[mark + len(_EXIT_MARK) :].strip() if mark >= 0 else b""
        if not code.isdigit():
            if self._still_here():  # the command ended the shell itself (`exit`) before the trailer ran
                raise DeviceError(
                    f"`{_short(line)}` on {self.serial} ended the shell before its exit code could be read "
                    "(without shell_v2 a command must not call `exit`)",
                    self.serial,
                )
            raise self._gone(EOFError("the stream ended before the exit code"), f"`{_short(line)}`", _text(data))
        return ShellResult(line, int(code), _text(data[:mark]), "")

    # -- files -------------------------------------------------------------------------------

    def push(self, local: Path, remote: str, mode: int) -> int:
        """Copies ``local`` to ``remote`` over sync (the device writes it under a temporary name first)."""
        try:
            return self.device.sync.push(local, remote, mode=mode, check=True)
        except (adbutils.AdbError, OSError, EOFError) as exc:
            if isinstance(exc, adbutils.AdbError) and self._still_here():
                message = f"push of {local.name} to {self.serial}:{remote} failed: {_reason(exc)}"
                raise DeviceError(message, self.serial) from exc
            raise self._gone(exc, f"the push of {local.name}") from exc

    def read_file(self, remote: str) -> bytes:
        """The content of a device file.

        Raises:
            DeviceError: the file cannot be read (missing, no permission).
            DeviceGoneError: the device vanished.
        """
        try:
            return self.device.sync.read_bytes(remote)
        except (adbutils.AdbError, OSError, EOFError) as exc:
            if isinstance(exc, adbutils.AdbError) and self._still_here():
                raise DeviceError(f"cannot read {remote} on {self.serial}: {_reason(exc)}", self.serial) from exc
            raise self._gone(exc, f"reading {remote}") from exc

    def _still_here(self) -> bool:
        try:
            return self.device.get_state() == "device"
        except (adbutils.AdbError, OSError, EOFError):
            return False


def run_sections(
    shell: DeviceShell, commands: Sequence[str | Sequence[str]], timeout: float = _DEFAULT_TIMEOUT_S,
    max_output: int | None = None,
) -> list[str]:
    """Runs several commands in one round trip; returns each one's stdout, in order, as printed.

    Each command is preceded by an ``echo`` of a marker, so a command that fails or prints nothing
    still gets its (empty) slot; its stderr is not in its slot on shell_v2 devices.
    """
    parts: list[str] = []
    for index, command in enumerate(commands):
        parts.append(f"echo {_SECTION_MARK}{index}")
        parts.append(command_line(command))
    result = shell.run(" ; ".join(parts), timeout=timeout, max_output=max_output)
    slots = [""] * len(commands)
    pieces = _SECTION_RE.split(result.stdout)
    for i in range(1, len(pieces) - 1, 2):
        index = int(pieces[i])
        if 0 <= index < len(slots):
            slots[index] = pieces[i + 1]
    return slots


def _read_exact(sock: socket.socket, n: int, deadline: _Deadline) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        sock.settimeout(remaining)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("the device closed the stream before the command finished")
        buf += chunk
    return bytes(buf)


def _close(conn: adbutils.AdbConnection) -> None:
    """Closes the stream at once (adbutils' close() sleeps 10 ms after a half-close; the device
    side ends its command when the stream closes either way)."""
    try:
        conn.conn.close()
    except (OSError, adbutils.AdbError):
        pass


def _text(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")


def _short(line: str, limit: int = 80) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
