"""Every limit the emulated device enforces, in one place (documented in docs/PROTOCOL.md, "Limits").

Where a real adbd or the Linux kernel has the same limit, the comment gives its figure. A limit
that is reached closes what went over it (one stream, one connection, one command) with a log
line; the device itself goes on serving.
"""

from __future__ import annotations

__all__ = [
    "MAX_PAYLOAD_BEFORE_ONLINE", "MAX_CONNECTIONS", "MAX_UNAUTHORIZED_CONNECTIONS", "MAX_STREAMS_PER_CONNECTION",
    "MAX_SERVICE_THREADS", "MAX_QUEUED_SERVICES", "MAX_SERVICE_NAME", "MAX_COMMAND_LINE",
    "MAX_QUEUED_WRTES_PER_STREAM", "MAX_QUEUED_BYTES_PER_CONNECTION", "MAX_QUEUED_BYTES_TOTAL",
    "MAX_OUTGOING_BYTES_PER_CONNECTION", "HANDSHAKE_TIMEOUT_S", "PACKET_TIMEOUT_S", "LISTEN_BACKLOG",
    "MAX_SHELL_STEPS", "DEFAULT_CPU_SECONDS", "DEFAULT_ADDRESS_SPACE", "DEFAULT_FILE_SIZE", "DEFAULT_PROCESSES",
    "MiB", "GiB",
]

MiB = 1024 * 1024
GiB = 1024 * MiB

# -- connections -------------------------------------------------------------------------------
MAX_PAYLOAD_BEFORE_ONLINE = 4096
"""Payload bytes a packet may carry before the connection is online (CNXN, AUTH). adbd's
MAX_PAYLOAD_V1 (4 KiB), the size every peer must accept before CNXN says otherwise; an adb public
key (about 720 bytes) and a 2048-bit signature (256 bytes) fit."""
MAX_CONNECTIONS = 64
"""Open TCP connections. adbd has no such limit (one adb server holds one connection per device);
more are accepted and closed at once with a log line."""
MAX_UNAUTHORIZED_CONNECTIONS = 8
"""Connections that offered a key the device does not accept and wait, as on a phone showing its
prompt. Beyond this, the oldest waiting one is closed."""
HANDSHAKE_TIMEOUT_S = 10.0
"""From accept to the host's CNXN, and from each AUTH TOKEN to the host's answer."""
PACKET_TIMEOUT_S = 30.0
"""Once a packet's first byte arrived, the rest must arrive within this (half a header no longer
holds a connection). A connection that is online and between packets has no timeout, as with
adbd: the adb server keeps its connection idle between commands."""
LISTEN_BACKLOG = 512
"""listen(2) backlog: a burst of 200 connections waits to be accepted instead of being dropped
(the kernel caps it at net.core.somaxconn, 4096 on current kernels)."""

# -- streams -----------------------------------------------------------------------------------
MAX_STREAMS_PER_CONNECTION = 64
"""Open streams on one connection; more OPENs are refused with CLSE."""
MAX_SERVICE_THREADS = 64
"""Worker threads that run services (shell, sync), for the whole device: a pool, not a thread per
stream. A stream waits in the queue below until a worker is free."""
MAX_QUEUED_SERVICES = 192
"""Opened streams waiting for a worker; beyond this an OPEN is refused with CLSE."""
MAX_SERVICE_NAME = 131072 + 1024
"""Bytes of an OPEN's service name: a command line (below) plus room for ``shell,v2,TERM=…,raw:``.
adbd takes up to its maxdata (1 MiB) but then runs ``sh -c COMMAND``, which the kernel refuses past
MAX_COMMAND_LINE."""
MAX_QUEUED_WRTES_PER_STREAM = 4
"""WRTEs the host may send ahead of our OKAYs on one stream; adb sends one and waits."""
MAX_QUEUED_BYTES_PER_CONNECTION = 8 * MiB
"""Payload bytes received and not yet taken by the services of one connection. A WRTE that would
go over closes its stream (CLSE, log line)."""
MAX_QUEUED_BYTES_TOTAL = 64 * MiB
"""The same, for all connections together."""
MAX_OUTGOING_BYTES_PER_CONNECTION = 32 * MiB
"""Bytes waiting to be sent to a host that does not read; over this the connection is closed.
Services wait (flow control) long before: each stream has at most one WRTE in flight."""

# -- the shell ---------------------------------------------------------------------------------
MAX_COMMAND_LINE = 131072
"""Characters of one shell command line (a service's command, or one line typed on stdin). Linux's
MAX_ARG_STRLEN: a phone's adbd runs ``/system/bin/sh -c COMMAND`` and the kernel refuses a longer
argument with E2BIG. Longer input is refused with a message, not parsed."""
MAX_SHELL_STEPS = 8 * MAX_COMMAND_LINE
"""Lexer steps one command line may take; the lexer is linear, so a line within MAX_COMMAND_LINE
never gets near this. A guard that turns a future quadratic slip into a syntax error, not a pinned CPU."""

# -- processes the shell starts (defaults of --cpu-seconds, --memory, --file-size, --processes) --
DEFAULT_CPU_SECONDS = 600
"""CPU seconds one command may use, its child processes included where a PID namespace lets the
device count them (else per process, RLIMIT_CPU)."""
DEFAULT_ADDRESS_SPACE = 8 * GiB
"""RLIMIT_AS of each process. Not set for the arm64 runner: QEMU reserves the guest's address
space up front."""
DEFAULT_FILE_SIZE = 4 * GiB
"""RLIMIT_FSIZE: the largest file a process may write."""
DEFAULT_PROCESSES = 256
"""Tasks (processes and threads) of the device's shell user at once (RLIMIT_NPROC, counted per uid
by the kernel; a phone's shell user has no such limit but a phone has few cores)."""
