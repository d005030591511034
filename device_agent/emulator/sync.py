"""The ``sync:`` service: file transfer (adb push/pull, adbutils' sync) over one stream.

Each request is a 4-byte id, a little-endian u32 and, for path requests, that many bytes of path:

====  ===========================================================================================
STAT  lstat → ``STAT`` mode size mtime (u32 each; all 0 if missing)
STA2  stat → ``STA2`` error dev ino mode nlink uid gid size atime mtime ctime (error = errno)
LST2  as STA2, without following a final symbolic link
LIST  ``DENT`` mode size mtime namelen name, per entry (``.`` and ``..`` too), then ``DONE``
SEND  "path,mode" (split at the *last* comma), then ``DATA`` len bytes (≤ 64 KiB) …, then
      ``DONE`` mtime → ``OKAY`` 0, or ``FAIL`` len message
RECV  → ``DATA`` len bytes … ``DONE`` 0, or ``FAIL`` len message
QUIT  ends the service
====  ===========================================================================================

The requests arrive split across WRTE payloads at arbitrary points, so they are read through a
buffer. A FAIL ends the service, as it does in adbd. A SEND writes to a temporary name and renames
it on DONE: a push cut off midway leaves nothing under the final name.
"""

from __future__ import annotations

import stat
import struct

from device_agent.emulator.device import Device
from device_agent.emulator.sandbox import Sandbox, SandboxError
from device_agent.emulator.streams import Stream

__all__ = ["serve_sync", "SYNC_DATA_MAX"]

SYNC_DATA_MAX = 64 * 1024
_MAX_PATH = 1024
_ID_LEN = struct.Struct("<4sI")
_STAT_V1 = struct.Struct("<4sIII")
_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")
_DENT = struct.Struct("<4sIIII")
_U32 = 0xFFFFFFFF


class _SyncEnded(Exception):
    """The host closed the stream; ``got`` bytes of the item being read had arrived."""

    def __init__(self, got: int) -> None:
        super().__init__(got)
        self.got = got


class _Reader:
    """Exact-length reads over the stream's WRTE payloads."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._chunk = memoryview(b"")

    def read_exact(self, n: int) -> bytes:
        if len(self._chunk) >= n:
            data = bytes(self._chunk[:n])
            self._chunk = self._chunk[n:]
            return data
        parts: list[memoryview] = []
        need = n
        while need:
            if not self._chunk:
                payload = self._stream.read()
                if payload is None:
                    raise _SyncEnded(n - need)
                self._chunk = memoryview(payload)
                continue
            take = min(need, len(self._chunk))
            parts.append(self._chunk[:take])
            self._chunk = self._chunk[take:]
            need -= take
        return b"".join(parts)


class _Writer:
    """Collects replies into WRTEs of exactly maxdata bytes (the rest waits for :meth:`flush`)."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data
        size = self._stream.max_payload
        if len(self._buffer) >= size:
            full = len(self._buffer) // size * size
            self._stream.write(bytes(self._buffer[:full]))
            del self._buffer[:full]

    def flush(self) -> None:
        if self._buffer:
            data, self._buffer = self._buffer, bytearray()
            self._stream.write(data)

    def fail(self, message: str) -> bool:
        """Send FAIL with ``message``; returns False (the service ends)."""
        raw = message.encode("utf-8", "replace")
        self.write(_ID_LEN.pack(b"FAIL", len(raw)) + raw)
        return False


def serve_sync(device: Device, stream: Stream) -> None:
    reader, writer = _Reader(stream), _Writer(stream)
    try:
        while _serve_request(device.sandbox, reader, writer):
            writer.flush()
    except _SyncEnded:
        pass
    writer.flush()


def _serve_request(sandbox: Sandbox, reader: _Reader, writer: _Writer) -> bool:
    """Serve one request; False when the service must end (QUIT, FAIL, the host closed)."""
    try:
        kind, length = _ID_LEN.unpack(reader.read_exact(_ID_LEN.size))
    except _SyncEnded as e:
        if e.got:
            raise
        return False
    if kind == b"QUIT":
        return False
    if kind not in (b"STAT", b"STA2", b"LST2", b"LIST", b"SEND", b"RECV"):
        return writer.fail(f"unknown sync command {kind!r}")
    if length > _MAX_PATH:
        return writer.fail(f"path too long: {length} bytes (at most {_MAX_PATH})")
    try:
        path = reader.read_exact(length).decode("utf-8")
    except UnicodeDecodeError:
        return writer.fail("path is not valid UTF-8")
    if kind == b"STAT":
        writer.write(_stat_v1(sandbox, path))
    elif kind in (b"STA2", b"LST2"):
        writer.write(_stat_v2(sandbox, path, kind))
    elif kind == b"LIST":
        _list(sandbox, path, writer)
    elif kind == b"RECV":
        return _recv(sandbox, path, writer)
    else:
        return _send(sandbox, path, reader, writer)
    return True


