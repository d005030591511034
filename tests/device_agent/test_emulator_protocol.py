"""The ADB device protocol on a raw socket: framing, flow control, split sync requests, bad input."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from device_agent.emulator.auth import default_key_path, load_private_key, sign_token

CNXN, OPEN, OKAY, WRTE, CLSE, AUTH = 0x4E584E43, 0x4E45504F, 0x59414B4F, 0x45545257, 0x45534C43, 0x48545541
HEADER = struct.Struct("<6I")
MIB = 1024 * 1024


def host_key():
    """The key the session's adb server signs with (it made ~/.android/adbkey when it started)."""
    return load_private_key(default_key_path())


def packet(command: int, arg0: int = 0, arg1: int = 0, data: bytes = b"", *, magic: int | None = None,
           length: int | None = None) -> bytes:
    magic = command ^ 0xFFFFFFFF if magic is None else magic
    return HEADER.pack(command, arg0, arg1, len(data) if length is None else length, 0, magic) + data


class RawPeer:
    """A host side written from scratch, to send what adb never would."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def close(self) -> None:
        self.sock.close()

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def _exact(self, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def recv(self) -> tuple[int, int, int, bytes] | None:
        """The next packet, or None when the device closed the connection."""
        header = self._exact(HEADER.size)
        if header is None:
            return None
        command, arg0, arg1, length, _, magic = HEADER.unpack(header)
        assert magic == command ^ 0xFFFFFFFF
        data = self._exact(length) if length else b""
        assert data is not None
        return command, arg0, arg1, data

    def handshake(self) -> bytes:
        """CNXN, then AUTH with the adb server's own key (~/.android/adbkey), as adb does."""
        self.send(packet(CNXN, 0x01000001, MIB, b"host::features=shell_v2\0"))
        reply = self.recv()
        if reply is not None and reply[0] == AUTH:
            assert reply[1] == 1 and len(reply[3]) == 20
            self.send(packet(AUTH, 2, 0, sign_token(host_key(), reply[3])))
            reply = self.recv()
        assert reply is not None and reply[:3] == (CNXN, 0x01000001, MIB)
        return reply[3]

    def closed_by_device(self) -> bool:
        """Whether the device closes the connection (reading and dropping what it still sends)."""
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout):
            return False
        return True

    def open(self, local_id: int, service: str) -> int:
        self.send(packet(OPEN, local_id, 0, service.encode() + b"\0"))
        reply = self.recv()
        assert reply is not None and reply[0] == OKAY and reply[2] == local_id
        return reply[1]


@pytest.fixture
def device(emulated_device_factory):
    return emulated_device_factory()


