"""File transfer through the emulated device, against a plain local copy in the same run.

    .venv/bin/python benchmarks/emulator_transfer.py [--mib 64] [--rounds 3]

Starts its own adb server (adbutils' bundled adb, on a free port, emulator scanning off) and one
emulated device (``python -m device_agent emulator --port 0``), then moves a file of random bytes
``--rounds`` times each way with the adb command line (``adb push`` / ``adb pull``) and with
adbutils (``sync.push`` / ``sync.pull``, what the lab's host uses), checking every copy by sha256
outside the timed part. Prints the median MB/s (10^6 bytes per second) with the range, and the
ratio to ``shutil.copyfile`` of the same file on the same disk.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import adbutils

from device_agent.emulator.launch import spawn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _timed(rounds: int, size: int, action: Callable[[int], Path], expected: str) -> list[float]:
    """MB/s of each round of ``action`` (which returns the file it wrote, checked afterwards)."""
    speeds = []
    for i in range(rounds):
        start = time.perf_counter()
        written = action(i)
        elapsed = time.perf_counter() - start
        if _sha256(written) != expected:
            raise RuntimeError(f"round {i}: {written} does not match the source's sha256")
        written.unlink()
        speeds.append(size / elapsed / 1e6)
    return speeds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="file size in MiB (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="transfers per direction and client (default 3)")
    args = parser.parse_args()
    adb = adbutils.adb_path()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="lab-transfer-") as tmp:
        work = Path(tmp)
        source = work / "source.bin"
        source.write_bytes(os.urandom(args.mib << 20))
        size, expected = source.stat().st_size, _sha256(source)
        root = work / "device"
        env = {**os.environ, "ADB_EMU": "0", "ADB_MDNS": "0", "ANDROID_ADB_SERVER_PORT": str(port)}
        subprocess.run([adb, "-P", str(port), "start-server"], env=env, check=True, capture_output=True)
        device_process = spawn(root=root, log_path=work / "emulator.log")
        try:
            client = adbutils.AdbClient(host="127.0.0.1", port=port)
            client.connect(device_process.address, timeout=20)
            device = client.device(device_process.address)
            device.shell("echo ready")

            def adb_cli(*cmd: str) -> None:
                subprocess.run([adb, "-P", str(port), "-s", device_process.address, *cmd], env=env, check=True,
                               capture_output=True, stdin=subprocess.DEVNULL)

            def local_copy(i: int) -> Path:
                shutil.copyfile(source, work / f"copy{i}.bin")
                return work / f"copy{i}.bin"

            def cli_push(i: int) -> Path:
                adb_cli("push", str(source), f"/data/local/tmp/cli{i}.bin")
                return root / f"cli{i}.bin"

            def cli_pull(i: int) -> Path:
                adb_cli("pull", "/data/local/tmp/pull.bin", str(work / f"cli-pulled{i}.bin"))
                return work / f"cli-pulled{i}.bin"

            def sync_push(i: int) -> Path:
                device.sync.push(source, f"/data/local/tmp/sync{i}.bin")
                return root / f"sync{i}.bin"

            def sync_pull(i: int) -> Path:
                device.sync.pull("/data/local/tmp/pull.bin", work / f"sync-pulled{i}.bin")
                return work / f"sync-pulled{i}.bin"

            local = _timed(args.rounds, size, local_copy, expected)
            results = {"local shutil.copyfile": local}
            results["adb push (command line)"] = _timed(args.rounds, size, cli_push, expected)
            results["adbutils sync.push"] = _timed(args.rounds, size, sync_push, expected)
            shutil.copyfile(source, root / "pull.bin")
            results["adb pull (command line)"] = _timed(args.rounds, size, cli_pull, expected)
            results["adbutils sync.pull"] = _timed(args.rounds, size, sync_pull, expected)
        finally:
            device_process.stop()
            subprocess.run([adb, "-P", str(port), "kill-server"], env=env, capture_output=True)
    version = subprocess.run([adb, "version"], capture_output=True, text=True).stdout.splitlines()[1]
    print(f"emulated device transfer: {args.mib} MiB of random bytes, {args.rounds} rounds each, "
          f"adb {version.split()[1]}, {os.cpu_count()} CPUs")
    local_median = statistics.median(local)
    for name, speeds in results.items():
        median = statistics.median(speeds)
        print(f"  {name:<26} {median:8.1f} MB/s  (min {min(speeds):7.1f}, max {max(speeds):7.1f})"
              f"  {median / local_median:5.2f} x local copy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
