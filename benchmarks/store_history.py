"""Result store at scale: insert throughput and `lab history` answer times over 1,000,000 measurements.

    .venv/bin/python benchmarks/store_history.py                 # 1,000,000 measurements (a few minutes)
    .venv/bin/python benchmarks/store_history.py --measurements 100000 --keep /tmp/store.db

The store is filled the way `lab bench` fills it: runs of 2 models × 5 devices × 5 trials
(50 measurements, each with ~1.5 KB of raw benchmark_model output and 50 raw per-invoke samples),
an hour apart, from a pool of 10 model pairs and 8 devices. Each run is saved with one
``save_trials`` call (one transaction); separately, 2,000 trials go through ``save_trial`` one by
one, the path parallel device workers take. Then each `lab history` filter is answered through
the same service the command uses (query + median and bootstrap CI per row), repeated 5 times;
the median time is reported. Target: well under a second.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from host.records import Trial
from host.report import history_rows
from host.store import HistoryFilter, Store, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for its tests' synthetic trials
from tests.host.synthetic import emulated_device, model_file, phone, synthetic_trial  # noqa: E402

TRIALS_PER_GROUP = 5
DEVICES_PER_RUN = 5
MODELS_PER_RUN = 2
PER_RUN = TRIALS_PER_GROUP * DEVICES_PER_RUN * MODELS_PER_RUN
START = datetime(2023, 1, 1, tzinfo=timezone.utc)


def _pools(rng: np.random.Generator) -> tuple[list, list, dict]:
    devices = [phone(f"PHONE{i:02d}", model=f"Pixel {i + 3}") for i in range(6)]
    devices += [emulated_device("emulator-5554"), emulated_device("emulator-5556", emulation="qemu-user neoverse-n1")]
    pairs = [
        (
            model_file(f"net{p}_dense.tflite", "dense", variant=str(p)),
            model_file(f"net{p}_pruned.tflite", "pruned", variant=str(p)),
        )
        for p in range(10)
    ]
    templates: dict[tuple[int, int, int], list[Trial]] = {}
    for p, pair in enumerate(pairs):
        for m, model in enumerate(pair):
            for d, device in enumerate(devices):
                templates[(p, m, d)] = [
                    synthetic_trial(None, device, model, latency_us=100.0 * (0.7 if m else 1.0), rng=rng, runs=50)
                    for _ in range(3)
                ]
    return devices, pairs, templates


def _run_trials(run_id: int, number: int, rng: np.random.Generator, devices: list, templates: dict) -> list[Trial]:
    pair = int(rng.integers(0, 10))
    chosen = rng.choice(len(devices), size=DEVICES_PER_RUN, replace=False)
    started = START + timedelta(hours=number)
    trials = []
    for d in chosen:
        for i in range(TRIALS_PER_GROUP):
            for m in range(MODELS_PER_RUN):
                template = templates[(pair, m, int(d))][int(rng.integers(0, 3))]
                position = i * MODELS_PER_RUN + m
                trials.append(dataclasses.replace(template, run_id=run_id, index=i, position=position,
                                                  started_at=started + timedelta(seconds=position)))
    return trials


def _backdate(url: str) -> None:
    """Spread runs over time: run N started N hours after START (start_run stamps them 'now')."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE run SET started_at = datetime(:start, '+' || (id - 1) || ' hours')"),
            {"start": START.replace(tzinfo=None).isoformat(sep=" ")},
        )
    engine.dispose()