def wait_for_log(device, text: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = device.log_text()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged; log:\n{device.log_text()}")


def test_handshake_banner(device):
    peer = RawPeer(device.port)
    banner = peer.handshake().decode()
    assert banner.startswith("device::ro.product.name=lab_emulated;ro.product.model=lab emulated device;")
    assert banner.endswith(";features=shell_v2,cmd,stat_v2")
    peer.close()


def test_shell_stream_open_write_okay_close(device):
    peer = RawPeer(device.port)
    peer.handshake()
    mine = peer.open(7, "shell:echo hi; exit 5")
    assert peer.recv() == (WRTE, mine, 7, b"hi\n")
    peer.send(packet(OKAY, 7, mine))
    assert peer.recv() == (CLSE, mine, 7, b"")
    v2 = peer.open(8, "shell,v2,raw:echo out; echo err >&2; exit 5")
    frames = b""
    while True:
        command, arg0, arg1, data = peer.recv()
        assert (arg0, arg1) == (v2, 8)
        if command == CLSE:
            break
        frames += data
        peer.send(packet(OKAY, 8, v2))
    assert frames == b"\x01\x04\0\0\0out\n" + b"\x02\x04\0\0\0err\n" + b"\x03\x01\0\0\0\x05"
    peer.close()


def test_unknown_service_is_refused_and_connection_goes_on(device):
    peer = RawPeer(device.port)
    peer.handshake()
    peer.send(packet(OPEN, 3, 0, b"reboot:\0"))
    assert peer.recv() == (CLSE, 0, 3, b"")
    peer.send(packet(OPEN, 4, 0, b"\xff\xfe\0"))
    assert peer.recv() == (CLSE, 0, 4, b"")
    mine = peer.open(5, "shell:echo ok")
    assert peer.recv() == (WRTE, mine, 5, b"ok\n")
    peer.close()


def test_next_wrte_waits_for_the_hosts_okay(device):
    (device.root / "big").write_bytes(b"x" * (3 * MIB))
    peer = RawPeer(device.port)
    peer.handshake()
    mine = peer.open(1, "shell:cat /data/local/tmp/big")
    first = peer.recv()
    assert first[0] == WRTE and 0 < len(first[3]) <= MIB
    peer.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        peer.sock.recv(1)  # nothing more until we OKAY
    peer.sock.settimeout(10)
    received = len(first[3])
    while True:
        peer.send(packet(OKAY, 1, mine))
        command, _, _, data = peer.recv()
        if command == CLSE:
            break
        received += len(data)
    assert received == 3 * MIB
    peer.close()


@pytest.mark.parametrize("piece", [1, 3, 7, 4096])
def test_sync_requests_split_at_arbitrary_points(device, piece):
    content = bytes(range(256)) * 40
    path = b"/data/local/tmp/split.bin,33188"
    request = (b"SEND" + struct.pack("<I", len(path)) + path + b"DATA" + struct.pack("<I", len(content))
               + content + b"DONE" + struct.pack("<I", 1_700_000_000))
    peer = RawPeer(device.port)
    peer.handshake()
    mine = peer.open(9, "sync:")
    for start in range(0, len(request), piece):
        peer.send(packet(WRTE, 9, mine, request[start:start + piece]))
        assert peer.recv() == (OKAY, mine, 9, b"")
    assert peer.recv() == (WRTE, mine, 9, b"OKAY\0\0\0\0")
    assert (device.root / "split.bin").read_bytes() == content
    assert int((device.root / "split.bin").stat().st_mtime) == 1_700_000_000
    peer.close()


def test_sync_symlink_push_and_oversize_data_fail(device):
    peer = RawPeer(device.port)
    peer.handshake()
    mine = peer.open(2, "sync:")
    spec = b"/data/local/tmp/ln,%d" % 0o120777
    peer.send(packet(WRTE, 2, mine, b"SEND" + struct.pack("<I", len(spec)) + spec + b"DATA\x04\0\0\0/etcDONE\0\0\0\0"))
    assert peer.recv()[0] == OKAY
    command, _, _, data = peer.recv()
    assert command == WRTE and data.startswith(b"FAIL") and b"symbolic links cannot be pushed" in data
    assert not (device.root / "ln").exists()
    mine = peer.open(3, "sync:")
    spec = b"/data/local/tmp/big,33188"
    peer.send(packet(WRTE, 3, mine, b"SEND" + struct.pack("<I", len(spec)) + spec + b"DATA" + struct.pack("<I", 70000)))
    assert peer.recv()[0] == OKAY
    command, _, _, data = peer.recv()
    assert command == WRTE and b"oversize DATA message: 70000 bytes" in data
    assert list(device.root.iterdir()) == []
    peer.close()


BAD_INPUTS = {
    # name: (bytes, what is logged, whether the peer authenticates first)
    "bad magic": (packet(CNXN, 0x01000001, MIB, b"host::\0", magic=0), "bad magic", False),
    "length over the limit before online": (packet(CNXN, 0x01000001, MIB, length=2 * MIB),
                                            "before the connection is online (at most 4096", False),
    "length over maxdata": (packet(WRTE, 1, 1, length=2 * MIB), "exceeds maxdata 1048576", True),
    "unknown command": (packet(0x41414141, 1, 2), "unknown command 0x41414141", False),
    "garbage bytes": (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "bad magic", False),
    "OPEN before CNXN": (packet(OPEN, 1, 0, b"shell:echo\0"), "expected CNXN first, got OPEN", False),
    "OPEN before AUTH": (packet(CNXN, 0x01000001, MIB, b"host::\0") + packet(OPEN, 1, 0, b"shell:echo\0"),
                         "OPEN before authentication", False),
    "AUTH token from the host": (packet(CNXN, 0x01000001, MIB, b"host::\0") + packet(AUTH, 1, 0, b"x" * 20),
                                 "unexpected AUTH packet", False),
    "AUTH after authentication": (packet(AUTH, 2, 0, b"x" * 256), "unexpected AUTH packet", True),
    "AUTH with a bad public key": (packet(CNXN, 0x01000001, MIB, b"host::\0") + packet(AUTH, 3, 0, b"AAAA user@h\0"),
                                   "AUTH public key", False),
    "WRTE on a stream that does not exist": (packet(WRTE, 5, 99, b"x"), "WRTE for stream 99, which does not exist",
                                             True),
    "old protocol version": (packet(CNXN, 0x00FFFFFF, MIB, b"host::\0"), "unsupported protocol version", False),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_closes_that_connection_only(device, name):
    raw, logged, authenticate = BAD_INPUTS[name]
    bystander = RawPeer(device.port)
    bystander.handshake()
    peer = RawPeer(device.port)
    if authenticate:
        peer.handshake()
    peer.send(raw)
    assert peer.closed_by_device()
    assert "protocol error" in wait_for_log(device, logged)
    peer.close()
    # the adb server's connection, one opened before and one opened after all still work
    assert device.device.shell("echo still serving") == "still serving"
    mine = bystander.open(1, "shell:echo bystander")
    assert bystander.recv() == (WRTE, mine, 1, b"bystander\n")
    after = RawPeer(device.port)
    assert after.handshake().startswith(b"device::")
    after.close()
    bystander.close()


@pytest.mark.parametrize(("sent", "logged"), [
    (packet(CNXN, 0x01000001, MIB, b"host::\0")[:10], "got 10 of 24 header bytes"),
    (packet(CNXN, 0x01000001, MIB, b"host::features=shell_v2\0")[:30], "got 6 of 24 CNXN payload bytes"),
])
def test_half_sent_packet_then_close(device, sent, logged):
    peer = RawPeer(device.port)
    peer.send(sent)
    peer.close()
    wait_for_log(device, logged)
    assert device.device.shell("echo ok") == "ok"
