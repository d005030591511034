"""Start-up cost of the ``lab`` command: CPU and wall time of whole processes, and what they import.

    .venv/bin/python benchmarks/cli_startup.py                     # this checkout, 10 runs each
    .venv/bin/python benchmarks/cli_startup.py --repo /tmp/before  # another copy of the code (e.g. git archive HEAD)

Each command line runs ``--runs`` times as a fresh ``python -m host.cli`` process (cwd: the measured
copy, so its ``host`` package is the one imported); the figures are medians. CPU is the child's
user + system time (``RUSAGE_CHILDREN`` deltas around each run), wall is the time to its exit.
Measured: a bare ``python -c pass`` (the floor), ``lab --help``, ``lab bench --help``,
``lab history --json`` on an empty SQLite store in a fresh LAB_HOME (a first, unmeasured run
creates and migrates it; its own time is printed too), and ``lab devices --json`` with nothing
attached, against a private adb server on a free port (the first, unmeasured run starts it, as
``lab`` does when no server answers; ``adb kill-server`` stops it at the end). Then the 10 largest
cumulative entries of ``python -X importtime`` for ``lab --help`` and for ``lab history --json``.

Targets (issue 17): ``lab --help`` ≤ 0.25 s CPU and ≤ 5x the bare interpreter; ``lab history
--json`` on an empty store ≤ 0.6 s CPU. On a shared machine other work inflates wall time more
than CPU time; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HELP_CPU_S = 0.25
HELP_RATIO = 5.0
HISTORY_CPU_S = 0.6


@dataclass(frozen=True)
class Timing:
    cpu_s: float
    wall_s: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _once(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[Timing, subprocess.CompletedProcess[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(cpu, wall), done


def _median(argv: list[str], env: dict[str, str], cwd: Path, runs: int) -> Timing:
    timings = [_once(argv, env, cwd)[0] for _ in range(runs)]
    return Timing(statistics.median(t.cpu_s for t in timings), statistics.median(t.wall_s for t in timings))


def _import_top(
    python: str, args: list[str], env: dict[str, str], cwd: Path, count: int
) -> list[tuple[int, int, str]]:
    """(self µs, cumulative µs, module) of the ``count`` largest cumulative imports of ``lab ARGS``."""
    done = subprocess.run([python, "-X", "importtime", "-m", "host.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=True)  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((int(parts[0]), int(parts[1]), parts[2].strip()))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="runs per command line (the median is printed)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the copy of the code to measure (its root folder)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter (default: this one)")
    options = parser.parse_args()
    repo = options.repo.resolve()
    python = options.python
    home = Path(tempfile.mkdtemp(prefix="lab-cli-startup-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_") and k != "PYTHONPATH"}
    env.update(LAB_HOME=str(home / "lab"), ANDROID_ADB_SERVER_PORT=str(port), ADB_EMU="0", ADB_MDNS="0")
    lab = [python, "-m", "host.cli"]
    load_before = os.getloadavg()
    try:
        where = _once([python, "-c", "import host.cli; print(host.cli.__file__)"], env, repo)[1].stdout.strip()
        first_history, _ = _once([*lab, "history", "--json"], env, repo)
        first_devices, started = _once([*lab, "devices", "--json"], env, repo)
        cases = {
            "python -c pass": [python, "-c", "pass"],
            "lab --help": [*lab, "--help"],
            "lab bench --help": [*lab, "bench", "--help"],
            "lab history --json (empty store)": [*lab, "history", "--json"],
            "lab devices --json (no device)": [*lab, "devices", "--json"],
        }
        results = {name: _median(argv, env, repo, options.runs) for name, argv in cases.items()}
        tops = {args: _import_top(python, list(args), env, repo, 10) for args in (("--help",), ("history", "--json"))}
    finally:
        adb = __import__("adbutils").adb_path()  # the adb `lab` itself runs
        subprocess.run([adb, "-P", str(port), "kill-server"], capture_output=True, stdin=subprocess.DEVNULL)
        shutil.rmtree(home, ignore_errors=True)
    load_after = os.getloadavg()

    bare = results["python -c pass"].cpu_s
    print(f"lab start-up: {where} ({os.cpu_count()} CPUs, Python {sys.version.split()[0]}), median of {options.runs} runs")
    print(f"  {'command':<36} {'CPU s':>7} {'wall s':>7} {'CPU / bare':>10}")
    for name, timing in results.items():
        print(f"  {name:<36} {timing.cpu_s:7.3f} {timing.wall_s:7.3f} {timing.cpu_s / bare:9.1f}x")
    print(f"  first history run (creates and migrates the store): {first_history.cpu_s:.3f} s CPU, {first_history.wall_s:.3f} s wall")
    server = "started a private adb server" if "starting one" in started.stderr else "found an adb server answering"
    print(f"  first devices run ({server} on port {port}): {first_devices.cpu_s:.3f} s CPU, {first_devices.wall_s:.3f} s wall")
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    for args, top in tops.items():
        print(f"largest imports of `lab {' '.join(args)}` (python -X importtime, cumulative):")
        for own, cumulative, module in top:
            print(f"  {cumulative / 1000:8.1f} ms  (self {own / 1000:6.1f} ms)  {module}")
    help_cpu = results["lab --help"].cpu_s
    history_cpu = results["lab history --json (empty store)"].cpu_s
    print("targets:")
    print(f"  lab --help ≤ {HELP_CPU_S} s CPU: {help_cpu:.3f} s -> {'met' if help_cpu <= HELP_CPU_S else 'MISSED'}")
    print(f"  lab --help ≤ {HELP_RATIO:.0f}x bare python: {help_cpu / bare:.1f}x -> "
          f"{'met' if help_cpu <= HELP_RATIO * bare else 'MISSED'}")  # fmt: skip
    print(f"  lab history --json ≤ {HISTORY_CPU_S} s CPU: {history_cpu:.3f} s -> "
          f"{'met' if history_cpu <= HISTORY_CPU_S else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