def fill(store: Store, measurements: int, seed: int) -> tuple[float, float, float]:
    """Fills the store; returns bulk rows per wall second and per CPU second, and single-trial rows/s.

    CPU seconds (this process: Python, SQLAlchemy and SQLite itself) say what the inserts cost
    when other work shares the machine; wall seconds say what a user waits.
    """
    rng = np.random.default_rng(seed)
    devices, _, templates = _pools(rng)
    runs = measurements // PER_RUN
    saved = 0
    spent = 0.0
    cpu = 0.0
    report_every = max(runs // 10, 1)
    for number in range(runs):
        run_id = store.start_run("bench", {"benchmark": "store_history"})
        trials = _run_trials(run_id, number, rng, devices, templates)
        t0, c0 = time.perf_counter(), time.process_time()
        store.save_trials(trials)
        spent += time.perf_counter() - t0
        cpu += time.process_time() - c0
        store.finish_run(run_id, "ok")
        saved += len(trials)
        if (number + 1) % report_every == 0:
            print(f"  {saved:>9,} measurements, {saved / spent:,.0f} rows/s", file=sys.stderr, flush=True)
    bulk = saved / spent
    run_id = store.start_run("bench", {"benchmark": "store_history single"})
    singles = [t for _ in range(40) for t in _run_trials(run_id, runs, rng, devices, templates)]
    t0 = time.perf_counter()
    for position, trial in enumerate(singles):
        store.save_trial(dataclasses.replace(trial, position=10_000 + position))
    single = len(singles) / (time.perf_counter() - t0)
    store.finish_run(run_id, "ok")
    return bulk, saved / cpu, single


def _time(store: Store, flt: HistoryFilter, repeats: int) -> tuple[float, int]:
    times = []
    rows = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        rows = len(history_rows(store, flt))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measurements", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the store at this path (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-store-bench-") as tmp:
        path = args.keep or Path(tmp) / "lab.db"
        url = f"sqlite:///{path}"
        print(f"filling {url} with {args.measurements:,} measurements ...", file=sys.stderr)
        with open_store(url) as store:
            t0 = time.perf_counter()
            bulk, bulk_cpu, single = fill(store, args.measurements, args.seed)
            fill_s = time.perf_counter() - t0
        _backdate(url)
        with open_store(url) as store:
            total = store.count_measurements()
            runs = store.count_runs()
            last = START + timedelta(hours=runs)
            sha = model_file("net3_pruned.tflite", "pruned", variant="3").sha256
            year_back = (last - timedelta(days=395), last - timedelta(days=365))
            filters = {
                "(no filter), newest 50": HistoryFilter(),
                "--model net3_pruned.tflite": HistoryFilter(model="net3_pruned.tflite"),
                "--model <sha256 prefix>": HistoryFilter(model=sha[:10]),
                "--device PHONE02": HistoryFilter(device="PHONE02"),
                "--device 'Pixel 7'": HistoryFilter(device="Pixel 7"),
                "--model net3_dense.tflite --device PHONE02": HistoryFilter(model="net3_dense.tflite", device="PHONE02"),
                "--since/--until (one month, a year back)": HistoryFilter(since=year_back[0], until=year_back[1]),
                "--model net3_dense.tflite --since 30d": HistoryFilter(
                    model="net3_dense.tflite", since=last - timedelta(days=30)
                ),
                "--model X --device Y --limit 500": HistoryFilter(model="net3_dense.tflite", device="PHONE02", limit=500),
                "--model nothing.tflite": HistoryFilter(model="nothing.tflite"),
            }
            results = [(name, *_time(store, flt, args.repeats)) for name, flt in filters.items()]
        size_mb = path.stat().st_size / 2**20
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import host.cli"], check=True)
        startup = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "from host.cli import main; main()", "--db", url, "history", "--model",
             "net3_pruned.tflite", "--device", "PHONE02", "--json"],
            capture_output=True, check=True,
        )
        cli_s = time.perf_counter() - t0
    print(f"\nmachine: {os.cpu_count()} cores, 1-minute load average {os.getloadavg()[0]:.1f} at the end")
    print(f"store: {total:,} measurements in {runs:,} runs, {size_mb:,.0f} MiB, filled in {fill_s:,.0f} s")
    print(f"insert throughput: {bulk:,.0f} rows/s bulk (save_trials, {PER_RUN} per transaction; "
          f"{bulk_cpu:,.0f} rows per CPU second); {single:,.0f} rows/s one by one (save_trial)")
    print(f"`lab history` service time, median of {args.repeats} (query + median/bootstrap CI per row):")
    for name, seconds, rows in results:
        print(f"  {name:<48} {seconds * 1000:8.1f} ms  ({rows} rows)")
    print(f"whole `lab history --model … --device … --json` process: {cli_s:.2f} s "
          f"(of which Python start-up and imports {startup:.2f} s)")


if __name__ == "__main__":
    main()
