"""`lab check`'s error rates on the emulated device: false alarms on A/A pairs, detection of a 10% slowdown.

    .venv/bin/python benchmarks/check_error_rates.py                # 100 trials per model (~5-10 min on 2 cores)
    .venv/bin/python benchmarks/check_error_rates.py --trials 40    # quicker, coarser

Needs TensorFlow (the `build` extra) to make the two models, an adb server (started if none
answers) and the emulated device (started here, stopped at the end).

Two models: M, ten identical 3x3 convolutions (32 channels, 48x48); M+10%, the same with an eleventh:
10% more arithmetic (the measured time ratio is printed).
One `lab bench`-style run measures both, interleaved, ``--trials`` times each on one emulated
device. The trials are then cut into blocks of ``--block`` consecutive trials; every block is saved
as a run of its own in a fresh store, M+10%'s under M's file name (as a changed model would be),
and the real gate (``host.report.check_run``, as `lab check --baseline RUN --run RUN`) judges:

- A/A: every pair of M blocks, earlier as baseline (false alarm: exit 1);
- slowdown: every (M block, M+10% block) pair (detected: exit 1).

Pairs share blocks, so they are not independent; the disjoint subsets (A/A: blocks 2k vs 2k+1;
slowdown: block k vs block k) are reported too. Targets: false alarms ≤ 1%, detection ≥ 95%.
For reference it also prints what the same test would give on trial averages, the figure the
gate used first: on a busy 2-core machine averages scatter (a few preempted invokes drag them)
and it missed most 10% slowdowns, which is why the gate compares 5th-percentile invokes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

from host.bench import model_file, run_bench
from host.devices import adb_client, select_devices
from host.devices.emulated import start_emulated_device, stop_emulated_device
from host.records import Trial, TrialParams
from host.report import check_run
from host.store import Store, open_store


def make_models(folder: Path, layers: int = 10) -> tuple[Path, Path]:
    """M with ``layers`` 3x3 convolutions and M+10% with one more (TensorFlow, seeded)."""
    import tensorflow as tf

    def convert(n: int) -> bytes:
        kernels = [tf.constant(tf.random.stateless_normal([3, 3, 32, 32], seed=(i, 1)) * 0.05) for i in range(n)]

        @tf.function(input_signature=[tf.TensorSpec([1, 48, 48, 32], tf.float32)])
        def net(x: tf.Tensor) -> tf.Tensor:
            for kernel in kernels:
                x = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"))
            return tf.reduce_mean(x, axis=[1, 2])

        owner = tf.Module()
        owner.net = net
        return tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()], owner).convert()

    base, slow = folder / "base" / "model.tflite", folder / "slow" / "model.tflite"
    for path, n in ((base, layers), (slow, layers + 1)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(convert(n))
    return base, slow


def measure(base: Path, slow: Path, home: Path, trials: int, runs: int, db_url: str) -> list[Trial]:
    client = adb_client()
    handle = start_emulated_device(home, client=client)
    try:
        devices = select_devices(client, [handle.serial])
        with open_store(db_url) as store:
            outcome = run_bench(
                [model_file(base), model_file(slow)],
                devices,
                TrialParams(threads=1, runs=runs, warmup_runs=5),
                trials=trials,
                cooldown_s=0.0,
                max_temp_c=None,
                store=store,
                binary=None,
                home=home,
                config={"benchmark": "check_error_rates"},
                progress=None,
                client=client,
            )
    finally:
        stop_emulated_device(handle, client=client)
    failed = [t for t in outcome.trials if t.status != "ok"]
    if failed:
        raise SystemExit(f"{len(failed)} trials failed, e.g.: {failed[0].error}")
    return outcome.trials


def _save_block(store: Store, trials: list[Trial], name: str) -> int:
    run_id = store.start_run("bench", {"block_of": name})
    store.save_trials([dataclasses.replace(t, run_id=run_id) for t in trials])
    store.finish_run(run_id, "ok")
    return run_id


def gate(trials: list[Trial], base_sha: str, block: int, db_url: str) -> dict[str, tuple[int, int]]:
    base = [t for t in trials if t.model.sha256 == base_sha]
    slow = [t for t in trials if t.model.sha256 != base_sha]
    renamed = [dataclasses.replace(t, model=dataclasses.replace(t.model, name=base[0].model.name)) for t in slow]
    n_blocks = min(len(base), len(slow)) // block
    with open_store(db_url) as store:
        base_runs = [_save_block(store, base[k * block : (k + 1) * block], "M") for k in range(n_blocks)]
        slow_runs = [_save_block(store, renamed[k * block : (k + 1) * block], "M+10%") for k in range(n_blocks)]

        def regression(baseline: int, candidate: int) -> bool:
            result = check_run(store, run_id=candidate, baseline=str(baseline))
            if result.exit_code == 2:
                raise SystemExit(f"nothing compared for runs {baseline} → {candidate}: {result.reasons}")
            return result.exit_code == 1

        aa = [regression(base_runs[i], base_runs[j]) for i in range(n_blocks) for j in range(i + 1, n_blocks)]
        aa_disjoint = [regression(base_runs[2 * k], base_runs[2 * k + 1]) for k in range(n_blocks // 2)]
        det = [regression(b, s) for b in base_runs for s in slow_runs]
        det_disjoint = [regression(base_runs[k], slow_runs[k]) for k in range(n_blocks)]
    return {
        "A/A false alarms, all pairs": (sum(aa), len(aa)),
        "A/A false alarms, disjoint pairs": (sum(aa_disjoint), len(aa_disjoint)),
        "10% slowdown detected, all pairs": (sum(det), len(det)),
        "10% slowdown detected, disjoint pairs": (sum(det_disjoint), len(det_disjoint)),
    }


def _on_averages(trials: list[Trial], base_sha: str, block: int) -> str:
    """The A/A and slowdown rates (disjoint-free, all pairs) had the gate compared trial averages instead."""
    from host.bench.stats import compare

    base = [t.result.runs.avg_us for t in trials if t.model.sha256 == base_sha]
    slow = [t.result.runs.avg_us for t in trials if t.model.sha256 != base_sha]
    n = min(len(base), len(slow)) // block
    b = [base[k * block : (k + 1) * block] for k in range(n)]
    s = [slow[k * block : (k + 1) * block] for k in range(n)]
    aa = [compare(b[i], b[j]).verdict == "slower" for i in range(n) for j in range(i + 1, n)]
    det = [compare(b[i], s[j]).verdict == "slower" for i in range(n) for j in range(n)]
    return f"false alarms {sum(aa)}/{len(aa)}, detected {sum(det)}/{len(det)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100, help="trials per model (interleaved)")
    parser.add_argument("--runs", type=int, default=50, help="measured invokes per trial (lab bench: 100)")
    parser.add_argument("--block", type=int, default=5, help="trials per simulated run (lab's default --trials)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-check-bench-") as tmp:
        folder = Path(tmp)
        print("making the models with TensorFlow ...", file=sys.stderr, flush=True)
        base, slow = make_models(folder / "models")
        print(f"measuring {args.trials} trials × 2 models on an emulated device ...", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        trials = measure(base, slow, folder / "home", args.trials, args.runs, f"sqlite:///{folder / 'bench.db'}")
        measured_s = time.perf_counter() - t0
        load_after = os.getloadavg()[0]
        base_sha = model_file(base).sha256
        rates = gate(trials, base_sha, args.block, f"sqlite:///{folder / 'gate.db'}")
    base_avg = sorted(t.result.runs.avg_us for t in trials if t.model.sha256 == base_sha)
    slow_avg = sorted(t.result.runs.avg_us for t in trials if t.model.sha256 != base_sha)
    true_ratio = slow_avg[len(slow_avg) // 2] / base_avg[len(base_avg) // 2]
    base_p5 = sorted(t.result.runs.p5_us for t in trials if t.model.sha256 == base_sha)
    slow_p5 = sorted(t.result.runs.p5_us for t in trials if t.model.sha256 != base_sha)
    p5_ratio = slow_p5[len(slow_p5) // 2] / base_p5[len(base_p5) // 2]
    print(
        f"\n{len(trials)} trials measured in {measured_s:.0f} s; median trial latency "
        f"M {base_avg[len(base_avg) // 2]:.0f} µs, M+10% {slow_avg[len(slow_avg) // 2]:.0f} µs "
        f"(ratio {true_ratio:.3f}; of 5th-percentile invokes {p5_ratio:.3f})"
    )
    print(f"machine: {os.cpu_count()} cores, 1-minute load average {load_before:.1f} before and {load_after:.1f} after "
          "measuring (other work on the machine makes trials noisier and detection harder)")
    print(f"gate: `lab check` defaults on each trial's 5th-percentile invoke (Mann–Whitney U p < 0.05, "
          f"ratio > 1.05 with its CI above 1), runs of {args.block} trials")
    print(f"  (for reference, the same gate on trial averages: {_on_averages(trials, base_sha, args.block)})")
    for name, (hits, total) in rates.items():
        print(f"  {name:<40} {hits:>4} / {total:<4} = {hits / total:.1%}")


if __name__ == "__main__":
    main()
