"""What the on-device output check adds to a `lab run` (issue 14 target: ≤ 10%).

    .venv/bin/python benchmarks/verify_overhead.py                      # x86, lab run's defaults, 3 pairs
    .venv/bin/python benchmarks/verify_overhead.py --emulator arm64 --pairs 1 --variants all --runs 20

Each pair is two fresh `lab run --quick --dataset synthetic` processes on the same cached build
(built first, not timed), one with `--no-verify` and one with the default check (16 inputs), in
alternating order so load drifts hit both alike. Printed: wall time of each, the ratio of the
medians, and the checks' own time as stored (``output_check.duration_s``) against the checked
run's wall time — the direct share, less exposed to the machine's load than a difference of two
wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _lab_run(home: Path, args: list[str]) -> tuple[float, dict]:
    command = [sys.executable, "-c", "from host.cli import main; main()", "--home", str(home), "run", *args, "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"lab run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout)


def _check_seconds(home: Path, run_id: int) -> float:
    with sqlite3.connect(home / "lab.db") as db:
        (total,) = db.execute("SELECT COALESCE(SUM(duration_s), 0) FROM output_check WHERE run_id = ?", (run_id,)).fetchone()
    return float(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--emulator", default="x86", choices=("x86", "arm64", "both"))
    parser.add_argument("--variants", default="dense,pruned")
    parser.add_argument("--runs", type=int, default=None, help="--runs per trial (default: lab run's)")
    options = parser.parse_args()
    args = ["--quick", "--dataset", "synthetic", "--emulator", options.emulator, "--variants", options.variants]
    if options.runs:
        args += ["--runs", str(options.runs)]
    with tempfile.TemporaryDirectory(prefix="lab-verify-overhead-") as tmp:
        home = Path(tmp)
        _lab_run(home, [*args, "--no-verify", "--trials", "1"])  # the build, cached for every timed run
        plain: list[float] = []
        checked: list[float] = []
        shares: list[float] = []
        for i in range(options.pairs):
            order = (False, True) if i % 2 == 0 else (True, False)
            for verify in order:
                seconds, document = _lab_run(home, args if verify else [*args, "--no-verify"])
                if verify:
                    checked.append(seconds)
                    shares.append(_check_seconds(home, document["bench"]["run_id"]) / seconds)
                    assert document["bench"]["outputs_ok"], document["bench"]["output_checks"]
                else:
                    plain.append(seconds)
    load = os.getloadavg()[0]
    print(f"lab run {' '.join(args)}   ({options.pairs} pairs, fresh processes, cached build, 1-min load {load:.1f})")
    print(f"  --no-verify     wall median {statistics.median(plain):7.2f} s  ({', '.join(f'{s:.1f}' for s in plain)})")
    print(f"  --verify 16     wall median {statistics.median(checked):7.2f} s  ({', '.join(f'{s:.1f}' for s in checked)})")
    ratio = statistics.median(checked) / statistics.median(plain)
    share = statistics.median(shares)
    print(f"  ratio of medians {ratio:.3f}   stored check time / run wall time: median {share:.1%}")
    print(f"  target: the check adds <= 10% -> {'met' if share <= 0.10 else 'MISSED'} (by the stored share)")


if __name__ == "__main__":
    main()