def _stat_v1(sandbox: Sandbox, path: str) -> bytes:
    try:
        entry = sandbox.stat(path, follow=False)
    except SandboxError:
        return _STAT_V1.pack(b"STAT", 0, 0, 0)
    return _STAT_V1.pack(b"STAT", entry.mode, entry.size & _U32, entry.mtime & _U32)


def _stat_v2(sandbox: Sandbox, path: str, kind: bytes) -> bytes:
    try:
        e = sandbox.stat(path, follow=kind == b"STA2")
    except SandboxError as error:
        return _STAT_V2.pack(kind, error.errno, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return _STAT_V2.pack(kind, 0, e.dev, e.ino, e.mode, e.nlink, e.uid & _U32, e.gid & _U32, e.size,
                         e.atime, e.mtime, e.ctime)


def _list(sandbox: Sandbox, path: str, writer: _Writer) -> None:
    """DENT per entry, then DONE; a folder that cannot be listed is empty, as in adbd."""
    try:
        here = sandbox.stat(path)
        parent = sandbox.stat(sandbox.normalize(path + "/.."))
        entries = [(".", here), ("..", parent), *sandbox.listdir(path)]
    except SandboxError:
        entries = []
    for name, entry in entries:
        raw = name.encode("utf-8", "surrogateescape")
        writer.write(_DENT.pack(b"DENT", entry.mode, entry.size & _U32, entry.mtime & _U32, len(raw)) + raw)
    writer.write(_DENT.pack(b"DONE", 0, 0, 0, 0))


def _recv(sandbox: Sandbox, path: str, writer: _Writer) -> bool:
    try:
        with sandbox.open_read(path) as f:
            while chunk := f.read(SYNC_DATA_MAX):
                writer.write(_ID_LEN.pack(b"DATA", len(chunk)) + chunk)
    except SandboxError as e:
        return writer.fail(f"open failed: {e}")
    except OSError as e:
        return writer.fail(f"read failed: {path}: {e.strerror}")
    writer.write(_ID_LEN.pack(b"DONE", 0))
    return True


def _send(sandbox: Sandbox, spec: str, reader: _Reader, writer: _Writer) -> bool:
    path, comma, mode_text = spec.rpartition(",")
    mode = int(mode_text) if comma and mode_text.isdigit() else -1
    error: str | None = None
    if mode < 0:
        error = f"bad SEND request {spec!r}: expected 'path,mode'"
    elif stat.S_ISLNK(mode):
        error = f"{path}: symbolic links cannot be pushed to the emulated device"
    elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        error = f"{path}: only regular files can be pushed (mode {mode:o})"
    pending = None
    if error is None:
        try:
            pending = sandbox.begin_write(path)
        except SandboxError as e:
            error = f"couldn't create file {e}"
    # On an error, keep reading (and dropping) the data the host already sent until its DONE,
    # then FAIL: the host reads replies only after sending everything.
    try:
        while True:
            kind, length = _ID_LEN.unpack(reader.read_exact(_ID_LEN.size))
            if kind == b"DATA":
                if length > SYNC_DATA_MAX:
                    return writer.fail(f"oversize DATA message: {length} bytes (at most {SYNC_DATA_MAX})")
                data = reader.read_exact(length)
                if pending is not None:
                    try:
                        pending.write(data)
                    except OSError as e:
                        error = f"write failed: {path}: {e.strerror}"
                        pending.discard()
                        pending = None
            elif kind == b"DONE":
                if pending is not None:
                    try:
                        pending.commit(mode & 0o777, length)
                    except OSError as e:
                        error = f"couldn't finish {path}: {e.strerror}"
                        pending.discard()
                    pending = None
                if error is not None:
                    return writer.fail(error)
                writer.write(_ID_LEN.pack(b"OKAY", 0))
                return True
            else:
                return writer.fail(f"invalid SEND message {kind!r}: expected DATA or DONE")
    finally:
        if pending is not None:
            pending.discard()
