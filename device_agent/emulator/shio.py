"""The plumbing shared by the emulated shell and its commands: byte sinks and sources, and a call."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Callable, Protocol

if TYPE_CHECKING:
    from device_agent.emulator.sandbox import Sandbox
    from device_agent.emulator.shell import Shell

__all__ = ["Sink", "Source", "BytesSource", "NullSink", "BufferSink", "FileSink", "read_all", "Call", "Builtin", "ExitShell"]


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class Source(Protocol):
    def read(self) -> bytes:
        """The next chunk of input; b"" at its end."""
        ...


class BytesSource:
    """Input known in full: a pipe's buffered output, a redirected file or nothing."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self._taken = False

    def read(self) -> bytes:
        if self._taken:
            return b""
        self._taken = True
        return self.data


class NullSink:
    def write(self, data: bytes) -> None:
        pass


class BufferSink:
    def __init__(self) -> None:
        self._buffer = io.BytesIO()

    def write(self, data: bytes) -> None:
        self._buffer.write(data)

    def getvalue(self) -> bytes:
        return self._buffer.getvalue()


class FileSink:
    """A redirection's file; writes from the two pumps of one process are serialized."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self.file.write(data)


def read_all(source: Source) -> bytes:
    chunks = []
    while chunk := source.read():
        chunks.append(chunk)
    return b"".join(chunks)


class ExitShell(Exception):
    """``exit N``, or the host went away: stop the script with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Call:
    """One command as the shell runs it: its name, arguments, NAME=value prefixes and streams."""

    shell: Shell
    name: str
    args: list[str]
    env: dict[str, str]
    stdin: Source
    stdout: Sink
    stderr: Sink

    @property
    def sandbox(self) -> Sandbox:
        return self.shell.device.sandbox

    @property
    def cwd(self) -> str:
        return self.shell.cwd

    def out(self, text: str) -> None:
        self.stdout.write(text.encode("utf-8", "surrogateescape"))

    def error(self, message: str, status: int = 1) -> int:
        """Print ``NAME: message`` on stderr and give ``status``, as toybox commands do."""
        self.stderr.write(f"{self.name}: {message}\n".encode("utf-8", "surrogateescape"))
        return status


Builtin = Callable[[Call], int]
