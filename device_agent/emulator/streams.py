"""One ADB connection: packets parsed as they arrive, the handshake and AUTH, streams, flow control, limits.

A connection holds no thread of its own. The device's event loop (``server``) reads its socket
when there is data and calls :meth:`Connection.receive`, which parses packets incrementally and
dispatches each one; each opened stream runs its service on the device's worker pool
(``ServicePool``). Sending never blocks the event loop: packets go straight into the socket when
it has room, and the rest waits in the connection's outgoing queue, which the event loop drains
when the socket is writable. A service that writes faster than the host reads waits
(flow control: one WRTE in flight per stream, and at most ``_OUT_HIGH_WATER`` bytes queued).

Malformed traffic raises ProtocolError in the event loop, which logs one line and closes that
connection only. A WRTE or OKAY on a stream that was opened and has since closed is a normal race
(the host acks or writes while our CLSE is on its way) and is ignored; one on a stream id that was
never opened is a protocol error. A stream that goes over a limit (queued bytes) is closed with
CLSE and a log line; its connection goes on.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Callable

from device_agent.emulator import limits as L
from device_agent.emulator import protocol as p
from device_agent.emulator.auth import AUTH_RSAPUBLICKEY, AUTH_SIGNATURE, AUTH_TOKEN, TOKEN_SIZE, AuthError
from device_agent.emulator.protocol import Packet
from device_agent.errors import ProtocolError

if TYPE_CHECKING:
    from device_agent.emulator.server import Hub

__all__ = ["StreamClosed", "Stream", "Connection", "Service", "log"]

log = logging.getLogger("device_agent.emulator")

_CLOSE_WAIT_S = 30.0  # how long close() waits for the OKAY of our last WRTE
_OUT_HIGH_WATER = 4 * L.MiB  # a service's send waits while more than this is queued for the host
_READ_BUDGET = 4 * L.MiB  # bytes read from one connection per event-loop turn (fairness)
_READ_SIZE = 256 * 1024  # one recv for headers and small payloads
_DIRECT_READ = 64 * 1024  # a payload with at least this much still to come is read straight into place
_MAX_AUTH_ATTEMPTS = 16  # signatures one connection may try (adb tries each key it holds once)


class StreamClosed(Exception):
    """The stream is gone: the host closed it, the device closed it over a limit, or its connection ended."""


class Stream:
    """A bidirectional byte stream (one OPENed service) on a connection."""

    def __init__(self, conn: Connection, local_id: int, remote_id: int, service: str) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self._cond = threading.Condition()
        self._inbox: deque[bytes | bytearray] = deque()
        self.queued_bytes = 0  # in the inbox, counted against the connection's and the device's limits
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
        """Call ``callback`` when the host closes the stream, the device closes it over a limit or
        the connection ends; at once if that already happened."""
        with self._cond:
            if not self._remote_closed:
                self._close_callbacks.append(callback)
                return
        callback()

    # -- used by the service -------------------------------------------------------------

    def read(self) -> bytes | bytearray | None:
        """The next payload the host wrote, or None once the stream is closed. OKAYs the payload."""
        with self._cond:
            while not self._inbox and not self._remote_closed:
                self._cond.wait()
            if not self._inbox:
                return None
            data = self._inbox.popleft()
            self.queued_bytes -= len(data)
        self.conn.release(len(data))
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
            self.conn.send(p.A_WRTE, self.local_id, self.remote_id, chunk, wait=True)

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

    # -- used by the event loop ----------------------------------------------------------------

    def deliver(self, data: bytes | bytearray) -> None:
        with self._cond:
            if len(self._inbox) >= L.MAX_QUEUED_WRTES_PER_STREAM:
                raise ProtocolError(f"host sent WRTE on stream {self.local_id} without waiting for OKAY")
            self._inbox.append(data)
            self.queued_bytes += len(data)
            self._cond.notify_all()

    def okay(self) -> None:
        with self._cond:
            self._awaiting_okay = False
            self._cond.notify_all()

    def remote_closed(self) -> None:
        """The host closed the stream or the connection ended (the service may still read what
        was queued before)."""
        with self._cond:
            if self._remote_closed:
                return
            self._remote_closed = True
            callbacks, self._close_callbacks = self._close_callbacks, []
            self._cond.notify_all()
        for callback in callbacks:
            callback()

    def drop_inbox(self) -> int:
        with self._cond:
            dropped, self.queued_bytes = self.queued_bytes, 0
            self._inbox.clear()
        return dropped

    def abort(self) -> None:
        """Close from the device's side at once (a limit was reached): CLSE now, the service sees
        the stream closed, what it had not read is dropped."""
        with self._cond:
            already = self._local_closed
            self._local_closed = True
        self.remote_closed()
        if not already:
            self.conn.send_quietly(p.A_CLSE, self.local_id, self.remote_id)


Service = Callable[[Stream], None]


class Connection:
    """The device side of one ADB transport connection (the adb server, or any peer, on TCP).

    States: ``new`` (waiting for CNXN), ``auth`` (AUTH TOKEN sent, waiting for a signature or a
    key), ``unauthorized`` (the host offered a key this device does not accept: it waits, as a
    phone showing its prompt does), ``online``.
    """

    def __init__(self, sock: socket.socket, peer: str, hub: Hub) -> None:
        self.sock = sock
        self.peer = peer
        self.hub = hub
        self.max_payload = p.MAX_PAYLOAD  # for what we send; the host's maxdata once it said
        self._max_in = L.MAX_PAYLOAD_BEFORE_ONLINE
        self.state = "new"
        self.deadline: float | None = time.monotonic() + L.HANDSHAKE_TIMEOUT_S
        self.packet_deadline: float | None = None
        self._checksums = False
        self._token = b""
        self._auth_attempts = 0
        # incoming packet being read
        self._buffer = bytearray()  # received, not yet parsed
        self._header = bytearray()
        self._fields: tuple[int, int, int, int, int] | None = None
        self._payload: bytearray | None = None
        self._got = 0
        # streams
        self._streams_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._next_id = 1
        self.queued_bytes = 0  # WRTE payloads not yet read by their services (under _streams_lock)
        # outgoing
        self._out_cond = threading.Condition()
        self._out: deque[memoryview] = deque()
        self._out_bytes = 0
        self.dead = False
        self.writing = False  # registered for EVENT_WRITE (event loop's business)

    # -- sending (any thread) ------------------------------------------------------------------

    def send(self, command: int, arg0: int, arg1: int, data: bytes | bytearray | memoryview = b"", *,
             wait: bool = False) -> None:
        """Send one packet without blocking on the socket: what does not fit waits in the outgoing
        queue for the event loop. ``wait`` (services) then waits while the queue is over its
        high-water mark; without it (the event loop) a queue over
        MAX_OUTGOING_BYTES_PER_CONNECTION closes the connection.

        Raises:
            StreamClosed: the connection is gone.
        """
        check = p.checksum(bytes(data)) if self._checksums else 0
        header = p.encode_header(command, arg0, arg1, len(data), check)
        if self.hub.trace:
            self._trace_packet("send", header, data)
        with self._out_cond:
            if self.dead:
                raise StreamClosed("connection closed")
            sent = 0
            if not self._out:
                try:
                    sent = self.sock.sendmsg([header, data]) if len(data) else self.sock.send(header)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as e:
                    self._fail(f"connection lost: {e}")
                    raise StreamClosed(f"connection lost: {e}") from e
            total = len(header) + len(data)
            if sent < total:
                rest = (bytes(header) + bytes(data))[sent:] if sent < len(header) else bytes(data[sent - len(header):])
                self._out.append(memoryview(rest))
                self._out_bytes += len(rest)
                self.hub.want_write(self)
                if wait:
                    while self._out_bytes > _OUT_HIGH_WATER and not self.dead:
                        self._out_cond.wait()
                    if self.dead:
                        raise StreamClosed("connection closed")
                elif self._out_bytes > L.MAX_OUTGOING_BYTES_PER_CONNECTION:
                    self._fail(f"host does not read: {self._out_bytes} bytes waiting to be sent "
                               f"(MAX_OUTGOING_BYTES_PER_CONNECTION {L.MAX_OUTGOING_BYTES_PER_CONNECTION})")

    def send_quietly(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        """Send a control packet whose loss does not matter once the connection is gone."""
        try:
            self.send(command, arg0, arg1, data)
        except StreamClosed:
            pass

    def flush(self) -> bool:
        """Send what the outgoing queue holds, as far as the socket takes it (event loop). Returns
        whether the queue is now empty."""
        with self._out_cond:
            try:
                while self._out:
                    head = self._out[0]
                    sent = self.sock.send(head)
                    self._out_bytes -= sent
                    if sent < len(head):
                        self._out[0] = head[sent:]
                        break
                    self._out.popleft()
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                self._fail(f"connection lost: {e}")
            self._out_cond.notify_all()
            return not self._out

    def _fail(self, reason: str) -> None:
        """Mark the connection dead from any thread; the event loop closes it. Caller holds _out_cond."""
        if not self.dead:
            self.dead = True
            log.warning("closing connection from %s: %s", self.peer, reason)
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._out_cond.notify_all()
            self.hub.wake()

    def forget(self, stream: Stream) -> None:
        with self._streams_lock:
            if self._streams.get(stream.local_id) is stream:
                del self._streams[stream.local_id]
        self.release(stream.drop_inbox())

    def release(self, n: int) -> None:
        """``n`` queued bytes were read by a service or dropped."""
        if n:
            with self._streams_lock:
                self.queued_bytes -= n
            self.hub.release(n)

    # -- receiving (the event loop) --------------------------------------------------------------

    def receive(self) -> bool:
        """Read what the socket has and dispatch every complete packet. Returns False when the
        connection is over (the peer closed it or misbehaved; the reason was logged).

        Headers and small payloads are read in large pieces and cut out of a buffer (one recv for
        many packets); a large payload is read straight into its own buffer.
        """
        budget = _READ_BUDGET
        try:
            while budget > 0 and not self.dead:
                if self._payload is not None and len(self._payload) - self._got >= _DIRECT_READ:
                    view = memoryview(self._payload)[self._got:]
                    n = self.sock.recv_into(view, min(len(view), budget))
                    view.release()
                    if not n:
                        self._closed_mid_packet()
                    self._got += n
                    budget -= n
                    if self._got == len(self._payload):
                        self._packet_done()
                    continue
                chunk = self.sock.recv(_READ_SIZE)
                if not chunk:
                    if self._payload is not None or self._buffer:
                        self._closed_mid_packet()
                    return False
                budget -= len(chunk)
                self._buffer += chunk
                self._parse_buffer()
        except (BlockingIOError, InterruptedError):
            pass
        except ProtocolError as e:
            log.error("protocol error from %s: %s; closing that connection", self.peer, e)
            return False
        except ConnectionError:
            return False
        except OSError as e:
            if not self.dead:
                log.error("connection to %s failed: %s", self.peer, e)
            return False
        return not self.dead

    def _parse_buffer(self) -> None:
        """Dispatch the complete packets in the buffer; start the next one's payload if it is large."""
        buffer = self._buffer
        start = 0
        try:
            while not self.dead:
                if self._payload is not None:  # the rest of a payload begun earlier
                    take = min(len(self._payload) - self._got, len(buffer) - start)
                    self._payload[self._got:self._got + take] = buffer[start:start + take]
                    self._got += take
                    start += take
                    if self._got < len(self._payload):
                        break
                    self._packet_done()
                    continue
                if len(buffer) - start < p.HEADER_SIZE:
                    if len(buffer) > start and self.packet_deadline is None:
                        self.packet_deadline = time.monotonic() + L.PACKET_TIMEOUT_S
                    break
                self._header = buffer[start:start + p.HEADER_SIZE]
                start += p.HEADER_SIZE
                self.packet_deadline = time.monotonic() + L.PACKET_TIMEOUT_S
                self._start_payload()
        finally:
            del buffer[:start]

    def _start_payload(self) -> None:
        header = bytes(self._header)
        command, arg0, arg1, length, check, magic = p.HEADER.unpack(header)
        if magic != command ^ 0xFFFFFFFF:
            raise ProtocolError(f"bad magic 0x{magic:08x} for command 0x{command:08x} (header {header.hex()})")
        if command not in p.COMMANDS:
            raise ProtocolError(f"unknown command 0x{command:08x} (header {header.hex()})")
        if length > self._max_in:
            if self._max_in == p.MAX_PAYLOAD:
                raise ProtocolError(f"{p.command_name(command)} payload of {length} bytes exceeds maxdata {p.MAX_PAYLOAD}")
            raise ProtocolError(f"{p.command_name(command)} payload of {length} bytes before the connection is "
                                f"online (at most {self._max_in}: MAX_PAYLOAD_BEFORE_ONLINE)")
        self._fields = (command, arg0, arg1, length, check)
        self._payload = bytearray(length)
        self._got = 0
        if not length:
            self._packet_done()

    def _packet_done(self) -> None:
        if self._fields is None or self._payload is None:
            raise ProtocolError("internal: no packet under way")
        command, arg0, arg1, length, check = self._fields
        data = self._payload
        self._header = bytearray()
        self._fields, self._payload, self._got = None, None, 0
        self.packet_deadline = None
        if self._checksums and p.checksum(data) != check:
            raise ProtocolError(f"{p.command_name(command)} checksum 0x{check:08x} does not match its payload")
        if self.hub.trace:
            self._trace_packet("recv", p.encode_header(command, arg0, arg1, length), data)
        self._dispatch(Packet(command, arg0, arg1, data))

    def _closed_mid_packet(self) -> None:
        if self._payload is None:
            raise ProtocolError(f"connection closed mid-packet: got {len(self._buffer)} of {p.HEADER_SIZE} header bytes")
        command = self._fields[0] if self._fields else 0
        raise ProtocolError(f"connection closed mid-packet: got {self._got} of {len(self._payload)} "
                            f"{p.command_name(command)} payload bytes")

    def expired(self, now: float) -> str | None:
        """Why the connection must be closed for a timeout, or None."""
        if self.deadline is not None and now > self.deadline:
            what = "CNXN" if self.state == "new" else "an answer to AUTH"
            return f"no {what} within {L.HANDSHAKE_TIMEOUT_S:g} s (HANDSHAKE_TIMEOUT_S)"
        if self.packet_deadline is not None and now > self.packet_deadline:
            return f"a packet was not completed within {L.PACKET_TIMEOUT_S:g} s (PACKET_TIMEOUT_S)"
        return None

    def close(self) -> None:
        """End the connection and every stream on it (their services see StreamClosed). Event loop only."""
        with self._out_cond:
            self.dead = True
            self._out.clear()
            self._out_bytes = 0
            self._out_cond.notify_all()
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
            self.release(stream.drop_inbox())

    # -- dispatch ------------------------------------------------------------------------------

    def _dispatch(self, packet: Packet) -> None:
        command = packet.command
        if command == p.A_CNXN:
            self._handshake(packet)
        elif command == p.A_AUTH:
            self._auth(packet)
        elif self.state != "online":
            if self.state == "new":
                raise ProtocolError(f"expected CNXN first, got {packet.name}")
            raise ProtocolError(f"{packet.name} before authentication (the device is {self.state})")
        elif command == p.A_OPEN:
            self._open(packet)
        elif command in (p.A_WRTE, p.A_OKAY):
            stream = self._stream_for(packet)
            if stream is None:
                return
            if command == p.A_WRTE:
                self._deliver(stream, packet.data)
            else:
                stream.okay()
        elif command == p.A_CLSE:
            with self._streams_lock:
                stream = self._streams.get(packet.arg1)
                if stream is not None and stream.remote_id == packet.arg0:
                    del self._streams[packet.arg1]
                else:
                    stream = None
            if stream is not None:
                stream.remote_closed()
        else:
            raise ProtocolError(f"unexpected {packet.name} packet (this device never asks for TLS)")

    def _handshake(self, packet: Packet) -> None:
        version, maxdata = packet.arg0, packet.arg1
        if version < p.VERSION_MIN:
            raise ProtocolError(f"unsupported protocol version 0x{version:08x} in CNXN")
        if maxdata < 256:
            raise ProtocolError(f"maxdata {maxdata} in CNXN is too small")
        if self.state == "online":  # a new handshake on a live connection resets it, as adbd does
            self._end_streams()
        self.max_payload = min(maxdata, p.MAX_PAYLOAD)
        self._checksums = min(version, p.VERSION) < p.VERSION_SKIP_CHECKSUM
        if self.hub.auth is None:
            self._go_online()
            return
        self.state = "auth"
        self._max_in = L.MAX_PAYLOAD_BEFORE_ONLINE
        self._send_token()

    def _send_token(self) -> None:
        self._token = os.urandom(TOKEN_SIZE)
        self.deadline = time.monotonic() + L.HANDSHAKE_TIMEOUT_S
        self.send(p.A_AUTH, AUTH_TOKEN, 0, self._token)

    def _go_online(self) -> None:
        self.hub.authorized(self)
        self.state = "online"
        self.deadline = None
        self._max_in = p.MAX_PAYLOAD
        self.send(p.A_CNXN, p.VERSION, p.MAX_PAYLOAD, self.hub.banner)

    def _auth(self, packet: Packet) -> None:
        auth = self.hub.auth
        if auth is None or self.state not in ("auth", "unauthorized"):
            reason = "this device asked for none" if auth is None else f"the connection is {self.state}"
            raise ProtocolError(f"unexpected AUTH packet ({reason})")
        kind = packet.arg0
        if kind == AUTH_SIGNATURE:
            self._auth_attempts += 1
            if self._auth_attempts > _MAX_AUTH_ATTEMPTS:
                raise ProtocolError(f"more than {_MAX_AUTH_ATTEMPTS} AUTH signatures")
            key = auth.keys.verify(self._token, bytes(packet.data)) if self.state == "auth" else None
            if key is not None:
                log.info("%s authenticated with key %s", self.peer, auth.fingerprint(key))
                self._go_online()
            else:
                self._send_token()  # adbd answers a wrong signature with a new token
        elif kind == AUTH_RSAPUBLICKEY:
            try:
                key = auth.decode(packet.data)
            except AuthError as e:
                raise ProtocolError(f"AUTH public key: {e}") from None
            text = bytes(packet.data).split(b"\0", 1)[0].decode("ascii", "replace").strip()
            if auth.accept_new_keys:
                auth.keys.add(text)
                log.warning("accepted new key %s (%s) from %s and added it to %s (--accept-new-keys)",
                            auth.fingerprint(key), text.partition(" ")[2] or "no name", self.peer, auth.keys.path)
                self._go_online()
                return
            self.state = "unauthorized"
            self.deadline = None
            self.hub.unauthorized(self)
            log.warning("unauthorized key %s (%s) from %s: the device stays 'unauthorized'; add that key's line "
                        "(the host's ~/.android/adbkey.pub) to %s, or restart the device with --accept-new-keys",
                        auth.fingerprint(key), text.partition(" ")[2] or "no name", self.peer, auth.keys.path)
        else:
            raise ProtocolError(f"unexpected AUTH packet (type {kind} from the host)")

    def _open(self, packet: Packet) -> None:
        if packet.arg0 == 0:
            raise ProtocolError("OPEN with local-id 0")
        if len(packet.data) > L.MAX_SERVICE_NAME:
            log.warning("service name too long: %d bytes (MAX_SERVICE_NAME %d): refused OPEN %r… from %s",
                        len(packet.data), L.MAX_SERVICE_NAME, bytes(packet.data[:40]), self.peer)
            self.send(p.A_CLSE, 0, packet.arg0)
            return
        try:
            name = bytes(packet.data).rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            name = None
        service = self.hub.open_service(name) if name is not None else None
        if service is None:
            self._refuse(packet, "unknown service")
            return
        with self._streams_lock:
            full = len(self._streams) >= L.MAX_STREAMS_PER_CONNECTION
        if full:
            self._refuse(packet, "too many open streams on this connection "
                                 f"(MAX_STREAMS_PER_CONNECTION {L.MAX_STREAMS_PER_CONNECTION})")
            return
        if not self.hub.pool.reserve():
            self._refuse(packet, f"device busy: {L.MAX_SERVICE_THREADS} services running and "
                                 f"{L.MAX_QUEUED_SERVICES} waiting (MAX_SERVICE_THREADS, MAX_QUEUED_SERVICES)")
            return
        with self._streams_lock:
            stream = Stream(self, self._next_id, packet.arg0, name or "")
            self._streams[stream.local_id] = stream
            self._next_id += 1
        try:
            self.send(p.A_OKAY, stream.local_id, stream.remote_id)
        finally:
            self.hub.pool.start(lambda: _run_service(service, stream))

    def _refuse(self, packet: Packet, reason: str) -> None:
        log.warning("%s: refused OPEN %r from %s", reason, bytes(packet.data[:80]), self.peer)
        self.send(p.A_CLSE, 0, packet.arg0)

    def _deliver(self, stream: Stream, data: bytes | bytearray) -> None:
        """Queue a WRTE's payload for its service, or close the stream when that goes over a limit."""
        n = len(data)
        with self._streams_lock:
            over_connection = self.queued_bytes + n > L.MAX_QUEUED_BYTES_PER_CONNECTION
            if not over_connection:
                self.queued_bytes += n
        if over_connection or not self.hub.reserve(n):
            if not over_connection:
                self.release(n)
            which = ("MAX_QUEUED_BYTES_PER_CONNECTION", L.MAX_QUEUED_BYTES_PER_CONNECTION) if over_connection \
                else ("MAX_QUEUED_BYTES_TOTAL", L.MAX_QUEUED_BYTES_TOTAL)
            log.warning("stream %d (%r) from %s closed: its data waiting to be read would exceed %s (%d bytes)",
                        stream.local_id, stream.service[:40], self.peer, *which)
            stream.abort()
            self.forget(stream)
            return
        stream.deliver(data)

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

    def _trace_packet(self, direction: str, header: bytes, data: bytes | bytearray | memoryview) -> None:
        """One debug line per packet: the header's bytes and the start of the payload."""
        preview = bytes(data[:48])
        log.debug("trace %s %s header=%s data=%r%s", direction,
                  p.command_name(int.from_bytes(header[:4], "little")), header.hex(" ", 4), preview,
                  f" (+{len(data) - 48} bytes)" if len(data) > 48 else "")


def _run_service(service: Service, stream: Stream) -> None:
    try:
        if not stream.closed:
            service(stream)
    except StreamClosed:
        pass
    except Exception as e:  # a bug in one service must not take the device down; say which
        log.exception("service %r failed: %s", stream.service, e)
    finally:
        stream.close()
