"""Does cooling down before each trial (``--max-temp``) steady a throttling phone's figures?

    .venv/bin/python benchmarks/phone_throttle.py [--profile galaxy_a50] [--trials 20] [--secs 0.5]
                                                  [--thermal-speed 8] [--max-temp 45] [--model PATH]

Starts its own adb server and, for each case, a fresh emulated device with the phone profile
(``--profile``, default the SDK 28 Galaxy A50: no fixed-performance mode, so its big cluster
throttles past its trip point), then runs ``run_bench`` with ``--trials`` back-to-back trials of
``--secs`` seconds each on the big cluster (``--cores big``):

* without remedies: no cool-down, no --max-temp — the die heats trial after trial and throttles;
* with a fixed cool-down (``--cooldown``, default 2 s) between trials;
* with --max-temp: before each trial the lab waits (bounded at 120 s) until every zone is below it.

Printed per case: the headline statistic (p5 invoke, ``host.figures``) of each trial, how many
trials were flagged throttled, the waits, and the headline's coefficient of variation across the
trials (population std / mean). The issue's target: the remedy halves the CV.

The phone's clock runs ``--thermal-speed`` times faster than real time so that a run takes
seconds, and its slowdown is per-invoke sleep padding (the runner's output says so): these are
figures of the lab's model of a phone, not of a phone.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import adbutils

from device_agent.emulator.launch import spawn
from host.bench import model_file, run_bench
from host.devices import select_devices
from host.figures import figures_of, pick
from host.records import BenchRequest, Trial, TrialParams
from host.store import open_store

ROOT = Path(__file__).resolve().parents[1]
CONV = ROOT / "tests" / "fixtures" / "models" / "conv.tflite"
_READY_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(client: adbutils.AdbClient, serial: str) -> None:
    deadline = time.monotonic() + _READY_S
    while time.monotonic() < deadline:
        if any(info.serial == serial and info.state == "device" for info in client.list()):
            return
        time.sleep(0.05)
    raise SystemExit(f"adb never listed {serial} as a device")


def run_case(client: adbutils.AdbClient, work: Path, args: argparse.Namespace, name: str, *,
             max_temp: float | None = None, cooldown: float = 0.0) -> list[Trial]:
    """One case on a fresh (cool) device: the trials, in order."""
    device = spawn(root=work / name / "root", log_path=work / f"{name}.log",
                   extra_args=("--profile", args.profile, "--thermal-speed", str(args.thermal_speed)))
    try:
        client.connect(device.address, timeout=_READY_S)
        _wait_ready(client, device.address)
        request = BenchRequest(
            params=TrialParams(runs=1, warmup_runs=5, min_secs=args.secs, timeout_s=120),
            trials=args.trials, max_temp_c=max_temp, max_temp_wait_s=120.0, cooldown_s=cooldown, cores="big",
        )
        with open_store(f"sqlite:///{work / (name + '.db')}") as store:
            outcome = run_bench(request, [model_file(args.model)], select_devices(client, [device.address]),
                                store=store, home=work / "home", progress=None, client=client)
        return outcome.trials
    finally:
        client.disconnect(device.address)
        device.stop()


def report(title: str, trials: list[Trial]) -> float:
    """Print one case; return its headline CV."""
    failed = [t for t in trials if t.status != "ok"]
    if failed:
        raise SystemExit(f"{title}: {len(failed)} trial(s) failed, e.g. {failed[0].error}")
    statistic, values = pick([figures_of(t.result.runs if t.result else None) for t in trials])
    throttled = sum(bool(t.state_after and t.state_after.throttled) for t in trials)
    waits = [t.state_before.temp_wait_s or 0.0 for t in trials if t.state_before is not None]
    cv = statistics.pstdev(values) / statistics.mean(values)
    print(f"{title}:")
    print(f"  {statistic} invoke per trial (µs): " + " ".join(f"{v:.1f}" for v in values))
    print(f"  throttled trials: {throttled}/{len(trials)}; --max-temp waits: {sum(waits):.1f} s in all")
    print(f"  CV of the {statistic} invoke across trials: {100 * cv:.1f}%")
    return cv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="galaxy_a50", help="phone profile that throttles (default galaxy_a50)")
    parser.add_argument("--trials", type=int, default=20, help="trials per case (default 20)")
    parser.add_argument("--secs", type=float, default=0.5, help="seconds of measured runs per trial (default 0.5)")
    parser.add_argument("--thermal-speed", type=float, default=8.0, help="the phone's thermal clock rate (default 8)")
    parser.add_argument("--max-temp", type=float, default=45.0, help="the remedy's --max-temp in °C (default 45)")
    parser.add_argument("--cooldown", type=float, default=2.0, help="the fixed cool-down case's pause in s (default 2)")
    parser.add_argument("--model", type=Path, default=CONV, help="a .tflite model (default: the test conv model)")
    args = parser.parse_args()

    adb = adbutils.adb_path()
    port = _free_port()
    env = {**os.environ, "ADB_EMU": "0", "ADB_MDNS": "0"}
    subprocess.run([adb, "-P", str(port), "start-server"], env=env, check=True, capture_output=True, timeout=60)
    os.environ["ANDROID_ADB_SERVER_PORT"] = str(port)
    client = adbutils.AdbClient(host="127.0.0.1", port=port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            print(f"profile {args.profile}, {args.trials} trials of {args.secs:g} s on the big cluster, "
                  f"thermal clock x{args.thermal_speed:g}, model {args.model.name}")
            without = report("without remedies", run_case(client, work, args, "without"))
            cooled = report(f"with --cooldown {args.cooldown:g}",
                            run_case(client, work, args, "cooldown", cooldown=args.cooldown))
            remedied = report(f"with --max-temp {args.max_temp:g}",
                              run_case(client, work, args, "max-temp", max_temp=args.max_temp))
    finally:
        subprocess.run([adb, "-P", str(port), "kill-server"], capture_output=True, timeout=60)
    for label, cv in ((f"--cooldown {args.cooldown:g}", cooled), (f"--max-temp {args.max_temp:g}", remedied)):
        ratio = f"{without / cv:.1f}x lower" if cv > 0 else "no variation left"
        print(f"CV without remedies / with {label}: {100 * without:.1f}% / {100 * cv:.1f}% ({ratio}; target: 2x)")


if __name__ == "__main__":
    main()
