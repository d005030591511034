"""The services a stream can OPEN, by name, and the shell services.

=====================================  ==================================================
``shell:CMD`` / ``exec:CMD``           raw: stdout and stderr merged, no exit status
``shell,v2[,TERM=…][,raw|pty]:CMD``    framed (1-byte id + u32 length): stdin 0, stdout 1,
                                       stderr 2, exit 3, close-stdin 4, window size 5
``sync:``                              file transfer (see ``sync``)
=====================================  ==================================================

An empty CMD is an interactive session: each line read from stdin runs in turn (there is no
terminal, so no prompt and no echo). Other services are refused with CLSE, as adbd refuses
services it does not know.
"""

from __future__ import annotations

import struct
import threading
from typing import Callable

from device_agent.emulator.device import Device
from device_agent.emulator.limits import MAX_COMMAND_LINE
from device_agent.emulator.protocol import MAX_PAYLOAD
from device_agent.emulator.shell import SH, Shell
from device_agent.emulator.streams import Service, Stream, log
from device_agent.emulator.sync import serve_sync

__all__ = ["open_service", "serve_shell"]

_STDIN, _STDOUT, _STDERR, _EXIT, _CLOSE_STDIN, _WINDOW_SIZE = range(6)
_FRAME = struct.Struct("<BI")


def open_service(device: Device) -> Callable[[str], Service | None]:
    """The service table of ``device``: maps an OPEN's service name to what serves the stream."""

    def find(name: str) -> Service | None:
        if name == "sync:":
            return lambda stream: serve_sync(device, stream)
        service, sep, command = name.partition(":")
        if len(command) > MAX_COMMAND_LINE:
            return lambda stream: _refuse_long_command(stream, service, len(command))
        options = service.split(",")
        if not sep:
            return None
        if options[0] == "shell":
            v2 = "v2" in options[1:]
            return lambda stream: serve_shell(device, stream, command, v2=v2)
        if service == "exec":
            return lambda stream: serve_shell(device, stream, command, v2=False)
        return None

    return find


def _refuse_long_command(stream: Stream, service: str, length: int) -> None:
    """A command longer than a real device's ``sh -c`` takes: say so (v2: on stderr, status 1)."""
    message = f"{SH}: command line too long: {length} characters (at most {MAX_COMMAND_LINE})\n".encode()
    log.warning("refused a %d-character command (MAX_COMMAND_LINE %d)", length, MAX_COMMAND_LINE)
    if "v2" in service.split(",")[1:]:
        stream.write(_FRAME.pack(_STDERR, len(message)) + message + _FRAME.pack(_EXIT, 1) + b"\x01")
    else:
        stream.write(message)


def serve_shell(device: Device, stream: Stream, command: str, *, v2: bool) -> None:
    """Run ``command`` (or an interactive session) in a new shell, over the raw or v2 protocol."""
    if v2:
        framer = _Framer(stream)
        shell = Shell(device, framer.sink(_STDOUT), framer.sink(_STDERR), _FramedStdin(stream))
    else:
        raw = _RawSink(stream)
        shell = Shell(device, raw, raw, _RawStdin(stream))
    stream.on_remote_close(shell.abort)
    if command.strip():
        status = shell.run(command)
    else:
        status = _interactive(shell)
    if v2:
        framer.send(_EXIT, bytes([status & 0xFF]))


def _interactive(shell: Shell) -> int:
    """Run each line read from stdin. Lines are cut as the data arrives (each byte is looked at
    once); a line longer than MAX_COMMAND_LINE ends the session with a message, as the line would
    never fit a real shell's ``sh -c`` either."""
    pending = bytearray()
    while not shell.exited:
        chunk = shell.stdin.read()
        if not chunk:
            break
        start = 0
        while not shell.exited:
            newline = chunk.find(b"\n", start)
            if newline < 0:
                break
            pending += chunk[start:newline]
            start = newline + 1
            line, pending = bytes(pending), bytearray()
            shell.run(line.decode("utf-8", "replace"))
        pending += chunk[start:]
        if len(pending) > MAX_COMMAND_LINE:
            shell.stderr.write(f"{SH}: line too long: more than {MAX_COMMAND_LINE} characters without a newline "
                               "(MAX_COMMAND_LINE); session closed\n".encode())
            log.warning("shell session closed: a stdin line went over %d bytes (MAX_COMMAND_LINE)", MAX_COMMAND_LINE)
            return 2
    if pending.strip() and not shell.exited:
        shell.run(pending.decode("utf-8", "replace"))
    return shell.status


class _RawSink:
    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def write(self, data: bytes) -> None:
        self._stream.write(data)


class _RawStdin:
    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def read(self) -> bytes:
        return self._stream.read() or b""


class _Framer:
    """Writes shell v2 frames; one lock keeps the frames of stdout's and stderr's pumps whole."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, kind: int, data: bytes) -> None:
        with self._lock:
            self._stream.write(_FRAME.pack(kind, len(data)) + data)

    def sink(self, kind: int) -> _FrameSink:
        return _FrameSink(self, kind)


class _FrameSink:
    def __init__(self, framer: _Framer, kind: int) -> None:
        self._framer = framer
        self._kind = kind

    def write(self, data: bytes) -> None:
        if data:
            self._framer.send(self._kind, data)


class _FramedStdin:
    """Reads shell v2 frames from the host: stdin data until close-stdin; window sizes ignored."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._closed = False

    def read(self) -> bytes:
        while not self._closed:
            if len(self._buffer) >= _FRAME.size:
                kind, length = _FRAME.unpack_from(self._buffer)
                if length > MAX_PAYLOAD:  # not a frame adb would send: stop reading stdin
                    self._closed = True
                    break
                if len(self._buffer) >= _FRAME.size + length:
                    data = bytes(self._buffer[_FRAME.size:_FRAME.size + length])
                    del self._buffer[:_FRAME.size + length]
                    if kind == _CLOSE_STDIN:
                        self._closed = True
                    elif kind == _STDIN and data:
                        return data
                    continue
            chunk = self._stream.read()
            if chunk is None:
                self._closed = True
            else:
                self._buffer += chunk
        return b""
