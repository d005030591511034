"""``python -m device_agent bench``: benchmark_model's flags and output, on LiteRT + XNNPACK.

The emulated device's ``benchmark_model`` and a runner for any machine with Python. It follows
TFLite's ``benchmark_model`` (tensorflow/lite/tools/benchmark): the same flags, defaults and loop
(at least ``--num_runs`` runs and ``--min_secs`` seconds, at most ``--max_secs``), the same output
line for line (see ``device_agent.output``), ``ERROR: …`` lines, ``Benchmarking failed.`` and exit
status 1 on failure. Everything goes to one stream (stdout), in order. Given inputs and saved
outputs take benchmark_model's own flags (``--input_layer``, ``--input_layer_shape``,
``--input_layer_value_files``, ``--output_filepath``), so the lab's on-device output check works
the same on phones and here.

Differences, all additive:
- times come from ``time.perf_counter_ns`` around each ``invoke()`` and are printed with their
  sub-µs digits (benchmark_model prints whole µs), because a one-op model takes about 1 µs;
- ``Timer overhead per invoke (us): …`` — the median cost of the clock reads and a Python call,
  which every sample includes — and ``Runner: …`` name this runner;
- ``--samples_file PATH`` writes every measured per-invoke time (µs, one a line);
- ``--count_instructions`` (default on under the lab's QEMU emulation, see ``device_agent.qemu``)
  prints one more line, the guest instructions per inference that the lab's QEMU plugin counted
  (``Instructions per inference (emulated, qemu-user neoverse-n1): first=… min=… median=…
  count=…``), or why they are unavailable; the times are measured as without it.
- ``--xnnpack_force_fp16=true`` runs the model through LiteRT's CompiledModel API, the only one
  that passes XNNPACK's flags (see ``device_agent.model``); the ``Runner:`` line says so, because
  that API's own per-invoke work differs from the Interpreter's;
- ``--enable_op_profiling=true``: LiteRT's Python API has no op profiler, so the runner says so in
  one line and the run goes on; under the lab's QEMU plugin it prints per-kernel instruction counts
  instead (``Instructions per kernel (…)``: the functions of LiteRT's native library, and any other
  code, that ran during the measured runs; see ``device_agent.qemu.kernels``). Off, nothing of it
  runs.

This module runs a benchmark in benchmark_model's order and prints its lines: the flags are read
by ``device_agent.flags``, the model loaded by ``device_agent.model``, the invokes timed by
``device_agent.timing`` and instructions counted by ``device_agent.counting``. numpy and
ai-edge-litert are imported inside the functions that need them.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from device_agent.counting import Counting, KernelCounting, counting_requested
from device_agent.failure import BenchmarkFailed
from device_agent.flags import HELP_ARGS, BenchFlags, ParsedArgs, param_lines, parse_flags, usage, validate
from device_agent.model import XNNPACK_FORCE_FP16_FLAGS, litert_version, load_model, set_inputs, write_outputs
from device_agent.output import (
    FAILED,
    MEMORY_NOTE,
    format_inference_timings,
    format_memory_delta,
    format_number,
    format_op_profiling_unavailable,
    format_periodic_peak,
    format_runner,
    format_running,
    format_stats,
    format_timer_overhead,
)
from device_agent.timing import run_loop, summarize, timer_overhead_us

__all__ = ["main"]

NO_OP_PROFILER = (
    "LiteRT's Python API has no op profiler; per-kernel instruction counts come from the lab's QEMU "
    "plugin on an emulated arm64 device, per-op times from benchmark_model on a phone"
)


class _Log:
    """benchmark_model's log lines on one stream, flushed line by line so a reader sees progress."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def info(self, message: str = "") -> None:
        self._write(f"INFO: {message}" if message else "")

    def warn(self, message: str) -> None:
        self._write(f"WARN: {message}")

    def error(self, message: str) -> None:
        self._write(f"ERROR: {message}")

    def _write(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()


def _max_rss_mb() -> float | None:
    """Peak resident set size of this process so far (what benchmark_model's memory lines report)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _benchmark(parsed: ParsedArgs, log: _Log) -> None:
    flags = parsed.flags
    validate(flags)
    if not flags.samples_file:
        _measure(flags, log, None)
        return
    with _open_samples_file(flags.samples_file) as samples_file:
        _measure(flags, log, samples_file)


def _measure(flags: BenchFlags, log: _Log, samples_file: TextIO | None) -> None:
    start_mb = _max_rss_mb()
    kernels = KernelCounting(flags.enable_op_profiling)
    try:
        _measure_loaded(flags, log, samples_file, start_mb, kernels)
    finally:
        kernels.close()


def _measure_loaded(
    flags: BenchFlags, log: _Log, samples_file: TextIO | None, start_mb: float | None, kernels: KernelCounting
) -> None:
    started = time.perf_counter_ns()
    interpreter = load_model(flags, log.info)
    init_us = (time.perf_counter_ns() - started) / 1000.0
    init_mb = _max_rss_mb()
    log.info(f"Initialized session in {format_number(init_us / 1000.0)}ms.")
    set_inputs(interpreter, flags)
    overhead_us = timer_overhead_us()
    counting = Counting(flags.count_instructions, flags.max_secs)
    if counting.counter is not None and flags.num_threads > 1:
        log.warn(
            f"Instruction counts with --num_threads={flags.num_threads} include the worker threads' waiting "
            "and vary from run to run: use --num_threads=1 for exact counts"
        )
    try:
        invoke = interpreter.invoke
        log.info(format_running(flags.warmup_runs, flags.warmup_min_secs, flags.max_secs))
        warmup_samples = run_loop(
            invoke, flags.warmup_runs, flags.warmup_min_secs, flags.max_secs, flags.run_delay, counting.marks
        )
        warmup_counts = counting.take(len(warmup_samples))
        warmup = summarize(warmup_samples)
        log.info(format_stats(warmup))
        log.info()
        log.info(format_running(flags.num_runs, flags.min_secs, flags.max_secs))
        kernels.reset()
        # At least one run: validate refuses num_runs=0 with min_secs=0, and the loop's first
        # check passes even with max_secs=0.
        samples = run_loop(invoke, flags.num_runs, flags.min_secs, flags.max_secs, flags.run_delay, counting.marks)
        block_counts = kernels.take()
        end_mb = _max_rss_mb()  # before summarizing, whose arrays are the runner's, not the model's
        counts = counting.take(len(samples))
    finally:
        counting.close()
    if flags.output_filepath:
        write_outputs(interpreter, flags.output_filepath)
    runs = summarize(samples)
    log.info(format_stats(runs))
    log.info()
    if samples_file is not None:
        samples_file.writelines(f"{ns / 1000:.3f}\n" for ns in samples)

    # benchmark_model's "First inference" is the first warm-up run; with no warm-up, the first run.
    first = warmup if warmup.count else runs
    log.info(format_inference_timings(init_us, _value(first.first_us), _value(warmup.avg_us), _value(runs.avg_us)))
    if start_mb is not None and init_mb is not None and end_mb is not None:
        log.info(MEMORY_NOTE)
        log.info(format_memory_delta(init_mb - start_mb, end_mb - start_mb))
        if flags.report_peak_memory_footprint:
            log.info(format_periodic_peak(end_mb))
    instructions = counting.line(warmup_counts, counts)
    if instructions is not None:
        log.info(instructions)
    if flags.enable_op_profiling:
        log.info(format_op_profiling_unavailable(NO_OP_PROFILER))
        for line in kernels.lines(block_counts, len(samples)):
            log.info(line)
    log.info(format_timer_overhead(overhead_us))
    api = f", CompiledModel API, XNNPACK flags {XNNPACK_FORCE_FP16_FLAGS:#x}" if flags.xnnpack_force_fp16 else ""
    log.info(format_runner(f"lab device_agent (LiteRT {litert_version()}{api})"))


def _value(value: float | None) -> float:
    return float("nan") if value is None else value


def _open_samples_file(path: str) -> TextIO:
    """Open --samples_file before the run, so a bad path fails before minutes of measuring."""
    try:
        return open(path, "w", encoding="ascii")
    except OSError as exc:
        raise BenchmarkFailed(f"Failed to open the samples file '{path}': {exc.strerror}") from exc


def main(argv: list[str], out: TextIO | None = None) -> int:
    """Run one benchmark; print benchmark_model's output to ``out`` (stdout). Returns the exit status."""
    stream = out if out is not None else sys.stdout
    log = _Log(stream)
    if any(arg in HELP_ARGS for arg in argv):
        stream.write(usage())
        return 0
    log.info("STARTING!")
    try:
        parsed = parse_flags(argv, count_default=counting_requested())
        if parsed.duplicates:
            log.warn(f"Duplicate flags: {', '.join(parsed.duplicates)}")
        if parsed.unconsumed:
            log.warn(f"Unconsumed cmdline flags: {' '.join(parsed.unconsumed)}")
        for line in param_lines(parsed):
            log.info(line)
        _benchmark(parsed, log)
    except BenchmarkFailed as exc:
        for line in exc.lines:
            log.error(line)
        log.error(FAILED)
        return 1
    return 0
