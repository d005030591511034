"""The emulated device's bounded resources: memory and threads at rest, under a burst and after;
the shell lexer's cost; push throughput with ADB authentication on.

    .venv/bin/python benchmarks/emulator_limits.py [--mib 64] [--rounds 3]

Starts its own adb server (adbutils' bundled adb, on a free port, emulator scanning off) and one
emulated device with its defaults (authentication on: the adb server's ~/.android/adbkey.pub),
then prints:

* RSS (MiB) and threads of the device process at rest, at the peak of a burst of 200 connections
  × 10 ``shell:echo`` streams (each authenticated; past MAX_CONNECTIONS refused at accept, past the
  worker pool refused with CLSE), and 5 s after the burst;
* the lexer's time on the worst of several 100 K- and 400 K-character inputs (limits.MAX_COMMAND_LINE
  refuses 400 K at the device; the lexer itself is timed here to show it is linear);
* ``adbutils sync.push`` and ``adb push`` of ``--mib`` MiB, median MB/s of ``--rounds``, beside
  the 507 MB/s the device pushed at before authentication and limits (target: within 10 %).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import adbutils

from device_agent.emulator.auth import default_key_path, load_private_key, sign_token
from device_agent.emulator.launch import spawn
from device_agent.emulator.shparse import lex

BEFORE_MB_S = 507.0  # adbutils sync.push through the device before issue 18 (benchmarks/emulator_transfer.py)
_HEADER = "<6I"
CNXN, OPEN, OKAY, WRTE, CLSE, AUTH = 0x4E584E43, 0x4E45504F, 0x59414B4F, 0x45545257, 0x45534C43, 0x48545541


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(pid: int) -> tuple[float, int]:
    """(RSS in MiB, threads) of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def _packet(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    import struct

    return struct.pack(_HEADER, command, arg0, arg1, len(data), 0, command ^ 0xFFFFFFFF) + data


def _recv(sock: socket.socket) -> tuple[int, int, int, bytes] | None:
    import struct

    def exact(n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    header = exact(24)
    if header is None:
        return None
    command, arg0, arg1, length, _, _ = struct.unpack(_HEADER, header)
    return command, arg0, arg1, exact(length) if length else b""


def _burst(port: int, pid: int, connections: int = 200, streams: int = 10) -> tuple[float, int, int, int, int]:
    """(peak RSS MiB, peak threads, streams answered, streams refused, connections refused)."""
    key = load_private_key(default_key_path())
    peak = [0.0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss, threads = _status(pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], threads)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(connections)]
    online = []
    for s in sockets:
        try:
            s.sendall(_packet(CNXN, 0x01000001, 1 << 20, b"host::\0"))
            reply = _recv(s)
            if reply and reply[0] == AUTH:
                s.sendall(_packet(AUTH, 2, 0, sign_token(key, reply[3])))
                reply = _recv(s)
            if reply and reply[0] == CNXN:
                online.append(s)
        except OSError:
            pass
    for s in online:
        s.sendall(b"".join(_packet(OPEN, i, 0, f"shell:echo {i}\0".encode()) for i in range(1, streams + 1)))
    answered = refused = 0
    for s in online:
        pending = set(range(1, streams + 1))
        while pending:
            reply = _recv(s)
            if reply is None:
                break
            command, mine, theirs, _ = reply
            if command == WRTE:
                answered += 1
                s.sendall(_packet(OKAY, theirs, mine))
            elif command == CLSE:
                refused += mine == 0
                pending.discard(theirs)
    for s in sockets:
        s.close()
    done.set()
    sampler.join()
    return peak[0], peak[1], answered, refused, connections - len(online)


def _lexing() -> dict[str, float]:
    cases = {"one word": "a", "quoted words": "'a'", "words": "a ", "operators": "a;", "variables": "$a",
             "double-quoted variables": '"$x"'}
    worst = {}
    for size in (100_000, 400_000):
        times = []
        for unit in cases.values():
            text = unit * (size // len(unit))
            start = time.perf_counter()
            lex(text, max_steps=len(text))
            times.append(time.perf_counter() - start)
        worst[f"{size // 1000} K"] = max(times)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="pushed file size in MiB (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="pushes per client (default 3)")
    args = parser.parse_args()
    adb = adbutils.adb_path()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="lab-limits-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "ADB_EMU": "0", "ADB_MDNS": "0", "ANDROID_ADB_SERVER_PORT": str(port)}
        subprocess.run([adb, "-P", str(port), "start-server"], env=env, check=True, capture_output=True)
        device_process = spawn(root=work / "device", log_path=work / "emulator.log")
        pid = device_process.process.pid
        try:
            client = adbutils.AdbClient(host="127.0.0.1", port=port)
            client.connect(device_process.address, timeout=20)
            client.wait_for(device_process.address, state="device", timeout=20)
            device = client.device(device_process.address)
            device.shell("echo ready")
            time.sleep(1.0)
            rest = _status(pid)
            peak_rss, peak_threads, answered, refused, refused_connections = _burst(device_process.port, pid)
            time.sleep(5.0)
            after = _status(pid)
            time.sleep(31.0)  # idle workers retire after 30 s
            retired = _status(pid)
            assert device.shell("echo alive") == "alive"

            source = work / "source.bin"
            source.write_bytes(os.urandom(args.mib << 20))
            size = source.stat().st_size

            def timed(action) -> list[float]:
                speeds = []
                for i in range(args.rounds):
                    start = time.perf_counter()
                    action(i)
                    speeds.append(size / (time.perf_counter() - start) / 1e6)
                    (work / "device" / f"p{i}.bin").unlink()
                return speeds

            sync_push = timed(lambda i: device.sync.push(source, f"/data/local/tmp/p{i}.bin"))
            cli_push = timed(lambda i: subprocess.run(
                [adb, "-P", str(port), "-s", device_process.address, "push", str(source), f"/data/local/tmp/p{i}.bin"],
                env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL))
            confinement = device.shell("getprop ro.lab.confinement")
        finally:
            device_process.stop()
            subprocess.run([adb, "-P", str(port), "kill-server"], env=env, capture_output=True)
    print(f"emulated device limits: {os.cpu_count()} CPUs, authentication on, confinement {confinement}")
    print(f"  at rest                 RSS {rest[0]:7.1f} MiB   threads {rest[1]:4d}")
    print(f"  200 x 10 burst (peak)   RSS {peak_rss:7.1f} MiB   threads {peak_threads:4d}   "
          f"streams answered {answered}, refused {refused}; connections refused {refused_connections}")
    print(f"  5 s after the burst     RSS {after[0]:7.1f} MiB   threads {after[1]:4d}")
    print(f"  36 s after the burst    RSS {retired[0]:7.1f} MiB   threads {retired[1]:4d}   (idle workers retired)")
    for size, seconds in _lexing().items():
        print(f"  lexing {size} characters (worst case)  {seconds * 1000:7.1f} ms")
    for name, speeds in (("adbutils sync.push", sync_push), ("adb push (command line)", cli_push)):
        median = statistics.median(speeds)
        print(f"  {name:<24} {median:7.1f} MB/s (min {min(speeds):.1f}, max {max(speeds):.1f}, {args.mib} MiB x "
              f"{args.rounds})  {median / BEFORE_MB_S:5.2f} x the {BEFORE_MB_S:.0f} MB/s before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
