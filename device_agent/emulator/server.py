"""``python -m device_agent emulator``: serve one emulated Android device over the ADB device protocol.

Usage::

    python -m device_agent emulator [--port 5555] [--host 127.0.0.1] [--root DIR] [--model NAME]
                                    [--allow-remote] [--facts-root DIR] [--trace]
                                    [--authorized-keys FILE] [--accept-new-keys | --no-auth]
                                    [--profile NAME [--thermal-speed X] [--initial-temp C]]
                                    [--offline]

Prints ``listening on HOST:PORT`` on stdout once it accepts connections (``--port 0`` picks a
free port), then serves until SIGTERM or SIGINT, and exits 0. Add it to an adb server with
``adb connect 127.0.0.1:PORT`` (serial ``127.0.0.1:PORT``); an adb server that starts while it
listens on an odd port in 5555-5585 finds it by itself as ``emulator-(PORT-1)``.

Hosts authenticate as with a phone's adbd: the device sends AUTH TOKEN and accepts a signature by
a key in ``--authorized-keys`` (default ``~/.android/adbkey.pub``, the key the adb server of the
same user signs with). A host with another key leaves the device ``unauthorized`` in
``adb devices`` until its key is added to that file (or ``--accept-new-keys`` takes any key).
``--no-auth`` turns authentication off, with a warning.

``--profile NAME`` (``device_agent/profiles/NAME.json``) makes it answer as that phone: its
properties, CPU clusters and frequencies, thermal zones, ``dumpsys battery``/``thermalservice``,
``cmd power set-fixed-performance-mode-enabled`` (SDK 30+) and ``taskset``; its die heats while
benchmark_model runs and its big clusters throttle past the trip point, the runner slowed in
proportion by sleeping after each invoke (``ro.lab.slowdown`` and the runner's output say so).
``--thermal-speed X`` runs that thermal clock X times faster. ``--offline`` accepts connections but
never answers the handshake, so adb lists the device ``offline``.

Connections are served by one event loop and services by a pool of worker threads; every limit
(connections, streams, queued bytes, timeouts, line lengths) is in ``limits`` and docs/PROTOCOL.md.

Logs go to stderr, one line per event (connections, refused services, protocol errors; every
packet with ``--trace``). Exit statuses: 0 after a signal, 1 when the port cannot be bound, 2 for
bad options (including a non-loopback ``--host`` without ``--allow-remote``, or an authorized-keys
file that cannot be read or made).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from device_agent.emulator import limits as L
from device_agent.emulator.auth import AuthError, AuthorizedKeys, decode_public_key, default_key_path, \
    ensure_key_pair, fingerprint
from device_agent.emulator.confine import MODES, Confinement, Limits
from device_agent.emulator.device import NATIVE_RUNNER, PHONE_RUNNER, Device, Runner
from device_agent.emulator.phone import SLOWDOWN_NOTE, Phone
from device_agent.profiles import load_profile, profile_names
from device_agent.errors import AgentError
from device_agent.emulator.props import banner, device_props
from device_agent.emulator.sandbox import DEVICE_TMP, Sandbox
from device_agent.emulator.services import open_service
from device_agent.emulator.streams import Connection, log

__all__ = ["main", "Hub", "Auth", "ServicePool", "build_parser"]


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
    parser.add_argument("--storage", type=_size, default=None, metavar="BYTES",
                        help="size of the device's /data (e.g. 64M): df reports it and writes past it fail with "
                             "'No space left on device'; default: the host's free space")
    parser.add_argument("--trace", action="store_true", help="log every packet's header and payload start to stderr")
    confine = parser.add_argument_group("confinement of the processes the shell starts (see ro.lab.confinement)")
    confine.add_argument("--confinement", choices=("auto", *MODES), default="auto",
                         help="auto (default): namespaces when root, a user namespace otherwise, else limits only")
    confine.add_argument("--cpu-seconds", type=int, default=L.DEFAULT_CPU_SECONDS, metavar="S",
                         help=f"CPU seconds one command may use, children included (default {L.DEFAULT_CPU_SECONDS})")
    confine.add_argument("--memory", type=_size, default=L.DEFAULT_ADDRESS_SPACE, metavar="BYTES",
                         help="address space of each process, e.g. 8G (default 8G; 0: no limit)")
    confine.add_argument("--file-size", type=_size, default=L.DEFAULT_FILE_SIZE, metavar="BYTES",
                         help="largest file a process may write (default 4G)")
    confine.add_argument("--processes", type=int, default=L.DEFAULT_PROCESSES, metavar="N",
                         help=f"processes and threads of the device's shell user (default {L.DEFAULT_PROCESSES})")
    auth = parser.add_argument_group("authentication (as adbd: AUTH TOKEN, the host's RSA signature)")
    auth.add_argument("--authorized-keys", type=Path, metavar="FILE",
                      help="adb public keys the device accepts, one per line (default: ~/.android/adbkey.pub of "
                           "this user, created the way adb creates it if missing)")
    auth.add_argument("--accept-new-keys", action="store_true",
                      help="accept any key a host offers and add it to the authorized keys (a user tapping "
                           "'Always allow' on every prompt)")
    auth.add_argument("--no-auth", action="store_true",
                      help="no authentication at all: only for throwaway containers on a private network")
    phone = parser.add_argument_group("phone profiles (device_agent/profiles)")
    phone.add_argument("--profile", metavar="NAME",
                       help=f"answer as this phone: {', '.join(profile_names())}, or a profile .json file")
    phone.add_argument("--thermal-speed", type=float, default=1.0, metavar="X",
                       help="run the profile's heating and cooling X times faster than real time (default 1)")
    phone.add_argument("--initial-temp", type=float, default=None, metavar="C",
                       help="the die's temperature at start (default: the profile's ambient), e.g. a phone still hot")
    parser.add_argument("--offline", action="store_true",
                        help="accept connections and never answer them: adb lists the device 'offline'")
    parser.add_argument("--arch", choices=("native", "arm64"), default="native",
                        help="native: this machine's CPU; arm64: benchmark_model runs in an arm64 userland under QEMU")
    parser.add_argument("--cpu", default=None,
                        help="arm64 only: the emulated core (default neoverse-n1; see python -m device_agent qemu info)")
    parser.add_argument("--userland", type=Path, default=None,
                        help="arm64 only: the prepared userland (default $LAB_QEMU_CACHE or ~/.cache/lab/qemu-arm64)")
    return parser


def _size(text: str) -> int:
    """``512M``, ``8G``, ``1048576``: a size in bytes for argparse."""
    units = {"": 1, "K": 1024, "M": L.MiB, "G": L.GiB}
    number, unit = text.rstrip("KMGkmgBb").strip(), text[len(text.rstrip("KMGkmgBb")):].upper().rstrip("B")
    if not number.isdigit() or unit not in units:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 8G)")
    return int(number) * units[unit]


def _device(args: argparse.Namespace, root: Path) -> Device:
    """The device the options describe; an arm64 one runs its benchmark_model under QEMU.

    Raises:
        AgentError: arm64 without a prepared userland (the message names the prepare command), or
            an unknown CPU.
    """
    if args.profile is not None and args.arch != "native":
        raise AgentError("--profile applies to --arch native only: the profile's own clock model replaces QEMU's")
    if args.thermal_speed <= 0:
        raise AgentError(f"--thermal-speed must be positive, got {args.thermal_speed:g}")
    if args.profile is not None:
        return _phone_device(args, root)
    if args.arch == "native":
        if args.cpu or args.userland:
            raise AgentError("--cpu and --userland apply to --arch arm64 only")
        sandbox = Sandbox(root, args.facts_root, args.storage)
        confinement = _confinement(args, sandbox, NATIVE_RUNNER)
        props = device_props(args.model, facts_root=args.facts_root)
        props["ro.lab.confinement"] = confinement.describe()
        return Device(sandbox, props, runner=NATIVE_RUNNER, confinement=confinement)
    from device_agent.qemu import CPUS, DEFAULT_CPU, default_dest, require_userland

    cpu = args.cpu or DEFAULT_CPU
    if cpu not in CPUS:
        raise AgentError(f"unknown --cpu {cpu!r}: choose one of {', '.join(CPUS)}")
    userland = require_userland(args.userland or default_dest())
    head, env = userland.bench_command([], cpu=cpu)
    env["PYTHONSAFEPATH"] = "1"  # the guest's `python -m device_agent` must not import from the sandbox
    # The guest sees the emulated core's /proc/cpuinfo; so does the device's shell.
    facts_root = userland.view(cpu) if args.facts_root == Path("/") else args.facts_root
    props = device_props(
        args.model, facts_root=facts_root, abi="arm64-v8a", soc_model=cpu, soc_manufacturer="ARM (emulated)",
        emulation=f"qemu-user {cpu}",
    )
    runner = Runner(tuple(head), tuple(sorted(env.items())), address_space=False)
    sandbox = Sandbox(root, facts_root, args.storage)
    confinement = _confinement(args, sandbox, runner, [str(userland.root)])
    props["ro.lab.confinement"] = confinement.describe()
    return Device(sandbox, props, runner=runner, confinement=confinement)


def _phone_device(args: argparse.Namespace, root: Path) -> Device:
    """A device that answers as the profile's phone, its runner padded to the phone's speed.

    Raises:
        AgentError: no such profile, or a profile file that is not valid.
    """
    profile = load_profile(args.profile)
    phone = Phone(profile, Path(tempfile.mkdtemp(prefix="lab-phone-")), thermal_speed=args.thermal_speed,
                  initial_temp_c=args.initial_temp)
    runner = Runner(PHONE_RUNNER.head, (("LAB_PHONE_PROFILE", profile.name), ("LAB_PHONE_STATE", str(phone.state_dir))))
    sandbox = Sandbox(root, args.facts_root, args.storage, overlay=phone)
    confinement = _confinement(args, sandbox, runner)
    props = {
        **profile.props,
        "ro.lab.emulated": "1",
        "ro.lab.emulation": "native",
        "ro.lab.profile": profile.name,
        "ro.lab.slowdown": SLOWDOWN_NOTE,
        "ro.lab.confinement": confinement.describe(),
    }
    if args.model:
        props["ro.product.model"] = args.model
    phone.start()
    log.info("answering as phone profile %s (%s); thermal clock x%g", profile.name, profile.description,
             args.thermal_speed)
    return Device(sandbox, props, runner=runner, confinement=confinement, phone=phone)


def _serve_offline(host: str, port: int) -> int:
    """Accept connections and never answer: adb waits for a CNXN that never comes and lists the
    device ``offline`` (as a phone whose adbd hangs). Serves until SIGTERM or SIGINT."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    held: list[socket.socket] = []
    try:
        with socket.create_server((host, port)) as server:
            server.settimeout(0.2)
            shown = server.getsockname()
            print(f"listening on {shown[0]}:{shown[1]}", flush=True)
            log.info("offline mode: connections are accepted and never answered")
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                if len(held) < L.MAX_CONNECTIONS:
                    held.append(conn)
                else:
                    conn.close()
    except OSError as e:
        log.error("cannot listen on %s:%d: %s", host, port, e.strerror or e)
        return 1
    finally:
        for conn in held:
            conn.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _confinement(args: argparse.Namespace, sandbox: Sandbox, runner: Runner,
                 extra: list[str] | None = None) -> Confinement:
    """The strongest confinement this machine allows (or the one asked for); the sandbox is given
    to the user commands run as.

    Raises:
        AgentError: ``--confinement MODE`` that does not work here.
    """
    paths = list(extra or [])
    for value in [*runner.head, *(v for _, v in runner.env)]:
        for part in value.split(os.pathsep):
            if part.startswith("/") and os.path.exists(part):
                paths.append(os.path.realpath(part) if os.path.isdir(part) else part)
    limits = Limits(cpu_s=args.cpu_seconds, address_space=args.memory, file_size=args.file_size,
                    processes=args.processes)
    try:
        confinement = Confinement.detect(sandbox.root, requested=args.confinement, limits=limits, read_only=paths)
    except RuntimeError as e:
        raise AgentError(str(e)) from e
    if confinement.owner is not None:
        sandbox.adopt_tree(confinement.owner)
    log.info("confinement of device processes: %s", confinement.describe())
    if confinement.mode == "none":
        log.warning("device processes run without namespaces (%s): they can read what this user can read",
                    confinement.note or "--confinement none")
    return confinement


