"""Bounded resources: linear lexing, line and name limits, queued bytes, connection and stream limits,
timeouts, a burst of connections, and a fuzzer whose traffic leaves the device's memory where it was.

Everything is asserted as behaviour (a step count, a refusal, a log line, a memory bound), never as a
time, so that the tests hold on a busy two-core machine.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import time
from pathlib import Path

import pytest

from device_agent.emulator import limits as L
from device_agent.emulator.auth import default_key_path, load_private_key, sign_token
from device_agent.emulator.shparse import ShellSyntaxError, lex, parse
from tests.device_agent.test_emulator_protocol import (
    AUTH, CLSE, CNXN, MIB, OKAY, OPEN, WRTE, RawPeer, packet, wait_for_log,
)

WORST_CASES = {
    "one word": "a" * 400_000,
    "quoted words": "'a'" * 133_333,
    "many words": "a " * 200_000,
    "operators": "a;" * 200_000,
    "variables": "$a" * 200_000,
    "escapes": "\\a" * 200_000,
    "double-quoted variables": '"$x"' * 100_000,
    "redirections": "a>b " * 100_000,
}


@pytest.mark.parametrize("name", list(WORST_CASES))
def test_400k_characters_lex_in_linear_steps(name):
    text = WORST_CASES[name]
    _, steps = lex(text, max_steps=len(text))
    assert steps <= len(text)  # one step per character at most: linear, whatever the input


def test_a_line_over_the_limit_is_refused_before_lexing():
    with pytest.raises(ShellSyntaxError, match=f"command line too long: 400000 characters \\(at most {L.MAX_COMMAND_LINE}\\)"):
        parse("a" * 400_000)
    parse("echo " + "a" * (L.MAX_COMMAND_LINE - 5))  # at the limit: fine


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads")


@pytest.fixture
def device(emulated_device_factory):
    return emulated_device_factory()


def test_a_service_name_over_the_limit_is_refused(device):
    peer = RawPeer(device.port)
    peer.handshake()
    peer.send(packet(OPEN, 1, 0, b"shell:" + b"a" * (MIB - 10) + b"\0"))
    assert peer.recv() == (CLSE, 0, 1, b"")
    assert "service name too long" in wait_for_log(device, "MAX_SERVICE_NAME")
    mine = peer.open(2, "shell:echo still")
    assert peer.recv() == (WRTE, mine, 2, b"still\n")
    peer.close()


def test_a_command_over_the_line_limit_is_refused_with_a_message(device):
    """Sent as the adb server sends it, straight to the device: through the server, a request this
    long does not fit the host protocol's four hex digits of length (at most 65,535 bytes), and what
    the server then forwards depends on how the bytes reached it."""
    peer = RawPeer(device.port)
    peer.handshake()
    mine = peer.open(1, "shell,v2:echo " + "x" * L.MAX_COMMAND_LINE)
    received = b""
    while (reply := peer.recv()) is not None and reply[0] == WRTE:
        received += reply[3]
        peer.send(packet(OKAY, 1, mine))
    assert reply is not None and reply[:3] == (CLSE, mine, 1)
    frames: dict[int, bytes] = {}
    while received:  # shell v2: id, little-endian length, data
        kind, length = struct.unpack("<BI", received[:5])
        frames[kind] = frames.get(kind, b"") + received[5 : 5 + length]
        received = received[5 + length :]
    line = f"/system/bin/sh: command line too long: {L.MAX_COMMAND_LINE + 5} characters (at most {L.MAX_COMMAND_LINE})\n"
    assert frames.get(2) == line.encode()
    assert frames.get(3) == b"\x01"  # exit status 1
    peer.close()


def test_100_mib_without_a_newline_is_refused_once_over_the_line_limit(device):
    peer = RawPeer(device.port)
    peer.handshake()
    mine = peer.open(1, "shell:")  # an interactive session: lines come on stdin
    chunk = b"a" * (64 * 1024)
    sent = 0
    closed = False
    output = b""
    while sent < 100 * MIB and not closed:
        peer.send(packet(WRTE, 1, mine, chunk))
        sent += len(chunk)
        while True:  # the OKAY for this WRTE, or the end of the stream
            command, _, _, data = peer.recv()
            if command == WRTE:
                output += data
                peer.send(packet(OKAY, 1, mine))
            elif command == CLSE:
                closed = True
                break
            elif command == OKAY:
                break
    assert closed and sent <= L.MAX_COMMAND_LINE + 2 * len(chunk)
    assert b"line too long" in output
    assert "MAX_COMMAND_LINE" in wait_for_log(device, "shell session closed")
    peer.close()


def test_queued_bytes_stay_under_the_limit(device):
    """100 streams of `sleep 60`, each sent 4 WRTEs of 1 MiB its service never reads."""
    pid = device.process.pid
    peer = RawPeer(device.port)
    peer.handshake()
    before = rss_kib(pid)
    opened = []
    for local in range(1, 101):
        peer.send(packet(OPEN, local, 0, b"shell:sleep 60\0"))
        command, mine, theirs, _ = peer.recv()
        assert theirs == local and command in (OKAY, CLSE)  # opened, or refused past the stream limit
        if command == OKAY:
            opened.append((local, mine))
    assert len(opened) == L.MAX_STREAMS_PER_CONNECTION
    payload = os.urandom(MIB)
    for local, mine in opened:
        for _ in range(4):
            peer.send(packet(WRTE, local, mine, payload))
    peer.send(packet(OPEN, 999, 0, b"shell:echo alive\0"))  # everything before it has been read
    peak = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        peak = max(peak, rss_kib(pid))
        command, mine, theirs, data = peer.recv()
        if theirs == 999 and command == WRTE:
            assert data == b"alive\n"
            break
    log = wait_for_log(device, "would exceed MAX_QUEUED_BYTES_PER_CONNECTION")
    assert log.count("would exceed MAX_QUEUED_BYTES_PER_CONNECTION") >= len(opened) - L.MAX_QUEUED_BYTES_PER_CONNECTION // MIB
    peak = max(peak, rss_kib(pid))
    # 400 MiB were sent; what the device holds is bounded by the limit (plus the packet being read)
    assert (peak - before) * 1024 < L.MAX_QUEUED_BYTES_PER_CONNECTION + 48 * MIB, (before, peak)
    peer.close()


def _authenticated(sock: socket.socket, key) -> bool:
    """CNXN + AUTH on a raw socket; False when the device closed it (refused)."""
    peer = RawPeer.__new__(RawPeer)
    peer.sock = sock
    try:
        peer.send(packet(CNXN, 0x01000001, MIB, b"host::\0"))
        reply = peer.recv()
        if reply is None:
            return False
        if reply[0] == AUTH:
            peer.send(packet(AUTH, 2, 0, sign_token(key, reply[3])))
            reply = peer.recv()
        return reply is not None and reply[0] == CNXN
    except (ConnectionResetError, BrokenPipeError):
        return False


def test_a_burst_of_200_connections_of_10_streams_each(device):
    key = load_private_key(default_key_path())
    pid = device.process.pid
    sockets = [socket.create_connection(("127.0.0.1", device.port), timeout=60) for _ in range(200)]
    online = [s for s in sockets if _authenticated(s, key)]
    # the adb server holds one connection; the rest were accepted and closed at once (a clean refusal)
    assert len(online) == L.MAX_CONNECTIONS - 1
    for s in online:
        s.sendall(b"".join(packet(OPEN, i, 0, f"shell:echo {i}\0".encode()) for i in range(1, 11)))
    peak_threads = 0
    answered = refused = 0
    for s in online:
        peer = RawPeer.__new__(RawPeer)
        peer.sock = s
        open_streams = set(range(1, 11))
        while open_streams:
            command, mine, theirs, data = peer.recv()
            peak_threads = max(peak_threads, threads(pid))
            if command == OKAY and mine:
                continue
            if command == WRTE:
                assert data == f"{theirs}\n".encode()
                answered += 1
                peer.send(packet(OKAY, theirs, mine))
            elif command == CLSE:
                if mine == 0:
                    refused += 1
                else:
                    peer.send(packet(CLSE, theirs, mine))
                open_streams.discard(theirs)
        s.close()
    for s in sockets:
        s.close()
    assert answered + refused == 10 * len(online) and answered > 0
    assert peak_threads <= L.MAX_SERVICE_THREADS + 8  # a pool, not a thread per stream
    assert device.device.shell("echo after") == "after"


def test_a_silent_connection_is_closed_by_the_handshake_timeout(device):
    peer = RawPeer(device.port)
    peer.sock.settimeout(L.HANDSHAKE_TIMEOUT_S + 30)
    peer.send(packet(CNXN, 0x01000001, MIB, b"host::\0")[:10])  # half a header, then nothing
    assert peer.closed_by_device()
    assert "HANDSHAKE_TIMEOUT_S" in wait_for_log(device, "HANDSHAKE_TIMEOUT_S")


def test_fuzzed_traffic_leaves_memory_where_it_was(device):
    """Random and mutated packets on many connections, authenticated or not; the device logs,
    closes those connections, and its memory returns near where it started."""
    rng = random.Random(1234)
    key = load_private_key(default_key_path())
    pid = device.process.pid
    commands = [CNXN, OPEN, OKAY, WRTE, CLSE, AUTH, 0x434E5953, 0x534C5453]
    services = [b"shell:echo x\0", b"sync:\0", b"shell,v2,raw:true\0", b"exec:ls\0", b"reboot:\0", b"\xff\0"]
    # warm up: the first connections load code and fill caches that stay
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", device.port), timeout=30) as s:
            _authenticated(s, key)
    assert device.device.shell("echo warm") == "warm"
    start = rss_kib(pid)
    for round_ in range(300):
        s = socket.create_connection(("127.0.0.1", device.port), timeout=30)
        try:
            if round_ % 2 and not _authenticated(s, key):
                continue
            blob = b""
            for _ in range(rng.randint(1, 6)):
                kind = rng.random()
                if kind < 0.3:
                    blob += os.urandom(rng.randint(1, 200))
                elif kind < 0.6:
                    blob += packet(rng.choice(commands), rng.randint(0, 5), rng.randint(0, 5), rng.choice(services))
                else:
                    data = os.urandom(rng.choice([0, 1, 24, 4096, 70_000]))
                    header = struct.pack("<6I", rng.choice(commands), rng.getrandbits(32), rng.getrandbits(32),
                                         rng.choice([len(data), rng.getrandbits(32)]), 0, rng.getrandbits(32))
                    blob += header + data
            try:
                s.sendall(blob)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(10)
                while s.recv(65536):
                    pass
            except OSError:
                pass
        finally:
            s.close()
    assert device.device.shell("echo survived") == "survived"
    deadline = time.monotonic() + 30
    while rss_kib(pid) > start + 16 * 1024 and time.monotonic() < deadline:
        time.sleep(0.2)  # services of the last connections may still be ending
    assert rss_kib(pid) <= start + 16 * 1024, (start, rss_kib(pid))
    assert "Traceback" not in device.log_text()
