"""The ADB transport protocol's framing: packet header, commands, limits and the CNXN banner.

Every packet is a 24-byte little-endian header followed by ``data_length`` payload bytes::

    command  arg0  arg1  data_length  data_check  magic (= command ^ 0xffffffff)

Since protocol version 0x01000001 (``A_VERSION_SKIP_CHECKSUM``) ``data_check`` is 0 and not
checked. Spec: AOSP ``packages/modules/adb/protocol.txt``; captures in ``docs/PROTOCOL.md``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from device_agent.errors import ProtocolError

__all__ = [
    "A_CNXN", "A_OPEN", "A_OKAY", "A_WRTE", "A_CLSE", "A_AUTH", "A_STLS", "A_SYNC",
    "VERSION", "VERSION_MIN", "VERSION_SKIP_CHECKSUM", "MAX_PAYLOAD", "HEADER_SIZE",
    "ConnectionEnded", "Packet", "command_name", "encode_header", "read_packet", "checksum", "HEADER", "COMMANDS",
]

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
A_STLS = 0x534C5453

VERSION_MIN = 0x01000000
VERSION_SKIP_CHECKSUM = 0x01000001
VERSION = VERSION_SKIP_CHECKSUM
MAX_PAYLOAD = 1024 * 1024  # what we accept and announce in CNXN's arg1
HEADER_SIZE = 24

_HEADER = struct.Struct("<6I")
HEADER = _HEADER
_NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_OPEN: "OPEN", A_OKAY: "OKAY", A_CLSE: "CLSE",
          A_WRTE: "WRTE", A_AUTH: "AUTH", A_STLS: "STLS"}
COMMANDS = frozenset(_NAMES)


class ConnectionEnded(Exception):
    """The peer closed the connection cleanly, between two packets."""


@dataclass(frozen=True)
class Packet:
    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return command_name(self.command)


def command_name(command: int) -> str:
    return _NAMES.get(command, f"0x{command:08x}")


def checksum(data: bytes) -> int:
    """The pre-0x01000001 payload checksum: the sum of the bytes, modulo 2**32."""
    return sum(data) & 0xFFFFFFFF


def encode_header(command: int, arg0: int, arg1: int, length: int, check: int = 0) -> bytes:
    return _HEADER.pack(command, arg0, arg1, length, check, command ^ 0xFFFFFFFF)


def read_packet(stream: BinaryIO, *, max_payload: int = MAX_PAYLOAD, verify_checksum: bool = False) -> Packet:
    """Read one packet, validating it before its payload is read.

    Raises:
        ConnectionEnded: the peer closed the connection before a new header began.
        ProtocolError: a short header or payload (the peer closed mid-packet), bad magic, an
            unknown command, a payload longer than ``max_payload`` or a wrong checksum.
    """
    header = stream.read(HEADER_SIZE)
    if not header:
        raise ConnectionEnded()
    if len(header) < HEADER_SIZE:
        raise ProtocolError(f"connection closed mid-packet: got {len(header)} of {HEADER_SIZE} header bytes")
    command, arg0, arg1, length, check, magic = _HEADER.unpack(header)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic 0x{magic:08x} for command 0x{command:08x} (header {header.hex()})")
    if command not in _NAMES:
        raise ProtocolError(f"unknown command 0x{command:08x} (header {header.hex()})")
    if length > max_payload:
        raise ProtocolError(f"{command_name(command)} payload of {length} bytes exceeds maxdata {max_payload}")
    data = stream.read(length) if length else b""
    if len(data) < length:
        raise ProtocolError(
            f"connection closed mid-packet: got {len(data)} of {length} {command_name(command)} payload bytes"
        )
    if verify_checksum and checksum(data) != check:
        raise ProtocolError(f"{command_name(command)} checksum 0x{check:08x} does not match its payload")
    return Packet(command, arg0, arg1, data)
