"""One ADB connection: the packet loop, the handshake and its streams with their flow control.

The thread that reads the socket dispatches packets; each opened stream runs its service in a
thread of its own. Flow control is adb's original one (no ``delayed_ack``): a side sends its next
WRTE on a stream only after the peer's OKAY for the previous one. We OKAY the host's WRTE when the
service takes the data, so a slow service slows the host down instead of filling memory.

Malformed traffic raises ProtocolError in the reading thread, which logs one line and closes that
connection only. A WRTE or OKAY on a stream that was opened and has since closed is a normal race
(the host acks or writes while our CLSE is on its way) and is ignored; one on a stream id that was
never opened is a protocol error.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
from collections import deque
from typing import Callable

from device_agent.emulator import protocol as p
from device_agent.emulator.protocol import ConnectionEnded, Packet
from device_agent.errors import ProtocolError

__all__ = ["StreamClosed", "Stream", "Connection", "Service", "log"]

log = logging.getLogger("device_agent.emulator")

_MAX_STREAMS = 256  # open streams per connection; more OPENs are refused with CLSE
_MAX_QUEUED = 4  # WRTEs the host may send ahead of our OKAYs before it counts as a protocol error
_CLOSE_WAIT_S = 30.0  # how long close() waits for the OKAY of our last WRTE


class StreamClosed(Exception):
    """The stream is gone: the host closed it, or its connection ended."""


class Stream:
    """A bidirectional byte stream (one OPENed service) on a connection."""

    def __init__(self, conn: Connection, local_id: int, remote_id: int, service: str) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self._cond = threading.Condition()
        self._inbox: deque[bytes] = deque()
        self._awaiting_okay = False
        self._remote_closed = False
        self._local_closed = False
        self._close_callbacks: list[Callable[[], None]] = []

    @property
    def max_payload(self) -> int:
        return self.conn.max_payload

    @property
    def closed(self) -> bool:
        return self._remote_closed or self._local_closed

    def on_remote_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the connection's thread) when the host closes the stream or the
        connection ends; at once if that already happened."""
        with self._cond:
            if not self._remote_closed:
                self._close_callbacks.append(callback)
                return
        callback()

    # -- used by the service -------------------------------------------------------------

    def read(self) -> bytes | None:
        """The next payload the host wrote, or None once the stream is closed. OKAYs the payload."""
        with self._cond:
            while not self._inbox and not self._remote_closed:
                self._cond.wait()
            if not self._inbox:
                return None
            data = self._inbox.popleft()
        self.conn.send_quietly(p.A_OKAY, self.local_id, self.remote_id)
        return data

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` in WRTEs of at most maxdata bytes, each after the host's OKAY of the last.

        Raises:
            StreamClosed: the host closed the stream or the connection ended.
        """
        view = memoryview(data)
        for start in range(0, len(view), self.max_payload):
            chunk = view[start:start + self.max_payload]
            with self._cond:
                while self._awaiting_okay and not self._remote_closed:
                    self._cond.wait()
                if self.closed:
                    raise StreamClosed(self.service)
                self._awaiting_okay = True
            self.conn.send(p.A_WRTE, self.local_id, self.remote_id, chunk)

    def close(self) -> None:
        """Close from our side: wait for the last OKAY, then send CLSE (once)."""
        with self._cond:
            if self._local_closed:
                return
            self._local_closed = True
            self._cond.wait_for(lambda: not self._awaiting_okay or self._remote_closed, timeout=_CLOSE_WAIT_S)
            notify_host = not self._remote_closed
        self.conn.forget(self)
        if notify_host:
            self.conn.send_quietly(p.A_CLSE, self.local_id, self.remote_id)

    # -- used by the connection's reading thread --------------------------------------------

    def deliver(self, data: bytes) -> None:
        with self._cond:
            if len(self._inbox) >= _MAX_QUEUED:
                raise ProtocolError(f"host sent WRTE on stream {self.local_id} without waiting for OKAY")
            self._inbox.append(data)
            self._cond.notify_all()

    def okay(self) -> None:
        with self._cond:
            self._awaiting_okay = False
            self._cond.notify_all()

    def remote_closed(self) -> None:
        with self._cond:
            if self._remote_closed:
                return
            self._remote_closed = True
            callbacks, self._close_callbacks = self._close_callbacks, []
            self._cond.notify_all()
        for callback in callbacks:
            callback()


Service = Callable[[Stream], None]


class Connection:
    """The device side of one ADB transport connection (the adb server, or any peer, on TCP)."""

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        banner: bytes,
        open_service: Callable[[str], Service | None],
        *,
        trace: bool = False,
    ) -> None:
        self.sock = sock
        self.peer = peer
        self.banner = banner
        self.max_payload = p.MAX_PAYLOAD
        self._open_service = open_service
        self._trace = trace
        self._send_lock = threading.Lock()
        self._streams_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._next_id = 1
        self._online = False
        self._checksums = False
        self._dead = False

    # -- sending -----------------------------------------------------------------------------

    def send(self, command: int, arg0: int, arg1: int, data: bytes | memoryview = b"") -> None:
        """Send one packet. Raises StreamClosed when the connection is gone."""
        check = p.checksum(bytes(data)) if self._checksums else 0
        header = p.encode_header(command, arg0, arg1, len(data), check)
        if self._trace:
            self._trace_packet("send", header, data)
        with self._send_lock:
            if self._dead:
                raise StreamClosed("connection closed")
            try:
                if len(data) <= 65536:
                    self.sock.sendall(header + bytes(data))
                else:
                    self.sock.sendall(header)
                    self.sock.sendall(data)
            except OSError as e:
                self._dead = True
                raise StreamClosed(f"connection lost: {e}") from e

    def send_quietly(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        """Send a control packet whose loss does not matter once the connection is gone."""
        try:
            self.send(command, arg0, arg1, data)
        except StreamClosed:
            pass

    def forget(self, stream: Stream) -> None:
        with self._streams_lock:
            self._streams.pop(stream.local_id, None)

    # -- the reading loop --------------------------------------------------------------------

    def serve(self) -> None:
        """Read and dispatch packets until the peer closes or misbehaves; then end every stream."""
        reader = io.BufferedReader(socket.SocketIO(self.sock, "rb"), 256 * 1024)
        try:
            while True:
                packet = p.read_packet(reader, max_payload=p.MAX_PAYLOAD, verify_checksum=self._checksums)
                if self._trace:
                    header = p.encode_header(packet.command, packet.arg0, packet.arg1, len(packet.data))
                    self._trace_packet("recv", header, packet.data)
                self._dispatch(packet)
        except ConnectionEnded:
            pass
        except ProtocolError as e:
            log.error("protocol error from %s: %s; closing that connection", self.peer, e)
        except OSError as e:
            if not self._dead:
                log.error("connection to %s failed: %s", self.peer, e)
        finally:
            reader.close()
            self.close()

    def close(self) -> None:
        """End the connection and every stream on it (their services see StreamClosed).

        Does not take the send lock: a sender blocked on a host that stopped reading holds it,
        and shutting the socket down is what frees that sender.
        """
        self._dead = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._end_streams()

    def _end_streams(self) -> None:
        with self._streams_lock:
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            stream.remote_closed()

    def _dispatch(self, packet: Packet) -> None:
        if packet.command == p.A_CNXN:
            self._handshake(packet)
        elif not self._online:
            raise ProtocolError(f"expected CNXN first, got {packet.name}")
        elif packet.command == p.A_OPEN:
            self._open(packet)
        elif packet.command in (p.A_WRTE, p.A_OKAY):
            stream = self._stream_for(packet)
            if stream is None:
                return
            if packet.command == p.A_WRTE:
                stream.deliver(packet.data)
            else:
                stream.okay()
        elif packet.command == p.A_CLSE:
            with self._streams_lock:
                stream = self._streams.get(packet.arg1)
                if stream is not None and stream.remote_id == packet.arg0:
                    del self._streams[packet.arg1]
                else:
                    stream = None
            if stream is not None:
                stream.remote_closed()
        else:
            raise ProtocolError(f"unexpected {packet.name} packet (this device never asks for AUTH or TLS)")

    def _handshake(self, packet: Packet) -> None:
        version, maxdata = packet.arg0, packet.arg1
        if version < p.VERSION_MIN:
            raise ProtocolError(f"unsupported protocol version 0x{version:08x} in CNXN")
        if maxdata < 256:
            raise ProtocolError(f"maxdata {maxdata} in CNXN is too small")
        if self._online:  # a new handshake on a live connection resets it, as adbd does
            self._end_streams()
        self.max_payload = min(maxdata, p.MAX_PAYLOAD)
        self.send(p.A_CNXN, p.VERSION, p.MAX_PAYLOAD, self.banner)
        self._checksums = min(version, p.VERSION) < p.VERSION_SKIP_CHECKSUM
        self._online = True

    def _open(self, packet: Packet) -> None:
        if packet.arg0 == 0:
            raise ProtocolError("OPEN with local-id 0")
        try:
            name = packet.data.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            name = None
        service = self._open_service(name) if name is not None else None
        stream = None
        with self._streams_lock:
            full = len(self._streams) >= _MAX_STREAMS
            if service is not None and not full:
                stream = Stream(self, self._next_id, packet.arg0, name or "")
                self._streams[stream.local_id] = stream
                self._next_id += 1
        if service is None or stream is None:
            reason = "too many open streams" if full else "unknown service"
            log.warning("%s: refused OPEN %r from %s", reason, packet.data[:80], self.peer)
            self.send(p.A_CLSE, 0, packet.arg0)
            return
        self.send(p.A_OKAY, stream.local_id, stream.remote_id)
        thread_name = f"adb-{stream.service[:24]}"
        threading.Thread(target=_run_service, args=(service, stream), name=thread_name, daemon=True).start()

    def _stream_for(self, packet: Packet) -> Stream | None:
        """The stream a WRTE/OKAY is for; None for a closed one. Raises for ids never opened."""
        local_id, remote_id = packet.arg1, packet.arg0
        with self._streams_lock:
            stream = self._streams.get(local_id)
            known = 0 < local_id < self._next_id
        if stream is None:
            if known:
                return None
            raise ProtocolError(f"{packet.name} for stream {local_id}, which does not exist")
        if stream.remote_id != remote_id:
            raise ProtocolError(f"{packet.name} for stream {local_id} from remote id {remote_id}, expected {stream.remote_id}")
        return stream

    def _trace_packet(self, direction: str, header: bytes, data: bytes | memoryview) -> None:
        """One debug line per packet: the header's bytes and the start of the payload."""
        preview = bytes(data[:48]) if isinstance(data, memoryview) else data[:48]
        log.debug("trace %s %s header=%s data=%r%s", direction,
                  p.command_name(int.from_bytes(header[:4], "little")), header.hex(" ", 4), preview,
                  f" (+{len(data) - 48} bytes)" if len(data) > 48 else "")


def _run_service(service: Service, stream: Stream) -> None:
    try:
        service(stream)
    except StreamClosed:
        pass
    except Exception as e:  # a bug in one service must not take the device down; say which
        log.exception("service %r failed: %s", stream.service, e)
    finally:
        stream.close()
