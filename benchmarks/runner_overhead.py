"""How much the device agent's runner adds to each invoke, on the cheapest model there is.

    .venv/bin/python benchmarks/runner_overhead.py [--rounds N] [--secs S] [--model PATH]

On the one-op ADD model (tests/fixtures/models/add.tflite) it alternates, in one process,
``python -m device_agent bench``'s measured runs (``device_agent.bench.main`` with
``--samples_file``) and a bare loop of ``interpreter.invoke()`` calls on an interpreter built the
same way (LiteRT's default XNNPACK delegate, default threads). The bare loop times blocks of
invokes, so no clock read sits between two invokes; its per-invoke figure is a block's time divided
by its length. Printed: the median per-invoke time of each, their ratio and difference (the
runner's overhead per invoke), and the timer overhead the runner itself reports.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from device_agent.bench import main as bench_main
from device_agent.output import parse

ROOT = Path(__file__).resolve().parents[1]
ADD_MODEL = ROOT / "tests" / "fixtures" / "models" / "add.tflite"
BLOCK = 1000  # invokes per timed block in the bare loop


def runner_round(model: Path, secs: float, samples: Path) -> tuple[float, float]:
    """(median per-invoke µs, the runner's reported timer overhead µs) of one runner run."""
    out = io.StringIO()
    args = [f"--graph={model}", "--num_runs=1", f"--min_secs={secs}", "--warmup_min_secs=0.2", f"--samples_file={samples}"]
    if bench_main(args, out=out) != 0:
        raise SystemExit(f"the runner failed:\n{out.getvalue()}")
    result = parse(out.getvalue())
    values = [float(line) for line in samples.read_text().splitlines()]
    if result.timer_overhead_us is None:
        raise SystemExit("the runner did not report its timer overhead")
    return statistics.median(values), result.timer_overhead_us


def bare_round(model: Path, secs: float) -> float:
    """Median per-invoke µs of blocks of bare ``interpreter.invoke()`` calls."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], rng.uniform(-0.5, 0.5, detail["shape"]).astype(detail["dtype"]))
    invoke, clock = interpreter.invoke, time.perf_counter_ns
    for _ in range(BLOCK):  # warm-up
        invoke()
    per_invoke: list[float] = []
    deadline = clock() + int(secs * 1e9)
    while clock() < deadline:
        t0 = clock()
        for _ in range(BLOCK):
            invoke()
        per_invoke.append((clock() - t0) / BLOCK / 1000.0)
    return statistics.median(per_invoke)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="runner/bare pairs, alternated (default 5)")
    parser.add_argument("--secs", type=float, default=1.0, help="seconds of measuring per round and side (default 1)")
    parser.add_argument("--model", type=Path, default=ADD_MODEL, help="a .tflite model (default: the one-op ADD)")
    args = parser.parse_args()

    runner, bare, timer = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.txt"
        for _ in range(args.rounds):
            median_us, overhead_us = runner_round(args.model, args.secs, samples)
            runner.append(median_us)
            timer.append(overhead_us)
            bare.append(bare_round(args.model, args.secs))

    r, b = statistics.median(runner), statistics.median(bare)
    print(f"model: {args.model.name}, {args.rounds} rounds x {args.secs:g} s per side")
    print(f"runner per-invoke median (us):          {r:.3f}   rounds: {', '.join(f'{x:.3f}' for x in runner)}")
    print(f"bare invoke() loop per-invoke (us):     {b:.3f}   rounds: {', '.join(f'{x:.3f}' for x in bare)}")
    print(f"ratio runner / bare:                    {r / b:.3f}")
    print(f"runner overhead per invoke (us):        {r - b:.3f}")
    print(f"runner's reported timer overhead (us):  {statistics.median(timer):.3f}")


if __name__ == "__main__":
    main()
