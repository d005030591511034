"""`lab build --quick --dataset synthetic --force`: wall time and peak memory, then the cache hit.

    .venv/bin/python benchmarks/build_quick.py               # 3 forced builds + 3 cache hits
    .venv/bin/python benchmarks/build_quick.py --repeat 1 --dataset synthetic:5000

Each call runs the real console command in a fresh process (TensorFlow's import included, as a
user sees it) under a temporary LAB_HOME; peak memory is the child's maximum resident set size.
Target (issue 4): the whole forced build under 2 minutes on 2 cores; the cache hit in seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run_measured(args: list[str], home: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `lab build` process (wait4: this child's own rusage)."""
    command = [sys.executable, "-c", "from host.cli import main; main()", "--home", str(home), "build", *args]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read() if child.stderr is not None else b""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"lab build failed ({child.returncode}):\n{stderr.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="forced builds (and cache hits) to time")
    parser.add_argument("--dataset", default="synthetic")
    options = parser.parse_args()
    args = ["--quick", "--dataset", options.dataset]
    with tempfile.TemporaryDirectory(prefix="lab-build-quick-") as tmp:
        home = Path(tmp)
        builds = [_run_measured([*args, "--force"], home) for _ in range(options.repeat)]
        hits = [_run_measured(args, home) for _ in range(options.repeat)]
    print(f"lab build {' '.join(args)} --force   ({options.repeat} runs, {os.cpu_count()} CPUs, fresh process each)")
    for name, runs in (("forced build", builds), ("cache hit", hits)):
        times = [s for s, _ in runs]
        peaks = [m for _, m in runs]
        print(
            f"  {name:<13} wall median {statistics.median(times):6.2f} s  (min {min(times):.2f}, max {max(times):.2f})"
            f"   peak RSS {max(peaks):7.1f} MiB"
        )
    print(f"  target: forced build < 120 s -> {'met' if max(s for s, _ in builds) < 120 else 'MISSED'}")


if __name__ == "__main__":
    main()
