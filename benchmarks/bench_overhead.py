"""The lab's own overhead per device: what ``lab bench`` costs beyond the trials it runs.

    .venv/bin/python benchmarks/bench_overhead.py [--rounds N]

On one emulated device (an adb server on a free port, the device started as ``lab emulator
start`` does) it runs ``lab bench add.tflite conv.tflite --trials 3 --runs 50 --json`` as a
subprocess, first with an empty device (the models are pushed) and then again (cached: the
device's sha256 matches, nothing is pushed). Overhead = the command's wall time minus the sum of
its trials' own run times (each trial's benchmark_model call, read back from the store). It also
times ``run_bench`` in-process, which leaves out Python start-up and imports.
Target: ≤ 1 s per device when cached.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import adbutils

from host.bench import model_file, run_bench
from host.devices import EmulatedDeviceHandle, adb_client, select_devices, start_emulated_device, stop_emulated_device
from host.records import BenchRequest, TrialParams
from host.store import open_store

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "models"


@dataclass
class LabEnv:
    home: Path
    client: adbutils.AdbClient
    devices: list[EmulatedDeviceHandle]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def lab_env(devices: int = 1) -> Iterator[LabEnv]:
    saved = {k: os.environ.get(k) for k in ("ANDROID_ADB_SERVER_PORT", "LAB_HOME", "LAB_DB_URL")}
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp)
        os.environ["ANDROID_ADB_SERVER_PORT"] = str(_free_port())
        os.environ["LAB_HOME"] = str(home)
        os.environ.pop("LAB_DB_URL", None)
        client = adb_client(on_start=lambda message: None)
        handles: list[EmulatedDeviceHandle] = []
        try:
            for _ in range(devices):
                handles.append(start_emulated_device(home, client=client))
            yield LabEnv(home, client, handles)
        finally:
            for handle in handles:
                stop_emulated_device(handle, client=client)
            client.server_kill()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


MODEL_FILES = [MODELS / "add.tflite", MODELS / "conv.tflite"]
TRIALS, RUNS = 3, 50


def cli_round(home: Path, serial: str) -> tuple[float, float, int]:
    """(wall s, sum of trial run times s, trials) of one ``lab bench`` subprocess."""
    lab = Path(sys.executable).with_name("lab")
    argv = [str(lab), "bench", *map(str, MODEL_FILES), "--device", serial, "--trials", str(TRIALS),
            "--runs", str(RUNS), "--warmup", "5", "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"lab bench failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    run_id = json.loads(proc.stdout)["run_id"]
    with open_store(f"sqlite:///{home / 'lab.db'}") as store:
        trials = store.load_trials(run_id)
    return wall, sum(t.duration_s for t in trials), len(trials)


def startup_s() -> float:
    """Wall time of ``lab bench --help``: Python start-up and importing the lab's command line."""
    lab = Path(sys.executable).with_name("lab")
    t0 = time.perf_counter()
    subprocess.run([str(lab), "bench", "--help"], capture_output=True, check=True)
    return time.perf_counter() - t0


def inprocess_round(home: Path, client: adbutils.AdbClient, serial: str) -> tuple[float, float]:
    models = [model_file(p) for p in MODEL_FILES]
    devices = select_devices(client, [serial])
    t0 = time.perf_counter()
    with open_store(f"sqlite:///{home / 'lab.db'}") as store:
        outcome = run_bench(
            BenchRequest(params=TrialParams(runs=RUNS, warmup_runs=5), trials=TRIALS), models, devices,
            store=store, home=home, config={"benchmark": "overhead"}, progress=None, client=client,
        )
    wall = time.perf_counter() - t0
    if outcome.exit_code != 0:
        raise SystemExit(f"run_bench failed: {outcome.setup_errors or [t.error for t in outcome.trials]}")
    return wall, sum(t.duration_s for t in outcome.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="cached rounds to take the median of")
    args = parser.parse_args()
    with lab_env(devices=1) as env:
        serial = env.devices[0].serial
        wall, trials_s, n = cli_round(env.home, serial)
        print(f"device: emulated {serial}; {len(MODEL_FILES)} models × {TRIALS} trials × {RUNS} runs ({n} trials)")
        print(f"first run (pushes)  lab bench wall {wall:6.3f} s, trials {trials_s:6.3f} s, "
              f"overhead {wall - trials_s:6.3f} s")
        cached = [cli_round(env.home, serial) for _ in range(args.rounds)]
        over = [w - t for w, t, _ in cached]
        print(
            f"cached run (median of {args.rounds})  lab bench wall {statistics.median(w for w, _, _ in cached):6.3f} s, "
            f"trials {statistics.median(t for _, t, _ in cached):6.3f} s, overhead {statistics.median(over):6.3f} s "
            f"(min {min(over):.3f}, max {max(over):.3f})"
        )
        inproc = [inprocess_round(env.home, env.client, serial) for _ in range(args.rounds)]
        over_in = [w - t for w, t in inproc]
        print(
            f"cached, in-process run_bench (median of {args.rounds}): overhead {statistics.median(over_in):6.3f} s "
            f"(min {min(over_in):.3f}, max {max(over_in):.3f}); the rest of the CLI's is Python start-up and imports"
        )
        startup = statistics.median(startup_s() for _ in range(args.rounds))
        print(f"Python start-up + imports (`lab bench --help`, median of {args.rounds}): {startup:6.3f} s")
        print(f"cached overhead without start-up: {statistics.median(over) - startup:6.3f} s")
        verdict = "meets" if statistics.median(over) <= 1.0 else "misses"
        print(f"target ≤ 1 s per device cached: {verdict} ({statistics.median(over):.3f} s with start-up, "
              f"{statistics.median(over_in):.3f} s in-process)")


if __name__ == "__main__":
    main()
