"""Instructions per inference of the guide's dense and pruned CNN on an emulated arm64 core (QEMU).

    .venv/bin/python benchmarks/qemu_instructions.py [--fresh] [--dir DIR] [--cpu CPU] [--runs N]
                                                     [--dense M.tflite --pruned M.tflite]

Prints the time to prepare the arm64 userland (from scratch into a temporary folder with
``--fresh``; otherwise the cached one in DIR, default $LAB_QEMU_CACHE or ~/.cache/lab/qemu-arm64,
with the time its userland.json recorded), then for the dense and the pruned model the guest
instructions per inference (median, min, first) and the emulated time per inference (median), their
dense/pruned ratios, and the guide's Pixel 4 time ratio beside them (17 µs / 12 µs = 1.42×).

Without --dense/--pruned the models are built here with TensorFlow + tfmot (the `build` extra):
the guide's CNN after one short epoch on random data, and the same pruned to 75% with
PruneForLatencyOnXNNPack and converted with EXPERIMENTAL_SPARSITY. Needs root and Debian's
qemu-user, qemu-user-static, debootstrap and gcc when the userland must be prepared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from device_agent.output import BenchmarkResult, parse
from device_agent.qemu import CPUS, DEFAULT_CPU, Userland, default_dest, find_userland, prepare

PIXEL4_DENSE_US, PIXEL4_PRUNED_US = 17.0, 12.0  # the guide's measurements on a Pixel 4


def build_model(path: Path, sparsity: float) -> Path:
    """The guide's CNN (random data, one epoch); pruned to ``sparsity`` for XNNPACK when > 0."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from host.builder import _tf
    from host.builder.convert import to_tflite
    from host.builder.recipes import xnnpack_cnn

    keras, tfmot = _tf.tf_keras(), _tf.tfmot()
    keras.utils.set_random_seed(0)
    model, callbacks = xnnpack_cnn(), []
    if sparsity:
        sparse = tfmot.sparsity.keras
        model = sparse.prune_low_magnitude(
            model,
            pruning_schedule=sparse.ConstantSparsity(sparsity, begin_step=0, frequency=1),
            pruning_policy=sparse.PruneForLatencyOnXNNPack(),
        )
        callbacks = [sparse.UpdatePruningStep()]
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 1, (64, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 64), epochs=1, batch_size=32,
              verbose=0, callbacks=callbacks)  # fmt: skip
    if sparsity:
        model = tfmot.sparsity.keras.strip_pruning(model)
    path.write_bytes(to_tflite(model, sparse=bool(sparsity)))
    return path


def userland_for(args: argparse.Namespace, scratch: Path) -> tuple[Userland, str]:
    """The userland and a sentence on how long preparing it took."""
    if args.fresh:
        started = time.monotonic()
        userland = prepare(scratch / "userland", progress=lambda line: print(f"  {line}", file=sys.stderr))
        seconds = time.monotonic() - started
        return userland, f"prepared from scratch in {seconds:.1f} s ({userland.info['size_mb']} MB)"
    dest = args.dir or default_dest()
    found = find_userland(dest)
    if found is not None:
        info = found.info
        return found, (
            f"cached in {dest} (preparing it took {info['prepare_seconds']} s on {info['prepared_at']}, "
            f"{info['size_mb']} MB); --fresh times a new one"
        )
    started = time.monotonic()
    userland = prepare(dest, progress=lambda line: print(f"  {line}", file=sys.stderr))
    return userland, f"prepared from scratch in {time.monotonic() - started:.1f} s ({userland.info['size_mb']} MB)"


def bench(userland: Userland, model: Path, cpu: str, runs: int) -> BenchmarkResult:
    flags = [f"--graph={model}", f"--num_runs={runs}", "--min_secs=0", "--warmup_runs=1", "--warmup_min_secs=0.5"]
    argv, env = userland.bench_command(flags, cpu=cpu)
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the runner failed on {model}:\n{done.stdout}{done.stderr}")
    result = parse(done.stdout)
    if result.instructions is None:
        raise SystemExit(f"no instruction counts for {model}: {result.instructions_unavailable}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="prepare a new userland in a temporary folder, timed")
    parser.add_argument("--dir", type=Path, help="the cached userland's folder")
    parser.add_argument("--cpu", default=DEFAULT_CPU, choices=list(CPUS))
    parser.add_argument("--runs", type=int, default=200, help="measured runs per model (default 200)")
    parser.add_argument("--dense", type=Path)
    parser.add_argument("--pruned", type=Path)
    args = parser.parse_args()
    if (args.dense is None) != (args.pruned is None):
        parser.error("give both --dense and --pruned, or neither")

    with tempfile.TemporaryDirectory(prefix="qemu-bench-") as tmp:
        scratch = Path(tmp)
        userland, prepared = userland_for(args, scratch)
        if args.dense is None:
            print("building the guide's CNN, dense and pruned to 75% (TensorFlow)…", file=sys.stderr)
            models = {"dense": build_model(scratch / "dense.tflite", 0.0), "pruned": build_model(scratch / "pruned.tflite", 0.75)}
        else:
            models = {"dense": args.dense, "pruned": args.pruned}
        results = {name: bench(userland, path, args.cpu, args.runs) for name, path in models.items()}

    info = userland.info
    print(f"arm64 userland: {prepared}")
    print(f"emulated core: qemu-user {args.cpu} (QEMU {info['qemu']}), Python {info['python_full']}, "
          f"LiteRT {info['litert']}, default threads, {args.runs} measured runs per model")  # fmt: skip
    print()
    print(f"{'model':8} {'instructions/inference':>22} {'min':>10} {'first':>10} {'emulated time median':>21}")
    for name, result in results.items():
        counts, runs = result.instructions, result.runs
        assert counts is not None and runs is not None and runs.median_us is not None
        print(f"{name:8} {counts.median:>22,} {counts.min:>10,} {counts.first:>10,} {runs.median_us:>18,.1f} µs")
    dense, pruned = results["dense"], results["pruned"]
    assert dense.instructions and pruned.instructions and dense.runs and pruned.runs
    assert dense.runs.median_us is not None and pruned.runs.median_us is not None
    print()
    print(f"dense/pruned instructions:    {dense.instructions.median / pruned.instructions.median:.2f}×  (exact, repeatable)")
    print(f"dense/pruned emulated time:   {dense.runs.median_us / pruned.runs.median_us:.2f}×  (QEMU's cost, not a phone's)")
    pixel4 = f"{PIXEL4_DENSE_US:g} µs → {PIXEL4_PRUNED_US:g} µs"
    print(f"guide, Pixel 4 time:          {PIXEL4_DENSE_US / PIXEL4_PRUNED_US:.2f}×  ({pixel4})")
    print(f"marker overhead subtracted:   {dense.instructions.overhead} instructions per counted region")


if __name__ == "__main__":
    main()
