"""``python -m device_agent bench``: benchmark_model's flags and output, on LiteRT + XNNPACK.

The emulated device's ``benchmark_model`` and a runner for any machine with Python. It follows
TFLite's ``benchmark_model`` (tensorflow/lite/tools/benchmark): the same flags, defaults and loop
(at least ``--num_runs`` runs and ``--min_secs`` seconds, at most ``--max_secs``), the same output
line for line (see ``device_agent.output``), ``ERROR: …`` lines, ``Benchmarking failed.`` and exit
status 1 on failure. Everything goes to one stream (stdout), in order.

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
- ``--enable_op_profiling=true``: LiteRT's Python API has no op profiler, so the runner says so in
  one line and the run goes on; under the lab's QEMU plugin it prints per-kernel instruction counts
  instead (``Instructions per kernel (…)``: the functions of LiteRT's native library, and any other
  code, that ran during the measured runs; see ``device_agent.qemu.kernels``). Off, nothing of it
  runs.

numpy and ai-edge-litert are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import re
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TextIO

from device_agent.errors import RunnerError
from device_agent.output import (
    FAILED,
    MEMORY_NOTE,
    InstructionCounts,
    KernelProfile,
    KernelRow,
    RunStats,
    format_inference_timings,
    format_instructions,
    format_instructions_unavailable,
    format_kernels,
    format_kernels_unavailable,
    format_op_profiling_unavailable,
    format_memory_delta,
    format_number,
    format_periodic_peak,
    format_running,
    format_runner,
    format_stats,
    format_timer_overhead,
)

if TYPE_CHECKING:
    from device_agent.qemu.counter import BlockCounter, RegionCounter

__all__ = ["BenchFlags", "BenchmarkFailed", "ParsedArgs", "main", "parse_flags", "summarize", "timer_overhead_us"]

INPUT_SEED = 0  # random inputs are the same on every run and every device
CALIBRATION_RUNS = 20  # empty counted regions that measure the markers' own instructions
KERNEL_ROWS = 100  # per-kernel rows printed; the rest are summed into one "(other functions)" row
NO_OP_PROFILER = (
    "LiteRT's Python API has no op profiler; per-kernel instruction counts come from the lab's QEMU "
    "plugin on an emulated arm64 device, per-op times from benchmark_model on a phone"
)
_TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier at bytes 4..8 of every .tflite


@dataclass(frozen=True)
class BenchFlags:
    """benchmark_model's flags that this runner reads, with benchmark_model's defaults.

    ``num_threads=-1`` lets the runtime choose (LiteRT's Python interpreter then uses one thread);
    ``run_delay`` ≤ 0 means no pause between runs. ``use_xnnpack`` defaults to true: XNNPACK is
    LiteRT's default delegate, and false really turns it off (no delegate at all).
    """

    graph: str = ""
    num_threads: int = -1
    num_runs: int = 50
    min_secs: float = 1.0
    max_secs: float = 150.0
    warmup_runs: int = 1
    warmup_min_secs: float = 0.5
    run_delay: float = -1.0
    use_xnnpack: bool = True
    report_peak_memory_footprint: bool = False
    samples_file: str = ""
    count_instructions: bool = False  # parse_flags's default is true under the lab's QEMU emulation
    enable_op_profiling: bool = False


_HELP = {
    "graph": "path to the .tflite model",
    "num_threads": "number of threads (-1: the runtime's default)",
    "num_runs": "minimum number of measured runs",
    "min_secs": "minimum seconds of measured runs",
    "max_secs": "maximum seconds of measured runs (and of the warm-up)",
    "warmup_runs": "minimum number of warm-up runs",
    "warmup_min_secs": "minimum seconds of warm-up runs",
    "run_delay": "seconds to sleep between runs (<= 0: none)",
    "use_xnnpack": "apply the XNNPACK delegate (true/false/1/0)",
    "report_peak_memory_footprint": "also print the peak memory footprint (true/false/1/0)",
    "samples_file": "write every measured per-invoke time (us), one a line, to this file",
    "count_instructions": "print guest instructions per inference (the lab's QEMU plugin; default true under it)",
    "enable_op_profiling": "per-op profile: per-kernel instruction counts under the lab's QEMU plugin",
}

# benchmark_model's names for the parameters it lists when they are set on the command line.
_PARAM_TITLES = {
    "num_runs": "Min num runs",
    "min_secs": "Min runs duration (seconds)",
    "max_secs": "Max runs duration (seconds)",
    "run_delay": "Inter-run delay (seconds)",
    "warmup_runs": "Min warmup runs",
    "warmup_min_secs": "Min warmup runs duration (seconds)",
    "report_peak_memory_footprint": "Report the peak memory footprint",
    "samples_file": "Samples file",
    "count_instructions": "Count instructions",
    "enable_op_profiling": "Enable op profiling",
}

_HELP_ARGS = frozenset({"--help", "-h", "--help=true", "--help=1"})
_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_BOOLS = {"true": True, "1": True, "false": False, "0": False}


class BenchmarkFailed(RunnerError):
    """The run failed; ``lines`` are the ``ERROR:`` messages benchmark_model would print for it."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else FAILED)
        self.lines = lines


@dataclass(frozen=True)
class ParsedArgs:
    flags: BenchFlags
    explicit: frozenset[str]  # flags given on the command line
    unconsumed: tuple[str, ...]  # arguments that are no flag of ours, in order
    duplicates: tuple[str, ...]  # flag names given more than once (the first value wins)


def parse_flags(argv: Sequence[str], *, count_default: bool = False) -> ParsedArgs:
    """Read ``--name=value`` flags as benchmark_model's command-line parser does.

    Booleans take true/false/1/0. An argument that is no known ``--name=value`` (a typo, a bare
    ``--flag``, a positional word) is returned in ``unconsumed``; the run goes on with it reported.
    ``count_default`` is ``--count_instructions``'s value when it is not given (``main`` passes
    true under the lab's QEMU emulation).

    Raises:
        BenchmarkFailed: a known flag with a value of the wrong type, e.g. ``--num_runs=ten``.
    """
    types = {f.name: f.type for f in fields(BenchFlags)}
    values: dict[str, Any] = {}
    unconsumed: list[str] = []
    duplicates: list[str] = []
    for arg in argv:
        name, sep, raw = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if not sep or name not in types:
            unconsumed.append(arg)
            continue
        if name in values:
            if name not in duplicates:
                duplicates.append(name)
            continue
        values[name] = _convert(name, raw, types[name], arg)
    explicit = frozenset(values)
    values.setdefault("count_instructions", count_default)
    return ParsedArgs(
        flags=BenchFlags(**values),
        explicit=explicit,
        unconsumed=tuple(unconsumed),
        duplicates=tuple(duplicates),
    )


def _convert(name: str, raw: str, kind: str, arg: str) -> Any:
    if kind == "str":
        return raw
    if kind == "int" and _INT.match(raw):
        return int(raw)
    if kind == "float" and _FLOAT.match(raw):
        return float(raw)
    if kind == "bool" and raw.lower() in _BOOLS:
        return _BOOLS[raw.lower()]
    expected = {"int": "an integer", "float": "a number", "bool": "true, false, 1 or 0"}[kind]
    raise BenchmarkFailed(f"Failed to parse flag '{name}' against argv '{arg}': expected {expected}")


def _validate(flags: BenchFlags) -> None:
    if not flags.graph:
        raise BenchmarkFailed("Please specify the name of your TF Lite input file with --graph")
    if flags.num_threads == 0 or flags.num_threads < -1:
        raise BenchmarkFailed(f"Invalid --num_threads={flags.num_threads}: use a positive count or -1 (the default)")
    for name in ("num_runs", "warmup_runs", "min_secs", "max_secs", "warmup_min_secs"):
        if getattr(flags, name) < 0:
            raise BenchmarkFailed(f"Invalid --{name}={getattr(flags, name)}: it must not be negative")
    if flags.num_runs == 0 and flags.min_secs == 0:
        raise BenchmarkFailed("--num_runs=0 with --min_secs=0 measures nothing: raise one of them")


def _usage() -> str:
    lines = ["usage: python -m device_agent bench --graph=MODEL.tflite [--flag=value ...]", "Flags:"]
    for f in fields(BenchFlags):
        default = str(f.default).lower() if isinstance(f.default, bool) else _shown(f.default)
        lines.append(f"\t--{f.name}={default}\t{f.type}\t{_HELP[f.name]}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Measuring


def summarize(samples_ns: Sequence[int]) -> RunStats:
    """Per-invoke times in ns → benchmark_model's statistics in µs.

    std is the population standard deviation (as tflite's ``Stat``); p5, median and p95 are
    linear interpolations between order statistics (numpy's default).
    """
    import numpy as np

    if not samples_ns:
        return RunStats(count=0, curr_us=float("nan"))
    us = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    p5, median, p95 = (float(x) for x in np.percentile(us, [5, 50, 95]))
    return RunStats(
        count=len(us),
        curr_us=float(us[-1]),
        first_us=float(us[0]),
        min_us=float(us.min()),
        max_us=float(us.max()),
        avg_us=float(us.mean()),
        std_us=float(us.std()),
        p5_us=p5,
        median_us=median,
        p95_us=p95,
    )


def timer_overhead_us(iterations: int = 20_000) -> float:
    """Median time, in µs, that ``clock(); call(); clock()`` measures around a call that does nothing.

    Every per-invoke sample includes this much that is not the model's work.
    """
    clock = time.perf_counter_ns

    def nothing() -> None:
        return None

    deltas = array("q", bytes(8 * iterations))
    for i in range(iterations):
        t0 = clock()
        nothing()
        deltas[i] = clock() - t0
    ordered = sorted(deltas)
    return ordered[iterations // 2] / 1000.0


def _nothing() -> None:
    return None


def _run_loop(
    invoke: Callable[[], object],
    min_runs: int,
    min_secs: float,
    max_secs: float,
    delay_s: float,
    marks: tuple[Callable[[], object], Callable[[], object]] = (_nothing, _nothing),
) -> array[int]:
    """benchmark_model's ``Run``: at least min_runs runs and min_secs, at most max_secs.

    ``marks`` (start, stop) enclose each timed invoke outside the clock reads: the instruction
    counter's markers, which so never add to the times.
    """
    clock = time.perf_counter_ns
    samples: array[int] = array("q")
    append = samples.append
    start, stop = marks
    now = clock()
    min_finish = now + int(min_secs * 1e9)
    max_finish = now + int(max_secs * 1e9)
    run = 0
    while (run < min_runs or now < min_finish) and now <= max_finish:
        start()
        t0 = clock()
        try:
            invoke()
        except (RuntimeError, ValueError) as exc:
            raise BenchmarkFailed(*_message_lines(exc), "Failed to invoke the interpreter") from exc
        now = clock()
        stop()
        append(now - t0)
        if delay_s > 0:
            time.sleep(delay_s)
            now = clock()
        run += 1
    return samples


def _max_rss_mb() -> float | None:
    """Peak resident set size of this process so far (what benchmark_model's memory lines report)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _message_lines(exc: BaseException) -> list[str]:
    return [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]


def _random_inputs(interpreter: Any) -> None:
    """Fill every input with seeded random values of its dtype and shape (benchmark_model's ranges)."""
    import numpy as np

    rng = np.random.default_rng(INPUT_SEED)
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = tuple(int(x) for x in detail["shape"])
        if dtype.kind == "f":
            data = rng.uniform(-0.5, 0.5, shape).astype(dtype)
        elif dtype.kind == "b":
            data = rng.integers(0, 2, shape).astype(dtype)
        elif dtype.kind in "iu":
            low, high = {np.dtype(np.int8): (-127, 127), np.dtype(np.uint8): (0, 254)}.get(dtype, (0, 99))
            data = rng.integers(low, high, shape, endpoint=True).astype(dtype)
        elif dtype.kind == "c":
            data = (rng.uniform(-0.5, 0.5, shape) + 1j * rng.uniform(-0.5, 0.5, shape)).astype(dtype)
        else:
            raise BenchmarkFailed(f"Input '{detail['name']}' has type {dtype}, which the runner cannot fill with random data")
        interpreter.set_tensor(detail["index"], data)


def _xnnpack_message(interpreter: Any) -> str | None:
    """What benchmark_model says after applying XNNPACK, read from the graph the runtime built.

    LiteRT applies its default XNNPACK delegate inside ``allocate_tensors``; each delegated
    partition becomes a ``DELEGATE`` node whose inputs and outputs bound the nodes it replaced.
    None when the runtime does not list its nodes.
    """
    try:
        ops = interpreter._get_ops_details()  # LiteRT's "experimental" node listing
    except (AttributeError, RuntimeError, ValueError):
        return None
    kernels = [op for op in ops if op["op_name"] == "DELEGATE"]
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    if not kernels:
        return "Though XNNPACK delegate is explicitly applied, the model graph will not be executed by the delegate."
    producer = {int(t): op["index"] for op in original for t in op["outputs"]}
    covered: set[int] = set()
    for kernel in kernels:
        boundary = {int(t) for t in kernel["inputs"]}
        pending = [int(t) for t in kernel["outputs"]]
        while pending:
            tensor = pending.pop()
            node = producer.get(tensor)
            if tensor in boundary or node is None or node in covered:
                continue
            covered.add(node)
            pending.extend(int(t) for t in ops[node]["inputs"] if int(t) >= 0)
    if len(covered) >= len(original):
        return "Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate."
    return (
        "Explicitly applied XNNPACK delegate, and the model graph will be partially executed by the delegate "
        f"w/ {len(kernels)} delegate kernels."
    )


def _litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"


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


def _shown(value: object) -> str:
    """A flag value as benchmark_model lists it: booleans as 1/0, floats as C++ prints them."""
    if isinstance(value, bool):
        return str(int(value))
    return format_number(value) if isinstance(value, float) else str(value)


def _log_params(log: _Log, parsed: ParsedArgs) -> None:
    f, explicit = parsed.flags, parsed.explicit

    def shown(name: str) -> str:
        return _shown(getattr(f, name))

    log.info("Log parameter values verbosely: [0]")
    for name in ("num_runs", "min_secs", "max_secs", "run_delay"):
        if name in explicit:
            log.info(f"{_PARAM_TITLES[name]}: [{shown(name)}]")
    log.info(f"Num threads: [{f.num_threads}]")
    for name in ("warmup_runs", "warmup_min_secs"):
        if name in explicit:
            log.info(f"{_PARAM_TITLES[name]}: [{shown(name)}]")
    log.info(f"Graph: [{f.graph}]")
    log.info(f"#threads used for CPU inference: [{f.num_threads}]")
    log.info(f"Use xnnpack: [{shown('use_xnnpack')}]")
    for name in ("report_peak_memory_footprint", "samples_file", "count_instructions", "enable_op_profiling"):
        if name in explicit:
            log.info(f"{_PARAM_TITLES[name]}: [{shown(name)}]")


def _check_model_file(graph: str) -> int:
    """The model file's size; the errors benchmark_model prints when it cannot load the file."""
    try:
        with open(graph, "rb") as fh:
            head = fh.read(8)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        raise BenchmarkFailed(f"Could not open '{graph}'.", f"Failed to mmap model {graph}") from None
    if len(head) < 8 or head[4:8] != _TFLITE_IDENTIFIER:
        found = "".join(c if c.isprintable() else "?" for c in head[4:8].decode("latin-1"))
        raise BenchmarkFailed(
            f"Model provided has model identifier '{found}', should be '{_TFLITE_IDENTIFIER.decode()}'",
            f"Failed to mmap model {graph}",
        )
    return size


def _benchmark(parsed: ParsedArgs, log: _Log) -> None:
    flags = parsed.flags
    _validate(flags)
    if not flags.samples_file:
        _measure(flags, log, None)
        return
    with _open_samples_file(flags.samples_file) as samples_file:
        _measure(flags, log, samples_file)


def _load(flags: BenchFlags, log: _Log) -> Any:
    """benchmark_model's ``Init``: load the model, build the interpreter, apply XNNPACK, allocate."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    size = _check_model_file(flags.graph)
    # BUILTIN_WITHOUT_DEFAULT_DELEGATES is the resolver that keeps LiteRT from applying XNNPACK.
    resolver = OpResolverType.AUTO if flags.use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = Interpreter(
            model_path=flags.graph,
            num_threads=flags.num_threads if flags.num_threads > 0 else None,
            experimental_op_resolver_type=resolver,
        )
    except (RuntimeError, ValueError) as exc:
        raise BenchmarkFailed(*_message_lines(exc), "Failed to initialize the interpreter") from exc
    log.info(f"Loaded model {flags.graph}")
    try:
        interpreter.allocate_tensors()  # LiteRT applies its default delegate (XNNPACK) here
    except (RuntimeError, ValueError) as exc:
        raise BenchmarkFailed(*_message_lines(exc), "Failed to allocate tensors!") from exc
    if flags.use_xnnpack:
        message = _xnnpack_message(interpreter)
        if message:
            log.info(message)
    log.info(f"The input model file size (MB): {format_number(size / 1e6)}")
    return interpreter


class _Counting:
    """``--count_instructions``: the counter's markers around every invoke, and the resulting line.

    Off, it marks nothing and prints nothing. On, empty regions first (``CALIBRATION_RUNS``) show
    whether a plugin answers at all and measure the markers' own instructions, the smallest of
    them, which is subtracted from every count. When counting fails the times still come, and the
    line says why the counts are unavailable.
    """

    def __init__(self, enabled: bool, max_secs: float) -> None:
        self.enabled = enabled
        self.label = ""
        self.counter: RegionCounter | None = None
        self.reason = "nothing was counted"
        self.overhead = 0
        if not enabled:
            return
        from device_agent.qemu.counter import NOT_ANSWERED, emulation_label, open_counter

        self.label = emulation_label()
        opened = open_counter()
        if isinstance(opened, str):
            self.reason = opened
            return
        self.counter = opened
        _run_loop(_nothing, CALIBRATION_RUNS, 0.0, max_secs, 0.0, self.marks)
        empty = opened.take()
        if len(empty) == CALIBRATION_RUNS:
            self.overhead = min(empty)
        else:
            self._give_up(f"the plugin counted {len(empty)} of {CALIBRATION_RUNS} regions" if empty else NOT_ANSWERED)

    @property
    def marks(self) -> tuple[Callable[[], object], Callable[[], object]]:
        return (self.counter.start, self.counter.stop) if self.counter is not None else (_nothing, _nothing)

    def take(self, runs: int) -> list[int]:
        """The counts of the last ``runs`` invokes less the markers' overhead; [] when not counting."""
        if self.counter is None:
            return []
        counts = self.counter.take()
        if len(counts) != runs:
            self._give_up(f"the plugin counted {len(counts)} of {runs} invokes")
            return []
        return [max(0, count - self.overhead) for count in counts]

    def line(self, warmup: list[int], measured: list[int]) -> str | None:
        if not self.enabled:
            return None
        if not measured:
            return format_instructions_unavailable(self.label, self.reason)
        ordered = sorted(measured)
        counts = InstructionCounts(
            first=(warmup or measured)[0],
            min=ordered[0],
            median=ordered[(len(ordered) - 1) // 2],  # the lower median: a whole number of instructions
            count=len(measured),
            label=self.label,
            overhead=self.overhead,
        )
        return format_instructions(counts)

    def _give_up(self, reason: str) -> None:
        self.close()
        self.reason = reason

    def close(self) -> None:
        if self.counter is not None:
            self.counter.close()
            self.counter = None


class _KernelCounting:
    """``--enable_op_profiling`` under the QEMU plugin: per-block counts over the measured runs.

    Created before the model is loaded, so that every block of LiteRT's library is counted per
    block; ``reset`` after the warm-up, ``lines`` after the measured runs. Off, it does nothing.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.counter: BlockCounter | None = None
        self.reason = "nothing was counted"
        self.label = ""
        if not enabled:
            return
        from device_agent.qemu.counter import emulation_label, open_block_counter

        self.label = emulation_label()
        opened = open_block_counter()
        if isinstance(opened, str):
            self.reason = opened
            return
        self.counter = opened
        opened.on()

    def reset(self) -> None:
        if self.counter is not None:
            self.counter.reset()

    def take(self) -> dict[int, int] | None:
        if self.counter is None:
            return None
        counts = self.counter.dump()
        if counts is None:
            self.reason = (
                "the QEMU plugin did not answer the per-block markers: prepare the userland again "
                "(python -m device_agent qemu prepare) to rebuild it"
            )
        return counts

    def lines(self, counts: dict[int, int] | None, runs: int) -> list[str]:
        if not self.enabled:
            return []
        if not counts or runs < 1:
            return [format_kernels_unavailable(self.label, self.reason)]
        from device_agent.qemu.kernels import attribute, read_maps

        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            totals = attribute(counts, read_maps(fh.read()))
        total = sum(totals.values())
        ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        if len(ordered) > KERNEL_ROWS:
            kept, rest = ordered[: KERNEL_ROWS - 1], ordered[KERNEL_ROWS - 1 :]
            other = ("(other)", f"(other {len(rest)} functions)")
            ordered = [*kept, (other, sum(insns for _, insns in rest))]
        rows = tuple(
            KernelRow(library=lib, function=func, instructions=insns / runs, percent=100.0 * insns / total)
            for (lib, func), insns in ordered
        )
        return format_kernels(KernelProfile(label=self.label, runs=runs, total=total / runs, rows=rows))

    def close(self) -> None:
        if self.counter is not None:
            self.counter.close()
            self.counter = None


def _measure(flags: BenchFlags, log: _Log, samples_file: TextIO | None) -> None:
    start_mb = _max_rss_mb()
    kernels = _KernelCounting(flags.enable_op_profiling)
    try:
        _measure_loaded(flags, log, samples_file, start_mb, kernels)
    finally:
        kernels.close()


def _measure_loaded(
    flags: BenchFlags, log: _Log, samples_file: TextIO | None, start_mb: float | None, kernels: _KernelCounting
) -> None:
    started = time.perf_counter_ns()
    interpreter = _load(flags, log)
    init_us = (time.perf_counter_ns() - started) / 1000.0
    init_mb = _max_rss_mb()
    log.info(f"Initialized session in {format_number(init_us / 1000.0)}ms.")
    _random_inputs(interpreter)
    overhead_us = timer_overhead_us()
    counting = _Counting(flags.count_instructions, flags.max_secs)
    if counting.counter is not None and flags.num_threads > 1:
        log.warn(
            f"Instruction counts with --num_threads={flags.num_threads} include the worker threads' waiting "
            "and vary from run to run: use --num_threads=1 for exact counts"
        )
    try:
        invoke = interpreter.invoke
        log.info(format_running(flags.warmup_runs, flags.warmup_min_secs, flags.max_secs))
        warmup_samples = _run_loop(
            invoke, flags.warmup_runs, flags.warmup_min_secs, flags.max_secs, flags.run_delay, counting.marks
        )
        warmup_counts = counting.take(len(warmup_samples))
        warmup = summarize(warmup_samples)
        log.info(format_stats(warmup))
        log.info()
        log.info(format_running(flags.num_runs, flags.min_secs, flags.max_secs))
        kernels.reset()
        # At least one run: _validate refuses num_runs=0 with min_secs=0, and the loop's first
        # check passes even with max_secs=0.
        samples = _run_loop(invoke, flags.num_runs, flags.min_secs, flags.max_secs, flags.run_delay, counting.marks)
        block_counts = kernels.take()
        end_mb = _max_rss_mb()  # before summarizing, whose arrays are the runner's, not the model's
        counts = counting.take(len(samples))
    finally:
        counting.close()
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
    log.info(format_runner(f"lab device_agent (LiteRT {_litert_version()})"))


def _counting_requested() -> bool:
    from device_agent.qemu.counter import counting_requested

    return counting_requested()


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
    if any(arg in _HELP_ARGS for arg in argv):
        stream.write(_usage())
        return 0
    log.info("STARTING!")
    try:
        parsed = parse_flags(argv, count_default=_counting_requested())
        if parsed.duplicates:
            log.warn(f"Duplicate flags: {', '.join(parsed.duplicates)}")
        if parsed.unconsumed:
            log.warn(f"Unconsumed cmdline flags: {' '.join(parsed.unconsumed)}")
        _log_params(log, parsed)
        _benchmark(parsed, log)
    except BenchmarkFailed as exc:
        for line in exc.lines:
            log.error(line)
        log.error(FAILED)
        return 1
    return 0