class ServicePool:
    """Worker threads that run services: at most ``max_threads``, started when work waits and no
    worker is idle, retired after ``idle_s`` without work. An OPEN first reserves a place
    (running or waiting); past ``max_threads + max_queued`` places it is refused."""

    def __init__(self, max_threads: int = L.MAX_SERVICE_THREADS, max_queued: int = L.MAX_QUEUED_SERVICES,
                 idle_s: float = 30.0) -> None:
        self._cond = threading.Condition()
        self._jobs: deque[Callable[[], None]] = deque()
        self._max_threads = max_threads
        self._capacity = max_threads + max_queued
        self._idle_s = idle_s
        self._places = 0  # reserved: waiting or running
        self._threads = 0
        self._idle = 0

    def reserve(self) -> bool:
        with self._cond:
            if self._places >= self._capacity:
                return False
            self._places += 1
            return True

    def start(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a worker; the caller reserved its place."""
        with self._cond:
            self._jobs.append(job)
            if len(self._jobs) <= self._idle:
                self._cond.notify()
                return
            if self._threads >= self._max_threads:
                return  # waits for a worker
            self._threads += 1
        threading.Thread(target=self._work, name="adb-service", daemon=True).start()

    @property
    def threads(self) -> int:
        return self._threads

    def _work(self) -> None:
        with self._cond:
            while True:
                while not self._jobs:
                    self._idle += 1
                    woken = self._cond.wait(self._idle_s)
                    self._idle -= 1
                    if not woken and not self._jobs:
                        self._threads -= 1
                        return
                job = self._jobs.popleft()
                self._cond.release()
                try:
                    job()
                finally:
                    self._cond.acquire()
                    self._places -= 1


@dataclass
class Auth:
    """What the device accepts: the keys of its authorized-keys file, and maybe new keys."""

    keys: AuthorizedKeys
    accept_new_keys: bool = False

    @staticmethod
    def decode(data: bytes | bytearray):
        return decode_public_key(bytes(data))

    @staticmethod
    def fingerprint(key) -> str:
        return fingerprint(key)


class Hub:
    """The device's event loop: accepts connections, reads every socket, drains outgoing queues,
    enforces the connection limits and timeouts. One thread runs :meth:`serve_forever`; services
    run on :attr:`pool`."""

    def __init__(self, address: tuple[str, int], device: Device, *, auth: Auth | None, trace: bool = False) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(address)
            self.listener.listen(L.LISTEN_BACKLOG)
        except OSError:
            self.listener.close()
            raise
        self.listener.setblocking(False)
        self.server_address = self.listener.getsockname()
        self.device = device
        self.auth = auth
        self.trace = trace
        self.banner = banner(device.props, device.features)
        self.open_service = open_service(device)
        self.pool = ServicePool()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._lock = threading.Lock()
        self._want_write: set[Connection] = set()
        self._connections: set[Connection] = set()
        self._unauthorized: deque[Connection] = deque()
        self._queued = 0  # bytes queued for services, all connections (MAX_QUEUED_BYTES_TOTAL)
        self._stop = threading.Event()

    # -- called from any thread -------------------------------------------------------------------

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def want_write(self, conn: Connection) -> None:
        with self._lock:
            fresh = conn not in self._want_write
            self._want_write.add(conn)
        if fresh and threading.current_thread() is not self._loop_thread:
            self.wake()

    def reserve(self, n: int) -> bool:
        with self._lock:
            if self._queued + n > L.MAX_QUEUED_BYTES_TOTAL:
                return False
            self._queued += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self._queued -= n

    @property
    def queued_bytes(self) -> int:
        return self._queued

    def shutdown(self) -> None:
        self._stop.set()
        self.wake()

    # -- called from the event loop -------------------------------------------------------------

    def authorized(self, conn: Connection) -> None:
        if conn in self._unauthorized:
            self._unauthorized.remove(conn)

    def unauthorized(self, conn: Connection) -> None:
        if conn not in self._unauthorized:
            self._unauthorized.append(conn)
        while len(self._unauthorized) > L.MAX_UNAUTHORIZED_CONNECTIONS:
            oldest = self._unauthorized.popleft()
            log.warning("closing unauthorized connection from %s: more than %d wait for authorization "
                        "(MAX_UNAUTHORIZED_CONNECTIONS)", oldest.peer, L.MAX_UNAUTHORIZED_CONNECTIONS)
            self._drop(oldest)

    _loop_thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        self._loop_thread = threading.current_thread()
        next_check = 0.0
        while not self._stop.is_set():
            for key, events in self._selector.select(timeout=0.25):
                if key.data is None:
                    self._accept()
                elif key.data == "wake":
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    conn: Connection = key.data
                    if conn not in self._connections:
                        continue
                    try:
                        if events & selectors.EVENT_WRITE:
                            self._flush(conn)
                        if events & selectors.EVENT_READ and conn in self._connections and not conn.receive():
                            self._drop(conn)
                    except Exception as e:  # a bug met by one connection must not stop the device
                        log.exception("closing connection from %s after an internal error: %s", conn.peer, e)
                        self._drop(conn)
            self._register_writers()
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.25
                self._check(now)
        for conn in list(self._connections):
            self._drop(conn, quiet=True)
        self._selector.close()
        self.listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _accept(self) -> None:
        while True:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and the like: say so, go on with the connections we have
                log.error("accept failed: %s", e)
                return
            peer = f"{address[0]}:{address[1]}"
            if len(self._connections) >= L.MAX_CONNECTIONS:
                log.warning("refused connection from %s: %d connections are open (MAX_CONNECTIONS)",
                            peer, L.MAX_CONNECTIONS)
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            conn = Connection(sock, peer, self)
            self._connections.add(conn)
            self._selector.register(sock, selectors.EVENT_READ, conn)
            log.info("connection from %s", peer)

    def _flush(self, conn: Connection) -> None:
        if conn.flush() and conn.writing:
            conn.writing = False
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def _register_writers(self) -> None:
        with self._lock:
            wanted, self._want_write = self._want_write, set()
        for conn in wanted:
            if conn in self._connections and not conn.writing:
                if conn.flush():
                    continue
                conn.writing = True
                self._selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _check(self, now: float) -> None:
        for conn in list(self._connections):
            reason = "connection lost" if conn.dead else conn.expired(now)
            if reason is not None:
                if not conn.dead:
                    log.warning("closing connection from %s: %s", conn.peer, reason)
                self._drop(conn, quiet=True)

    def _drop(self, conn: Connection, *, quiet: bool = False) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        if conn in self._unauthorized:
            self._unauthorized.remove(conn)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.close()
        log.info("connection from %s closed", conn.peer)

    @property
    def connection_count(self) -> int:
        return len(self._connections)


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


def _auth(args: argparse.Namespace) -> Auth | None:
    """The device's authentication from the options; None with --no-auth.

    Raises:
        AuthError: the default key cannot be created, or the authorized-keys file is not readable.
    """
    if args.no_auth:
        log.warning("--no-auth: any process that reaches this port can push files and run commands on this "
                    "device without a key; use it only in a throwaway container or private network")
        return None
    path = args.authorized_keys
    if path is None:
        path = ensure_key_pair(default_key_path())
    elif not path.exists() and not args.accept_new_keys:
        raise AuthError(f"--authorized-keys {path} does not exist (create it with the host's adbkey.pub lines, "
                        "or add --accept-new-keys to start with none and accept every key offered)")
    keys = AuthorizedKeys(path, warn=lambda message: log.warning("%s", message))
    count = len(keys.keys())
    log.info("ADB authentication on: %d authorized key(s) in %s%s", count, path,
             "; new keys are accepted and added (--accept-new-keys)" if args.accept_new_keys else "")
    if args.accept_new_keys:
        log.warning("--accept-new-keys: any key a host offers is added to %s, as if a user tapped 'Always allow'", path)
    return Auth(keys, accept_new_keys=args.accept_new_keys)


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
        log.warning("listening on %r: every machine that reaches this port can %s", args.host,
                    "push files and run commands on this device" if args.no_auth
                    else "try to authenticate (only authorized keys get in)")
    if args.no_auth and args.accept_new_keys:
        log.error("--no-auth and --accept-new-keys contradict each other")
        return 2
    if args.offline:
        return _serve_offline(args.host, args.port)
    temporary = args.root is None
    root = Path(tempfile.mkdtemp(prefix="lab-device-")) if temporary else args.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        try:
            device = _device(args, root)
            auth = _auth(args)
        except AgentError as e:
            log.error("%s", e)
            return 2
        try:
            hub = Hub((args.host, args.port), device, auth=auth, trace=args.trace)
        except OSError as e:
            log.error("cannot listen on %s:%d: %s", args.host, args.port, e.strerror or e)
            return 1
        try:
            return _serve(hub, device)
        finally:
            if device.phone is not None:
                device.phone.stop()
                shutil.rmtree(device.phone.state_dir, ignore_errors=True)
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


def _serve(hub: Hub, device: Device) -> int:
    """Serve in a thread until SIGTERM/SIGINT; the handlers only set an event, so a signal never
    interrupts the main thread halfway through something."""
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
        previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    serving = threading.Thread(target=hub.serve_forever, name="adb-loop", daemon=True)
    try:
        serving.start()
        host, port = str(hub.server_address[0]), hub.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        log.info("serving %s from %s", DEVICE_TMP, device.sandbox.root)
        print(f"listening on {shown}:{port}", flush=True)
        while serving.is_alive() and not stop.wait(0.5):
            pass
    finally:
        hub.shutdown()
        serving.join(10)
        device.processes.kill_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0
