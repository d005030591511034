"""``python -m device_agent emulator``: serve one emulated Android device over the ADB device protocol.

Usage::

    python -m device_agent emulator [--port 5555] [--host 127.0.0.1] [--root DIR] [--model NAME]
                                    [--allow-remote] [--facts-root DIR] [--trace]

Prints ``listening on HOST:PORT`` on stdout once it accepts connections (``--port 0`` picks a
free port), then serves until SIGTERM or SIGINT, and exits 0. Add it to an adb server with
``adb connect 127.0.0.1:PORT`` (serial ``127.0.0.1:PORT``); an adb server that starts while it
listens on an odd port in 5555-5585 finds it by itself as ``emulator-(PORT-1)``.

Logs go to stderr, one line per event (connections, refused services, protocol errors; every
packet with ``--trace``). Exit statuses: 0 after a signal, 1 when the port cannot be bound, 2 for
bad options (including a non-loopback ``--host`` without ``--allow-remote``).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import shutil
import signal
import socket
import socketserver
import sys
import tempfile
import threading
from pathlib import Path

from device_agent.emulator.device import NATIVE_RUNNER, Device, Runner
from device_agent.errors import AgentError
from device_agent.emulator.props import banner, device_props
from device_agent.emulator.sandbox import DEVICE_TMP, Sandbox
from device_agent.emulator.services import open_service
from device_agent.emulator.streams import Connection, log

__all__ = ["main", "DeviceServer", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m device_agent emulator",
        description="Serve an emulated Android device over the ADB device protocol (adb connect HOST:PORT).",
    )
    parser.add_argument("--port", type=int, default=5555, help="TCP port; 0 picks a free one (default 5555)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback --host: anyone who reaches the port can push files and run commands")
    parser.add_argument("--root", type=Path,
                        help=f"host folder behind {DEVICE_TMP} (default: a temporary folder removed at exit)")
    parser.add_argument("--model", help="ro.product.model (default 'lab emulated device')")
    parser.add_argument("--facts-root", type=Path, default=Path("/"),
                        help="where the read-only /proc and /sys views come from (default /; a captured tree for tests)")
    parser.add_argument("--trace", action="store_true", help="log every packet's header and payload start to stderr")
    parser.add_argument("--arch", choices=("native", "arm64"), default="native",
                        help="native: this machine's CPU; arm64: benchmark_model runs in an arm64 userland under QEMU")
    parser.add_argument("--cpu", default=None,
                        help="arm64 only: the emulated core (default neoverse-n1; see python -m device_agent qemu info)")
    parser.add_argument("--userland", type=Path, default=None,
                        help="arm64 only: the prepared userland (default $LAB_QEMU_CACHE or ~/.cache/lab/qemu-arm64)")
    return parser


def _device(args: argparse.Namespace, root: Path) -> Device:
    """The device the options describe; an arm64 one runs its benchmark_model under QEMU.

    Raises:
        AgentError: arm64 without a prepared userland (the message names the prepare command), or
            an unknown CPU.
    """
    if args.arch == "native":
        if args.cpu or args.userland:
            raise AgentError("--cpu and --userland apply to --arch arm64 only")
        return Device(Sandbox(root, args.facts_root), device_props(args.model, facts_root=args.facts_root), runner=NATIVE_RUNNER)
    from device_agent.qemu import CPUS, DEFAULT_CPU, default_dest, require_userland

    cpu = args.cpu or DEFAULT_CPU
    if cpu not in CPUS:
        raise AgentError(f"unknown --cpu {cpu!r}: choose one of {', '.join(CPUS)}")
    userland = require_userland(args.userland or default_dest())
    head, env = userland.bench_command([], cpu=cpu)
    # The guest sees the emulated core's /proc/cpuinfo; so does the device's shell.
    facts_root = userland.view(cpu) if args.facts_root == Path("/") else args.facts_root
    props = device_props(
        args.model, facts_root=facts_root, abi="arm64-v8a", soc_model=cpu, soc_manufacturer="ARM (emulated)",
        emulation=f"qemu-user {cpu}",
    )
    return Device(Sandbox(root, facts_root), props, runner=Runner(tuple(head), tuple(sorted(env.items()))))


class DeviceServer(socketserver.ThreadingTCPServer):
    """A thread per connection; each connection serves its streams in threads of their own."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], device: Device, *, trace: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.device = device
        self.trace = trace
        self.banner = banner(device.props, device.features)
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()

    def serve_connection(self, sock: socket.socket, peer: str) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(sock, peer, self.banner, open_service(self.device), trace=self.trace)
        with self._lock:
            self._connections.add(connection)
        log.info("connection from %s", peer)
        try:
            connection.serve()
        finally:
            with self._lock:
                self._connections.discard(connection)
            log.info("connection from %s closed", peer)


class _Handler(socketserver.BaseRequestHandler):
    server: DeviceServer

    def handle(self) -> None:
        host, port = self.client_address[:2]
        self.server.serve_connection(self.request, f"{host}:{port}")


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def _configure_logging(trace: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("emulator: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if trace else logging.INFO)
    log.propagate = False


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse already printed
        return e.code if isinstance(e.code, int) else 2
    _configure_logging(args.trace)
    if not is_loopback(args.host):
        if not args.allow_remote:
            log.error("refusing to listen on %r: not a loopback address; pass --allow-remote to let other "
                      "machines push files and run commands on this device", args.host)
            return 2
        log.warning("listening on %r: every machine that reaches this port can push files to %s and run "
                    "commands on this host as this user", args.host, DEVICE_TMP)
    temporary = args.root is None
    root = Path(tempfile.mkdtemp(prefix="lab-device-")) if temporary else args.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        try:
            device = _device(args, root)
        except AgentError as e:
            log.error("%s", e)
            return 2
        try:
            server = DeviceServer((args.host, args.port), device, trace=args.trace)
        except OSError as e:
            log.error("cannot listen on %s:%d: %s", args.host, args.port, e.strerror or e)
            return 1
        return _serve(server, device)
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


def _serve(server: DeviceServer, device: Device) -> int:
    """Serve in a thread until SIGTERM/SIGINT; the handlers only set an event, so a signal never
    interrupts the main thread halfway through something."""
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
        previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="adb-accept",
                               daemon=True)
    try:
        serving.start()
        host, port = str(server.server_address[0]), server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        log.info("serving %s from %s", DEVICE_TMP, device.sandbox.root)
        print(f"listening on {shown}:{port}", flush=True)
        while serving.is_alive() and not stop.wait(0.5):
            pass
    finally:
        if serving.ident is not None:  # shutdown() waits for serve_forever, which must have started
            server.shutdown()
        server.server_close()
        server.close_connections()
        device.processes.kill_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0
