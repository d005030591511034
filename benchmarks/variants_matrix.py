"""The optimization matrix on the arm64 emulated device: instructions per inference and the kernels
that ran, for every variant of two models; and what `--variants all` costs a quick build.

    .venv/bin/python benchmarks/variants_matrix.py                  # both models, 1 build pair
    .venv/bin/python benchmarks/variants_matrix.py --build-pairs 2 --alpha 0.5 --skip-mobilenet

Models:
- the guide's CNN, 32×32: `lab build --quick --dataset synthetic --variants all` (the build that is
  timed last), every variant as the lab builds it;
- a MobileNet-sized model: MobileNet v1 (224×224×3 input, its 13 pointwise 1x1 convolutions, a dense
  classifier; width ``--alpha``, default 0.25 to keep QEMU's time to minutes; ``mobilenet_v1``),
  untrained weights, pruned to 75% with PruneForLatencyOnXNNPack (ConstantSparsity, a few steps on random
  images, as benchmarks/qemu_instructions.py prunes) and converted by the builder's own
  ``to_tflite`` for each variant (int8 calibrated on 100 random images).

Each file runs once through the device agent's runner under QEMU (neoverse-n1, one thread, one
warm-up and ``--runs`` measured inferences, ``--enable_op_profiling``): instructions per inference
(median, exact and repeatable), their ratio to the dense fp32 model, and the kernel families from
``host.bench.evidence.kernel_families`` — plus the float16 variants again with
``--xnnpack_force_fp16=true``. Build time: fresh `lab build --quick --dataset synthetic --force`
processes, ``--variants dense,pruned`` and ``--variants all`` alternately (target: all ≤ 2.5×).
The 1-minute load average is printed before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from device_agent.output import parse
from device_agent.qemu import DEFAULT_CPU, Userland, default_dest, find_userland
from host.bench.evidence import KernelFamilies, delegated_nodes, kernel_families
from host.builder.variants import VARIANTS

BUILD_TARGET = 2.5  # issue 14: --variants all at most 2.5× the guide's two models
FORCE_FP16 = "--xnnpack_force_fp16=true"


@dataclass(frozen=True)
class Measured:
    model: str
    variant: str
    instructions: int  # median per inference
    families: KernelFamilies


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def _lab_build(home: Path, variants: str) -> float:
    """Wall seconds of one fresh `lab build --quick --dataset synthetic --force` process."""
    command = [sys.executable, "-c", "from host.cli import main; main()", "--home", str(home), "build", "--quick",
               "--dataset", "synthetic", "--variants", variants, "--force"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"lab build --variants {variants} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def _guide_files(home: Path) -> dict[str, Path]:
    """The variants of the last `--variants all` build in ``home``."""
    folders = sorted((p.parent for p in home.glob("artifacts/*/dense-int8.tflite")), key=lambda p: p.stat().st_mtime)
    if not folders:
        raise SystemExit(f"no --variants all build under {home}")
    return {name: folders[-1] / VARIANTS[name].file_name for name in VARIANTS}


# MobileNet v1's depthwise-separable blocks: (depthwise stride, pointwise filters at alpha 1).
_MOBILENET_BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), *[(1, 512)] * 5, (2, 1024), (1, 1024))


def mobilenet_v1(alpha: float, num_classes: int = 10) -> object:
    """MobileNet v1 (224×224×3) written as the guide writes its CNN, so XNNPACK's sparse path can take
    it: every stride-2 convolution is ZeroPadding2D(1) + VALID (TF's SAME pads stride 2 unevenly,
    which XNNPACK's CHW kernels and tfmot's PruneForLatencyOnXNNPack refuse; tf_keras's own
    MobileNet has a SAME stem), and the pooling keeps its dimensions (MEAN ends the sparse subgraph).
    """
    from host.builder import _tf

    layers = _tf.tf_keras().layers

    def width(filters: int) -> int:
        return max(8, int(filters * alpha))

    stack = [layers.InputLayer(input_shape=(224, 224, 3), name="input"), layers.ZeroPadding2D(1, name="stem_pad"),
             layers.Conv2D(width(32), 3, strides=2, padding="valid", name="stem_conv"),
             layers.BatchNormalization(name="stem_bn"), layers.ReLU(name="stem_relu")]  # fmt: skip
    for i, (stride, filters) in enumerate(_MOBILENET_BLOCKS, start=1):
        if stride == 2:
            stack += [layers.ZeroPadding2D(1, name=f"dw{i}_pad"),
                      layers.DepthwiseConv2D(3, strides=2, padding="valid", name=f"dw{i}")]  # fmt: skip
        else:
            stack.append(layers.DepthwiseConv2D(3, padding="same", name=f"dw{i}"))
        stack += [layers.BatchNormalization(name=f"dw{i}_bn"), layers.ReLU(name=f"dw{i}_relu"),
                  layers.Conv2D(width(filters), 1, name=f"pw{i}"), layers.BatchNormalization(name=f"pw{i}_bn"),
                  layers.ReLU(name=f"pw{i}_relu")]  # fmt: skip
    stack += [layers.GlobalAveragePooling2D(keepdims=True, name="pool"), layers.Flatten(name="flatten"),
              layers.Dense(num_classes, name="logits")]  # fmt: skip
    return _tf.tf_keras().Sequential(stack, name=f"mobilenet_v1_{alpha:g}")


def _mobilenet_files(folder: Path, alpha: float) -> dict[str, Path]:
    """MobileNet v1 (224×224) dense and pruned to 75%, converted into every variant by the builder."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from host.builder import _tf
    from host.builder.convert import to_tflite
    from host.builder.variants import MIN_CALIBRATION_SAMPLES

    keras, tfmot = _tf.tf_keras(), _tf.tfmot()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (MIN_CALIBRATION_SAMPLES, 224, 224, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, MIN_CALIBRATION_SAMPLES)
    dense = mobilenet_v1(alpha)
    sparse = tfmot.sparsity.keras
    pruned = sparse.prune_low_magnitude(
        keras.models.clone_model(dense),
        pruning_schedule=sparse.ConstantSparsity(0.75, begin_step=0, frequency=1),
        pruning_policy=sparse.PruneForLatencyOnXNNPack(),
    )
    pruned.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy())
    pruned.fit(images[:32].astype("float32") / 255.0, labels[:32], epochs=1, batch_size=16, verbose=0,
               callbacks=[sparse.UpdatePruningStep()])  # fmt: skip
    models = {"dense": dense, "pruned": sparse.strip_pruning(pruned)}
    files = {}
    for name, variant in VARIANTS.items():
        files[name] = folder / variant.file_name
        files[name].write_bytes(to_tflite(models[variant.base], sparse=variant.sparse, precision=variant.precision,
                                          calibration=images))  # fmt: skip
    return files


