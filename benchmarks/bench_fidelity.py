"""Fidelity: does the lab report the latency the runner measures?

    .venv/bin/python benchmarks/bench_fidelity.py [--rounds N] [--runs R] [--model PATH]

One model is measured N times each way, alternating one trial at a time so that load from
elsewhere on the machine hits both ways alike:
  (a) through the lab: ``run_bench`` with one trial on an emulated device (adb server → emulated
      device → its ``benchmark_model``), keeping the trial's average;
  (b) directly: ``python -m device_agent bench`` with the same flags, as a subprocess here.
It prints the median of each way's averages and their ratio (lab / direct), and the median of
the per-round ratios. Target: within 3%.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from bench_overhead import MODELS, lab_env

from device_agent.output import parse
from host.bench import model_file, run_bench
from host.bench.trial import benchmark_command
from host.devices import select_devices
from host.records import BenchRequest, TrialParams
from host.store import open_store


def direct_average(model: Path, params: TrialParams) -> float:
    argv = benchmark_command("bench", str(model), params, None)[1:]
    proc = subprocess.run([sys.executable, "-m", "device_agent", "bench", *argv], capture_output=True, text=True)
    result = parse(proc.stdout)
    if proc.returncode != 0 or result.runs is None or result.runs.avg_us is None:
        raise SystemExit(f"the runner failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return result.runs.avg_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--model", type=Path, default=MODELS / "conv.tflite")
    args = parser.parse_args()
    params = TrialParams(runs=args.runs, warmup_runs=20)
    model = model_file(args.model)
    lab_values: list[float] = []
    direct_values: list[float] = []
    with lab_env(devices=1) as env:
        devices = select_devices(env.client, [env.devices[0].serial])
        with open_store(f"sqlite:///{env.home / 'lab.db'}") as store:
            for round_ in range(args.rounds):
                outcome = run_bench(
                    BenchRequest(params=params, trials=1, seed=round_), [model], devices, store=store,
                    home=env.home, config={"benchmark": "fidelity"}, progress=None, client=env.client,
                )
                if outcome.exit_code != 0 or not outcome.summaries[0].figures:
                    raise SystemExit(f"lab run failed: {[t.error for t in outcome.trials]}")
                lab_values.append(outcome.summaries[0].figures[0].avg_us)
                direct_values.append(direct_average(args.model, params))
    lab, direct = statistics.median(lab_values), statistics.median(direct_values)
    paired = statistics.median(a / b for a, b in zip(lab_values, direct_values))
    print(f"model {model.name}: {args.rounds} rounds × 1 trial × {args.runs} runs each way, alternating")
    print(f"lab averages    (µs): {' '.join(f'{v:.2f}' for v in lab_values)}")
    print(f"direct averages (µs): {' '.join(f'{v:.2f}' for v in direct_values)}")
    ratio = lab / direct
    print(f"lab reported median {lab:.3f} µs, runner directly {direct:.3f} µs, "
          f"ratio {ratio:.4f} ({(ratio - 1) * 100:+.2f}%); median per-round ratio {paired:.4f}")
    print(f"target within 3%: {'meets' if abs(ratio - 1) <= 0.03 else 'misses'}")


if __name__ == "__main__":
    main()
