"""The plumbing shared by the emulated shell and its commands: byte sinks and sources, and a call."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Callable, Protocol

if TYPE_CHECKING:
    from device_agent.emulator.sandbox import Sandbox
    from device_agent.emulator.shell import Shell

__all__ = ["Sink", "Source", "BytesSource", "NullSink", "BufferSink", "FileSink", "FileSizeExceeded", "read_all", "Call", "Builtin", "ExitShell"]


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


class FileSizeExceeded(Exception):
    """A write past the shell's ``ulimit -f``: where a kernel sends SIGXFSZ to the writer."""


class FileSink:
    """A redirection's file; writes from the two pumps of one process are serialized.

    ``limit`` is the shell's ``ulimit -f`` in bytes: the write that would pass it writes up to it
    and raises :class:`FileSizeExceeded`. ``room`` is what the device's storage has left: past it
    data is dropped and ``full`` set, as a kernel's ENOSPC that the writing program ignores.
    """

    def __init__(self, file: BinaryIO, limit: int | None = None, room: int | None = None) -> None:
        self.file = file
        self.limit = limit
        self.room = room
        self.full = False
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            if self.limit is not None and self.file.tell() + len(data) > self.limit:
                self._store(data[: max(0, self.limit - self.file.tell())])
                raise FileSizeExceeded(f"file size limit of {self.limit} bytes exceeded")
            self._store(data)

    def _store(self, data: bytes) -> None:
        if self.room is not None:
            if len(data) > self.room:
                data, self.full = data[: self.room], True
            self.room -= len(data)
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
    cpus: frozenset[int] | None = None  # the affinity ``taskset`` gave it (a profiled device's CPU numbers)

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