def _bench(userland: Userland, model: str, variant: str, path: Path, runs: int, *extra: str) -> Measured:
    flags = [f"--graph={path}", f"--num_runs={runs}", "--min_secs=0", "--warmup_runs=1", "--warmup_min_secs=0",
             "--num_threads=1", "--enable_op_profiling=true", *extra]  # fmt: skip
    argv, env = userland.bench_command(flags, cpu=DEFAULT_CPU)
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the runner failed on {path}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    result = parse(done.stdout)
    if result.instructions is None or result.kernels is None:
        raise SystemExit(f"no counts for {path}: {result.instructions_unavailable or result.kernels_unavailable}")
    counts = {row.function: row.instructions for row in result.kernels.rows}
    label = variant + (" (forced fp16)" if FORCE_FP16 in extra else "")
    families = kernel_families(counts, delegated=delegated_nodes(done.stdout))
    return Measured(model, label, result.instructions.median, families)


def _matrix(userland: Userland, model: str, files: dict[str, Path], runs: int) -> list[Measured]:
    rows = [_bench(userland, model, name, path, runs) for name, path in files.items()]
    rows += [_bench(userland, model, name, files[name], runs, FORCE_FP16) for name in ("dense-fp16", "pruned-fp16")]
    return rows


def _print_matrix(model: str, rows: list[Measured]) -> None:
    base = next(r.instructions for r in rows if r.variant == "dense")
    print(f"\n{model}")
    print(f"  {'variant':26} {'instructions/inference':>22} {'× dense':>8}  {'kernels':10} {'sparse':6}  families")
    for r in rows:
        f = r.families
        families = f.summary().split(" — ")[0]
        nodes = f"; XNNPACK {f.delegated.text()}" if f.delegated is not None else ""
        precisions = " + ".join(f.precisions) or "n/a"  # most instructions first
        print(f"  {r.variant:26} {r.instructions:>22,} {r.instructions / base:>7.2f}×  {precisions:10} "
              f"{'yes' if f.sparse else 'no':6}  {families}{nodes}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-pairs", type=int, default=1, help="timed dense,pruned / all build pairs (default 1)")
    parser.add_argument("--runs", type=int, default=1, help="measured inferences per file (default 1; counts are exact)")
    parser.add_argument("--alpha", type=float, default=0.25, help="MobileNet width multiplier (default 0.25)")
    parser.add_argument("--skip-mobilenet", action="store_true")
    options = parser.parse_args()
    userland = find_userland(default_dest())
    if userland is None:
        raise SystemExit("no arm64 userland: run `lab emulator prepare --arch arm64` first")
    print(f"1-minute load at start: {_load()} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="lab-variants-matrix-") as tmp:
        scratch = Path(tmp)
        builds: dict[str, list[float]] = {"dense,pruned": [], "all": []}
        for _ in range(options.build_pairs):
            for variants in builds:
                builds[variants].append(_lab_build(scratch / "home", variants))
        started = time.perf_counter()
        matrices = {"guide's CNN (32×32, lab build --quick --dataset synthetic --variants all)":
                    _matrix(userland, "guide", _guide_files(scratch / "home"), options.runs)}  # fmt: skip
        guide_seconds = time.perf_counter() - started
        mobilenet_seconds = None
        if not options.skip_mobilenet:
            print("building MobileNet v1 variants (TensorFlow)…", file=sys.stderr)
            folder = scratch / "mobilenet"
            folder.mkdir()
            files = _mobilenet_files(folder, options.alpha)
            started = time.perf_counter()
            title = f"MobileNet v1 α={options.alpha:g} (224×224, 13 1x1 convolutions, untrained, pruned 75%)"
            matrices[title] = _matrix(userland, "mobilenet", files, options.runs)
            mobilenet_seconds = time.perf_counter() - started

    info = userland.info
    print(f"arm64 emulated device: qemu-user {DEFAULT_CPU} (QEMU {info['qemu']}), LiteRT {info['litert']}, "
          f"1 thread, 1 warm-up + {options.runs} measured inference(s) per file, --enable_op_profiling")  # fmt: skip
    for title, rows in matrices.items():
        _print_matrix(title, rows)
    print(f"\nQEMU time: guide {guide_seconds:.0f} s" + (f", MobileNet {mobilenet_seconds:.0f} s" if mobilenet_seconds else ""))
    dense_pruned, every = statistics.median(builds["dense,pruned"]), statistics.median(builds["all"])
    print(f"\nlab build --quick --dataset synthetic --force ({options.build_pairs} pair(s), fresh process each, "
          "alternating)")  # fmt: skip
    print(f"  --variants dense,pruned  median {dense_pruned:6.1f} s  {[round(s, 1) for s in builds['dense,pruned']]}")
    print(f"  --variants all           median {every:6.1f} s  {[round(s, 1) for s in builds['all']]}")
    ratio = every / dense_pruned
    print(f"  all / dense,pruned: {ratio:.2f}×  (target ≤ {BUILD_TARGET}×: {'met' if ratio <= BUILD_TARGET else 'MISSED'})")
    print(f"1-minute load at end: {_load()}")


if __name__ == "__main__":
    main()
