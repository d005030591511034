"""benchmark_model's text output: the records it holds, a writer and a parser.

The runner (``device_agent.bench``) writes with the ``format_*`` functions; the host parses every
device's output with ``parse`` — one parser for real benchmark_model binaries and for the emulated
device. A recent benchmark_model (TFLite 2.20) prints, on one stream::

    INFO: STARTING!
    INFO: Log parameter values verbosely: [0]
    INFO: Num threads: [4]
    INFO: Graph: [/data/local/tmp/m.tflite]
    INFO: Use xnnpack: [1]
    INFO: Loaded model /data/local/tmp/m.tflite
    INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
    INFO: Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate.
    INFO: The input model file size (MB): 67.3128
    INFO: Initialized session in 5.579ms.
    INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
    INFO: count=1 curr=1357602 p5=1357602 median=1357602 p95=1357602

    INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
    INFO: count=50 first=1249964 curr=1240143 min=1238588 max=1252566 avg=1.24027e+06 std=2565 p5=1238753 median=1239807 p95=1247415

    INFO: Inference timings in us: Init: 5579, First inference: 1357602, Warmup (avg): 1.3576e+06, Inference (avg): 1.24027e+06
    INFO: Note: as the benchmark tool itself affects memory footprint, ...
    INFO: Memory footprint delta from the start of the tool (MB): init=6.36328 overall=109.832

and a failed run ends with ``ERROR: …`` lines and ``Benchmarking failed.``::

    ERROR: Didn't find op for builtin opcode 'MUL' version '5'. ...
    ERROR: Registration failed.
    Failed to initialize the interpreter
    Benchmarking failed.

or, from a version whose own lines had no severity yet, with its cause unprefixed::

    XNNPACK delegate created.
    Failed to apply XNNPACK delegate.
    Benchmarking failed.

Older versions lack the ``INFO: `` prefix and the percentiles, print ``Average inference timings in
us: Warmup: …, Init: …, Inference: …`` (or ``no stats: …``) and ``Peak memory footprint (MB)``;
copied output may be indented, carry the prefixes of ``adb logcat`` or of Android Studio's Logcat
window, or hold several runs one after another. The device agent's runner adds lines of its
own: ``Timer overhead per invoke (us): …`` and ``Runner: …``, and under the lab's QEMU emulation (or
with ``--count_instructions=true``) one line of guest instructions per inference::

    INFO: Instructions per inference (emulated, qemu-user neoverse-n1): first=77011 min=75672 median=75672 count=50 overhead=1183

or, when they cannot be counted, the reason::

    INFO: Instructions per inference (emulated, qemu-user neoverse-n1): unavailable (the QEMU counting plugin did not load: …)

With ``--enable_op_profiling=true`` the runner says that LiteRT's Python API has no per-op
profiler, and under the QEMU plugin prints per-kernel instruction counts instead (per inference
over the measured runs, one row per function of the code that ran; tab-separated cells)::

    INFO: Op profiling unavailable: LiteRT's Python API has no op profiler; …
    INFO: Instructions per kernel (emulated, qemu-user neoverse-n1): runs=10 total=1.23457e+06
    INFO: 	[instructions]	[%]	[library]	[function]
    INFO: 	1.02e+06	82.650%	libpywrap_litert_common.so	xnn_f32_spmm_minmax_ukernel_32x1__neonfma_pipelined
    INFO: 57 functions counted

(or ``Instructions per kernel (…): unavailable (…)``). benchmark_model's own op-profiling tables
are read by ``device_agent.op_profile`` (the host fills ``BenchmarkResult.op_profile``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from device_agent.errors import OutputParseError
from device_agent.op_profile import OpProfile

__all__ = [
    "RunStats",
    "InstructionCounts",
    "KernelRow",
    "KernelProfile",
    "BenchmarkResult",
    "parse",
    "failure_cause",
    "format_number",
    "format_stats",
    "format_running",
    "format_inference_timings",
    "format_memory_delta",
    "format_periodic_peak",
    "format_timer_overhead",
    "format_runner",
    "format_instructions",
    "format_instructions_unavailable",
    "format_op_profiling_unavailable",
    "format_kernels",
    "format_kernels_unavailable",
    "MEMORY_NOTE",
    "FAILED",
]


@dataclass(frozen=True)
class RunStats:
    """One ``count=… first=… curr=… min=… max=… avg=… std=… [p5=… median=… p95=…]`` line, in µs.

    The short form ``count=N curr=X`` (one run) or ``count=N curr=X(all same)`` means every sample
    equals curr, so first/min/max/avg equal curr and std is 0; the percentiles are filled only when
    the line prints them.
    """

    count: int
    curr_us: float
    first_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None
    p5_us: float | None = None
    median_us: float | None = None
    p95_us: float | None = None


@dataclass(frozen=True)
class InstructionCounts:
    """Guest instructions per inference, counted by the lab's QEMU plugin: exact and repeatable.

    ``first`` is the first inference (the first warm-up run, as benchmark_model's "First
    inference"); ``min`` and ``median`` (the lower median, a whole number) are over the ``count``
    measured runs. ``overhead`` is what each counted region spent outside the inference (the
    runner's markers), already subtracted. ``label`` says where they come from, e.g. ``emulated,
    qemu-user neoverse-n1``: an emulated core's instruction count, never a phone's time.
    """

    first: int
    min: int
    median: int
    count: int
    label: str
    overhead: int | None = None


@dataclass(frozen=True)
class KernelRow:
    """One function's guest instructions per inference (emulated): ``library`` is its file's name."""

    library: str
    function: str
    instructions: float  # per inference, averaged over the measured runs
    percent: float  # of all instructions counted


@dataclass(frozen=True)
class KernelProfile:
    """Per-kernel instruction counts under the lab's QEMU plugin, most instructions first.

    ``total`` is per inference over every function (rows may be cut to the largest; see
    ``format_kernels``). ``truncated``: the table ended before its ``N functions counted`` line.
    """

    label: str
    runs: int
    total: float
    rows: tuple[KernelRow, ...] = ()
    truncated: bool = False


@dataclass(frozen=True)
class BenchmarkResult:
    """Everything one benchmark_model run printed that the lab keeps, in µs and MB.

    ``runs`` is None only for output that gives the measured average without its ``count=`` line
    (the TFLite README's op-profiling example); every successful benchmark_model prints it.
    """

    runs: RunStats | None  # the measured runs
    warmup: RunStats | None = None
    init_us: float | None = None
    first_inference_us: float | None = None
    warmup_avg_us: float | None = None
    inference_avg_us: float | None = None
    peak_memory_init_mb: float | None = None  # "Peak memory footprint (MB): init=… overall=…" (2020)
    peak_memory_overall_mb: float | None = None
    memory_delta_init_mb: float | None = None  # "Memory footprint delta from the start of the tool (MB)"
    memory_delta_overall_mb: float | None = None
    periodic_peak_memory_mb: float | None = None  # "Overall peak memory footprint (MB) via periodic monitoring"
    num_threads: int | None = None
    use_xnnpack: bool | None = None
    xnnpack_applied: bool | None = None  # the XNNPACK delegate was created/applied
    model_size_mb: float | None = None
    timer_overhead_us: float | None = None  # device agent runner only: clock + call overhead per invoke
    runner: str | None = None  # device agent runner only: its name and LiteRT version
    instructions: InstructionCounts | None = None  # device agent runner under the lab's QEMU plugin only
    instructions_unavailable: str | None = None  # why the runner, asked to count, could not
    kernels: KernelProfile | None = None  # device agent runner under QEMU with --enable_op_profiling
    kernels_unavailable: str | None = None  # why the runner, asked to profile, counted no kernels
    op_profiling_unavailable: str | None = None  # the runner's "Op profiling unavailable: …" reason
    op_profile: OpProfile | None = None  # benchmark_model's op tables; filled by the host (find_op_profile)
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Writer: one function per line, without the "INFO: " prefix (the runner adds it).

MEMORY_NOTE = (
    "Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE "
    "to the actual memory footprint of the model at runtime. Take the information at your discretion."
)
FAILED = "Benchmarking failed."


def format_number(value: float) -> str:
    """A number as C++'s ``std::ostream << double`` prints it: 6 significant digits (``1.24027e+06``)."""
    return f"{value:g}"


def format_stats(stats: RunStats) -> str:
    """The ``count=…`` line as tflite's ``Stat::OutputToStream`` (2.20, with percentiles) writes it."""
    n = format_number
    if stats.count == 0:
        return "count=0"
    all_same = stats.count == 1 or stats.min_us == stats.max_us
    if all_same:
        line = f"count={stats.count} curr={n(stats.curr_us)}" + ("(all same)" if stats.count > 1 else "")
    else:
        line = (
            f"count={stats.count} first={n(_req(stats.first_us))} curr={n(stats.curr_us)} "
            f"min={n(_req(stats.min_us))} max={n(_req(stats.max_us))} avg={n(_req(stats.avg_us))} "
            f"std={n(_req(stats.std_us))}"
        )
    if stats.p5_us is not None and stats.median_us is not None and stats.p95_us is not None:
        line += f" p5={n(stats.p5_us)} median={n(stats.median_us)} p95={n(stats.p95_us)}"
    return line


def _req(value: float | None) -> float:
    if value is None:
        raise ValueError("a multi-sample RunStats needs first, min, max, avg and std")
    return value


def format_running(min_runs: int, min_secs: float, max_secs: float) -> str:
    n = format_number
    return (
        f"Running benchmark for at least {min_runs} iterations and at least {n(min_secs)} seconds "
        f"but terminate if exceeding {n(max_secs)} seconds."
    )


def format_inference_timings(init_us: float, first_us: float, warmup_avg_us: float, inference_avg_us: float) -> str:
    n = format_number
    return (
        f"Inference timings in us: Init: {n(init_us)}, First inference: {n(first_us)}, "
        f"Warmup (avg): {n(warmup_avg_us)}, Inference (avg): {n(inference_avg_us)}"
    )


def format_memory_delta(init_mb: float, overall_mb: float) -> str:
    n = format_number
    return f"Memory footprint delta from the start of the tool (MB): init={n(init_mb)} overall={n(overall_mb)}"


def format_periodic_peak(peak_mb: float) -> str:
    return f"Overall peak memory footprint (MB) via periodic monitoring: {format_number(peak_mb)}"


def format_timer_overhead(overhead_us: float) -> str:
    return f"Timer overhead per invoke (us): {format_number(overhead_us)}"


def format_runner(name: str) -> str:
    return f"Runner: {name}"


def format_instructions(counts: InstructionCounts) -> str:
    line = (
        f"Instructions per inference ({counts.label}): first={counts.first} min={counts.min} "
        f"median={counts.median} count={counts.count}"
    )
    return line if counts.overhead is None else f"{line} overhead={counts.overhead}"


def format_instructions_unavailable(label: str, reason: str) -> str:
    return f"Instructions per inference ({label}): unavailable ({' '.join(reason.split())})"


OP_PROFILING_UNAVAILABLE = "Op profiling unavailable: "
_KERNEL_COLUMNS = ("instructions", "%", "library", "function")


def format_op_profiling_unavailable(reason: str) -> str:
    return OP_PROFILING_UNAVAILABLE + " ".join(reason.split())


def _count(value: float) -> str:
    """Instructions per inference: whole, or with one decimal when the runs differed (never 1.2e+06)."""
    return f"{value:.1f}".removesuffix(".0")


def format_kernels(profile: KernelProfile) -> list[str]:
    """The per-kernel table: a title, a header, one tab-separated row per function, an end line."""
    n = _count
    lines = [
        f"Instructions per kernel ({profile.label}): runs={profile.runs} total={n(profile.total)}",
        "".join(f"\t[{c}]" for c in _KERNEL_COLUMNS),
    ]
    lines += [f"\t{n(r.instructions)}\t{r.percent:.3f}%\t{r.library}\t{r.function}" for r in profile.rows]
    lines.append(f"{len(profile.rows)} functions counted")
    return lines


def format_kernels_unavailable(label: str, reason: str) -> str:
    return f"Instructions per kernel ({label}): unavailable ({' '.join(reason.split())})"


# ---------------------------------------------------------------------------------------------
# Parser

# C++ prints a NaN average (no runs) as "nan" or "-nan"; it is read as unknown (None).
_NUM = r"(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|-?nan)"

# Logcat prefixes, then the tool's own severity prefix. From `adb logcat`: "threadtime"
# (`11-25 15:02:33.123  1234  1234 I tflite  : …`, with -v year `2024-11-25 …`), "brief"
# (`I/tflite  ( 1234): …`), "tag" (`I/tflite: …`) and "time" (`11-25 15:02:33.123 I/tflite( 1234): …`).
# Copied from Android Studio's Logcat window, before 2022 (`2019-09-15 11:38:39.830 1234-1234/? I/tflite: …`)
# and since (`2024-10-20 16:00:34.378 1234-1234 tflite  com.example.app  I  …`: date, time, pid-tid,
# tag, package name or "pid-1234", level, padded into columns; seen in tensorflow/tensorflow#78396).
# Android Studio writes the assert level as A where adb writes F.
_LOGCAT_TIME = r"(?:\d{4}-)?\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+"
_LOGCAT = re.compile(
    rf"^(?:{_LOGCAT_TIME}\s+\d+\s+\d+\s+(?P<threadtime>[VDIWEFA])\s+[^:]*?:"
    rf"|(?:{_LOGCAT_TIME}\s+)?(?P<brief>[VDIWEFA])/[^:(]*(?:\(\s*\d+\))?:"
    rf"|{_LOGCAT_TIME}\s+\d+-\d+/\S*\s+(?P<studio_old>[VDIWEFA])/[^:]*:"
    rf"|{_LOGCAT_TIME}\s+\d+-\d+\s+.+?\s+\S+\s+(?P<studio>[VDIWEFA]))(?:\s|$)"
)
_SEVERITY = re.compile(r"^(?P<severity>INFO|WARN|WARNING|ERROR|VERBOSE|DEBUG):\s?")
_LOGCAT_SEVERITY = {"W": "WARN", "E": "ERROR", "F": "ERROR", "A": "ERROR"}

_STATS = re.compile(
    rf"^count=(?P<count>\d+)(?:"  # "count=0" alone when nothing ran
    rf"(?: first=(?P<first>{_NUM}))?"
    rf" curr=(?P<curr>{_NUM})(?P<same>\s?\(all same\))?"
    rf"(?: min=(?P<min>{_NUM}) max=(?P<max>{_NUM}) avg=(?P<avg>{_NUM}) std=(?P<std>{_NUM}))?"
    rf"(?: p5=(?P<p5>{_NUM}) median=(?P<median>{_NUM}) p95=(?P<p95>{_NUM}))?)?\s*$"
)
_STARTING = re.compile(r"^STARTING!")
# "… for at least N iterations and at least S seconds but terminate if exceeding M seconds." (TF 1.12:
# "Running benchmark for N iterations"; versions of 2019 end after "at least S seconds").
_RUNNING = re.compile(
    r"^Running benchmark for (?:at least )?(?P<runs>\d+) iterations"
    rf"(?: and at least {_NUM} seconds but terminate if exceeding (?P<max_secs>{_NUM}) seconds)?"
)
_TIMINGS = re.compile(
    rf"^Inference timings in us: Init: (?P<init>{_NUM}), First inference: (?P<first>{_NUM}), "
    rf"Warmup \(avg\): (?P<warmup>{_NUM}), Inference \(avg\): (?P<inference>{_NUM})\s*$"
)
_OLD_TIMINGS = re.compile(
    rf"^Average inference timings in us: Warmup: (?P<warmup>{_NUM}), Init: (?P<init>{_NUM}), "
    rf"(?:no stats|Inference): (?P<inference>{_NUM})\s*$"
)
_PEAK_MEMORY = re.compile(rf"^Peak memory footprint \(MB\): init=(?P<init>{_NUM}) overall=(?P<overall>{_NUM})\s*$")
_MEMORY_DELTA = re.compile(
    rf"^Memory footprint delta from the start of the tool \(MB\): init=(?P<init>{_NUM}) overall=(?P<overall>{_NUM})\s*$"
)
_PERIODIC_PEAK = re.compile(rf"^Overall peak memory footprint \(MB\) via periodic monitoring: (?P<peak>{_NUM})\s*$")
_NUM_THREADS = re.compile(r"^Num threads: \[(?P<n>-?\d+)\]")
_CPU_THREADS = re.compile(r"^#threads used for CPU inference: \[(?P<n>-?\d+)\]")
_USE_XNNPACK = re.compile(r"^Use xnnpack: \[(?P<v>1|0|true|false)\]")
_MODEL_SIZE = re.compile(rf"^The input model file size \(MB\): (?P<mb>{_NUM})\s*$")
_XNNPACK_APPLIED = re.compile(
    r"^(?:Created TensorFlow Lite XNNPACK delegate for CPU\.|XNNPACK delegate created\."
    r"|Explicitly applied XNNPACK delegate, and the model graph will be (?:completely|partially) executed)"
)
_XNNPACK_NOT_APPLIED = re.compile(r"^Though XNNPACK delegate is explicitly applied, the model graph will not be executed")
_TIMER_OVERHEAD = re.compile(rf"^Timer overhead per invoke \(us\): (?P<us>{_NUM})\s*$")
_RUNNER = re.compile(r"^Runner: (?P<name>\S.*?)\s*$")
_INSTRUCTIONS_PREFIX = "Instructions per inference ("
_INSTRUCTIONS = re.compile(
    r"^Instructions per inference \((?P<label>[^()]+)\): (?:"
    r"first=(?P<first>\d+) min=(?P<min>\d+) median=(?P<median>\d+) count=(?P<count>\d+)(?: overhead=(?P<overhead>\d+))?"
    r"|unavailable \((?P<reason>.*)\))\s*$"
)
_KERNELS_PREFIX = "Instructions per kernel ("
_KERNELS = re.compile(
    rf"^Instructions per kernel \((?P<label>[^()]+)\): (?:runs=(?P<runs>\d+) total=(?P<total>{_NUM})"
    r"|unavailable \((?P<reason>.*)\))\s*$"
)
_KERNELS_END = re.compile(r"^(?P<n>\d+) functions counted\s*$")
_DUPLICATE_FLAGS = re.compile(r"^Duplicate flags: ")
_NUM_RUNS = re.compile(r"^(?:Min num runs|Num runs): \[(?P<n>\d+)\]")
# What benchmark_model prints only before it measures: its parameters, the model it loaded, its init.
_BEFORE_RUNS = re.compile(r"^(?:Loaded model |Initialized session in |[^:\[\]\t]+: \[[^\t]*\]$)")
_FAILED = re.compile(r"^Benchmarking failed\.")
# A failure's cause printed without an "ERROR: " prefix: benchmark_model's own messages before its
# lines had severities (`Failed to apply XNNPACK delegate.`), and the interpreter's under TF 1.x
# (`Node number 3 (CONV_2D) failed to prepare.`, `Didn't find op for builtin opcode …`).
_CAUSE = re.compile(
    r"^(?:Failed to |Didn't find op for |Encountered unresolved custom op)|\bfailed to (?:prepare|invoke)\b"
)
# The count= line's avg and the timings line's "Inference (avg)" are one number printed twice with 6
# significant digits, so they differ by at most 1e-5 of it; anything beyond 1e-4 is another number.
_SAME_AVERAGE = 1e-4

_QUOTE_MAX = 300


def _split(line: str) -> tuple[str | None, str]:
    """A raw line → (severity or None, message without indentation and prefixes)."""
    text = line.strip()
    severity = None
    logcat = _LOGCAT.match(text)
    if logcat:
        level = next(group for group in logcat.groups() if group)  # one level group per logcat format
        severity = _LOGCAT_SEVERITY.get(level)
        text = text[logcat.end() :].strip()
    prefix = _SEVERITY.match(text)
    if prefix:
        severity = "WARN" if prefix.group("severity") == "WARNING" else prefix.group("severity")
        text = text[prefix.end() :].strip()
    return severity, text


def _f(text: str | None) -> float | None:
    """A printed number; None when absent or NaN."""
    if text is None:
        return None
    value = float(text)
    return None if math.isnan(value) else value


def _stats(match: re.Match[str]) -> RunStats:
    g = match.group
    count, curr = int(g("count")), float(g("curr"))
    pct = {k: _f(g(k)) for k in ("p5", "median", "p95")}
    if g("min") is None:
        # Short form: one run or "(all same)" — every sample equals curr.
        return RunStats(
            count=count, curr_us=curr, first_us=curr, min_us=curr, max_us=curr, avg_us=curr, std_us=0.0,
            p5_us=pct["p5"], median_us=pct["median"], p95_us=pct["p95"],
        )  # fmt: skip
    return RunStats(
        count=count,
        curr_us=curr,
        first_us=_f(g("first")),
        min_us=_f(g("min")),
        max_us=_f(g("max")),
        avg_us=_f(g("avg")),
        std_us=_f(g("std")),
        p5_us=pct["p5"],
        median_us=pct["median"],
        p95_us=pct["p95"],
    )


def _quote(text: str) -> str:
    return text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 1] + "…"


# Lines whose named groups map straight onto BenchmarkResult's numeric fields.
_NUMERIC_LINES: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = (
    (_TIMINGS, {"init": "init_us", "first": "first_inference_us", "warmup": "warmup_avg_us", "inference": "inference_avg_us"}),
    (_OLD_TIMINGS, {"init": "init_us", "warmup": "warmup_avg_us", "inference": "inference_avg_us"}),
    (_MEMORY_DELTA, {"init": "memory_delta_init_mb", "overall": "memory_delta_overall_mb"}),
    (_PEAK_MEMORY, {"init": "peak_memory_init_mb", "overall": "peak_memory_overall_mb"}),
    (_PERIODIC_PEAK, {"peak": "periodic_peak_memory_mb"}),
    (_MODEL_SIZE, {"mb": "model_size_mb"}),
    (_TIMER_OVERHEAD, {"us": "timer_overhead_us"}),
)
_TIMINGS_LINES = (_TIMINGS, _OLD_TIMINGS)  # a run's summary: only memory, profiles and runner lines follow it


# A count= line: (number of "Running benchmark" lines before it, stats or None for "count=0", the raw line).
_StatsLine = tuple[int, RunStats | None, str]


@dataclass(frozen=True)
class _Loop:
    """A ``Running benchmark for at least N iterations … terminate if exceeding M seconds.`` line."""

    runs: int  # N: the runs asked for
    max_secs: float | None  # M; None when the line has no "terminate" clause (older versions)


@dataclass
class _Scan:
    """What one pass over one run's lines found, before deciding what the run was."""

    fields: dict[str, Any] = field(default_factory=dict)
    stats: list[_StatsLine] = field(default_factory=list)
    loops: list[_Loop] = field(default_factory=list)  # the warm-up's, then the measured runs'
    started: bool = False  # printed STARTING!
    num_runs: int | None = None  # "Num runs: [N]" (TF 1.x) or "Min num runs: [N]"
    num_threads: int | None = None
    cpu_threads: int | None = None
    xnnpack_applied: bool | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # ERROR: lines (or logcat E/F/A)
    causes: list[str] = field(default_factory=list)  # failure causes without a severity prefix
    failure: str | None = None  # "Benchmarking failed."
    timings: str | None = None  # the "Inference timings in us: …" (or older "Average …") line
    last: str = ""
    kernels: KernelProfile | None = None
    kernel_columns: dict[str, int] | None = None  # while inside the per-kernel table: column → cell index
    kernel_rows: list[KernelRow] = field(default_factory=list)

    @property
    def _ended(self) -> bool:
        """benchmark_model printed the run's summary, or declared it failed: it measures no more."""
        return self.timings is not None or self.failure is not None

    def starts_another_run(self, line: str) -> bool:
        """Whether benchmark_model printed ``line`` for a further run: it cannot belong to this one.

        Stray text before a run's ``STARTING!`` (a shell's or the linker's) stays with that run.
        """
        if _STARTING.match(line):
            return self.started or bool(self.loops or self.stats or self.fields) or self._ended
        if _RUNNING.match(line):
            return self._ended or len(self.loops) == 2
        if line.startswith("count="):
            return self._ended or self._stats_complete()
        if any(pattern.match(line) for pattern in _TIMINGS_LINES):
            return self._ended
        return self._ended and _BEFORE_RUNS.match(line) is not None

    def _stats_complete(self) -> bool:
        """A further count= line is one too many: one follows each Running line, or two at most without."""
        if self.loops:
            return bool(self.stats) and self.stats[-1][0] == len(self.loops)
        return len(self.stats) == 2

    def line(self, raw: str, severity: str | None, line: str) -> None:
        """Take one line: ``raw`` as printed, ``severity`` and ``line`` as ``_split`` reads it."""
        if not line:
            return
        self.last = raw.strip()
        if self.kernels is not None and self._kernel_line(line):
            return
        if line.startswith("count="):
            self._stats_line(line)
            return
        if m := _RUNNING.match(line):
            self.loops.append(_Loop(runs=int(m["runs"]), max_secs=_f(m["max_secs"])))
            return
        for pattern, names in _NUMERIC_LINES:
            if m := pattern.match(line):
                self.fields.update({name: _f(m[group]) for group, name in names.items()})
                if pattern in _TIMINGS_LINES:
                    self.timings = self.last
                return
        if _STARTING.match(line):
            self.started = True
        elif m := _NUM_RUNS.match(line):
            self.num_runs = int(m["n"])
        elif m := _NUM_THREADS.match(line):
            self.num_threads = int(m["n"])
        elif m := _CPU_THREADS.match(line):
            self.cpu_threads = int(m["n"])
        elif m := _USE_XNNPACK.match(line):
            self.fields["use_xnnpack"] = m["v"] in ("1", "true")
        elif _XNNPACK_NOT_APPLIED.match(line):
            self.xnnpack_applied = False
        elif _XNNPACK_APPLIED.match(line):
            self.xnnpack_applied = self.xnnpack_applied is not False
        elif m := _RUNNER.match(line):
            self.fields["runner"] = m["name"]
        elif line.startswith(_INSTRUCTIONS_PREFIX):
            self._instructions(line)
        elif line.startswith(_KERNELS_PREFIX):
            self._kernels_title(line)
        elif line.startswith(OP_PROFILING_UNAVAILABLE):
            self.fields["op_profiling_unavailable"] = line[len(OP_PROFILING_UNAVAILABLE) :]
        elif _FAILED.match(line):
            self.failure = self.failure or self.last
        elif severity == "ERROR":
            self.errors.append(self.last)
        elif severity is None and _CAUSE.search(line):
            self.causes.append(self.last)
        elif severity == "WARN" or _DUPLICATE_FLAGS.match(line):
            self.warnings.append(line)

    def _stats_line(self, line: str) -> None:
        match = _STATS.match(line)
        ran = match is not None and int(match["count"]) > 0
        if match is None or ran != (match["curr"] is not None) or (ran and _f(match["curr"]) is None):
            raise OutputParseError("benchmark_model output has a malformed count= line", _quote(self.last))
        self.stats.append((len(self.loops), _stats(match) if ran else None, self.last))

    def _instructions(self, line: str) -> None:
        m = _INSTRUCTIONS.match(line)
        if m is None:
            raise OutputParseError("benchmark_model output has a malformed instructions line", _quote(self.last))
        if m["reason"] is not None:
            self.fields["instructions_unavailable"] = m["reason"]
            return
        counts = InstructionCounts(
            first=int(m["first"]), min=int(m["min"]), median=int(m["median"]), count=int(m["count"]),
            label=m["label"], overhead=int(m["overhead"]) if m["overhead"] is not None else None,
        )  # fmt: skip
        if counts.count == 0 or counts.min > counts.median:
            raise OutputParseError("benchmark_model output has inconsistent instruction counts", _quote(self.last))
        self.fields["instructions"] = counts

    def _kernels_title(self, line: str) -> None:
        m = _KERNELS.match(line)
        if m is None:
            raise OutputParseError("benchmark_model output has a malformed per-kernel title", _quote(self.last))
        if m["reason"] is not None:
            self.fields["kernels_unavailable"] = m["reason"]
            return
        self.kernels = KernelProfile(label=m["label"], runs=int(m["runs"]), total=_f(m["total"]) or 0.0, truncated=True)
        self.kernel_columns = None
        self.kernel_rows = []

    def _kernel_line(self, line: str) -> bool:
        """A line of the per-kernel table (True), or the first line after it (False: the table is cut)."""
        cells = [c.strip() for c in line.split("\t")]
        if self.kernel_columns is None:
            names = [c.strip("[]").lower() for c in cells]
            missing = [c for c in _KERNEL_COLUMNS if c not in names]
            if missing:
                raise OutputParseError(
                    f"the per-kernel table's header lacks the column {missing[0]!r}", _quote(self.last)
                )
            self.kernel_columns = {c: names.index(c) for c in _KERNEL_COLUMNS}
            return True
        if m := _KERNELS_END.match(line):
            self._end_kernels(truncated=int(m["n"]) != len(self.kernel_rows))
            return True
        col = self.kernel_columns
        if len(cells) < len(col):
            self._end_kernels(truncated=True)
            return False
        try:
            row = KernelRow(
                library=cells[col["library"]], function=cells[col["function"]],
                instructions=float(cells[col["instructions"]]), percent=float(cells[col["%"]].rstrip("%")),
            )  # fmt: skip
        except ValueError:
            raise OutputParseError("the per-kernel table has a malformed row", _quote(self.last)) from None
        self.kernel_rows.append(row)
        return True

    def _end_kernels(self, truncated: bool) -> None:
        if self.kernels is None:
            return
        self.fields["kernels"] = replace(self.kernels, rows=tuple(self.kernel_rows), truncated=truncated)
        if truncated:
            self.warnings.append("the per-kernel instruction table is cut short")
        self.kernels = None

    def end(self) -> None:
        """The run's lines are over: a per-kernel table still open was cut short."""
        self._end_kernels(truncated=True)

    def incomplete(self) -> OutputParseError | None:
        """Why the run has no measured result — it failed, measured nothing, was cut off, is empty —
        or None when it has one."""
        measured = self._stats_lines()[1]
        has_result = measured is not None or self.fields.get("inference_avg_us") is not None
        if self.failure is not None or (not has_result and (self.errors or self.causes)):
            # The first ERROR: line, else the first unprefixed cause, else "Benchmarking failed." itself.
            reason = [*self.errors, *self.causes, self.failure or ""][0]
            return OutputParseError("benchmark_model failed", _quote(reason))
        if measured is not None and measured[1] is None:
            return OutputParseError("benchmark_model measured no runs", _quote(measured[2]))
        if has_result:
            return None
        if not self.last:
            return OutputParseError("benchmark_model output is empty; the tool printed nothing")
        return OutputParseError("benchmark_model output has no measured-run stats line; last line", _quote(self.last))

    def result(self) -> BenchmarkResult:
        """What the run measured; raises OutputParseError as ``parse`` says."""
        if (why := self.incomplete()) is not None:
            raise why
        warmup, measured = self._stats_lines()
        warnings = [*self.warnings, *self.errors, *self.causes]
        runs = measured[1] if measured is not None else None
        if runs is not None and measured is not None:
            self._check_average(runs, measured[2])
            warnings += self._fewer_runs(runs)
        applied = self.xnnpack_applied
        if applied is None and self.fields.get("use_xnnpack") is False:
            applied = False  # told not to use XNNPACK, and no delegate line says it did
        return BenchmarkResult(
            runs=runs,
            warmup=warmup[1] if warmup else None,
            num_threads=self.num_threads if self.num_threads is not None else self.cpu_threads,
            xnnpack_applied=applied,
            warnings=tuple(warnings),
            **self.fields,
        )

    def _stats_lines(self) -> tuple[_StatsLine | None, _StatsLine | None]:
        """(warm-up, measured runs): the count= lines after the first and the second Running line;
        without Running lines (an excerpt), the first of two and the last."""
        if self.loops:
            after = {stats[0]: stats for stats in self.stats}
            return after.get(1), after.get(2)
        return (self.stats[0] if len(self.stats) == 2 else None), (self.stats[-1] if self.stats else None)

    def _check_average(self, runs: RunStats, line: str) -> None:
        """The count= line and the timings line must give one average (both print the same number)."""
        inference = self.fields.get("inference_avg_us")
        if self.timings is None or inference is None or runs.avg_us is None:
            return
        if not math.isclose(runs.avg_us, inference, rel_tol=_SAME_AVERAGE):
            raise OutputParseError(
                "benchmark_model output's measured-run average disagrees with its inference timings",
                f"{_quote(line)}\n{_quote(self.timings)}",
            )

    def _fewer_runs(self, runs: RunStats) -> list[str]:
        """A warning when benchmark_model measured fewer runs than asked: it stops at its max time."""
        loop = self.loops[-1] if self.loops else None
        asked = loop.runs if loop is not None else self.num_runs
        if asked is None or runs.count >= asked:
            return []
        limit = f", {format_number(loop.max_secs)} seconds" if loop is not None and loop.max_secs is not None else ""
        why = f"benchmark_model stops at its max time{limit}"
        return [f"measured {runs.count} runs, fewer than the {asked} asked for ({why})"]


def _runs(text: str) -> list[_Scan]:
    """``text``'s lines, split into benchmark_model runs and scanned one run at a time."""
    scans = [_Scan()]
    for raw in text.splitlines():
        severity, line = _split(raw)
        if line and scans[-1].starts_another_run(line):
            scans[-1].end()
            scans.append(_Scan())
        scans[-1].line(raw, severity, line)
    scans[-1].end()
    return scans


def _first_complete(scans: list[_Scan]) -> BenchmarkResult:
    """The first run with a measured result, and a warning that names the runs; runs before it
    failed or were cut off (the warning says why). None has a result: the first one's error."""
    left_out = []
    for number, scan in enumerate(scans, 1):
        why = scan.incomplete()
        if why is not None:
            left_out.append(why)
            continue
        result = scan.result()  # a run with a result that contradicts itself raises: that text is no run
        note = f"{len(scans)} runs in the output; the first is used"
        if left_out:
            reasons = "; ".join(f"run {i}: {exc}" for i, exc in enumerate(left_out, 1))
            note = f"{len(scans)} runs in the output; run {number}, the first complete one, is used ({reasons})"
        return replace(result, warnings=(note, *result.warnings))
    raise left_out[0]


def failure_cause(text: str) -> str | None:
    """The line that says why a run failed: its first ``ERROR:`` line, else its first unprefixed
    cause (``Failed to apply XNNPACK delegate.``), else None. For outputs of runs that exited non-zero."""
    for scan in _runs(text):
        if scan.errors or scan.causes:
            return _split([*scan.errors, *scan.causes][0])[1]
    return None


def parse(text: str) -> BenchmarkResult:
    """Read one benchmark_model run's output (any version since TF 1.12, or the device agent's runner).

    The warm-up stats are the ``count=`` line after the first ``Running benchmark …`` line, the
    measured runs the ``count=`` line after the second (without Running lines, as in an excerpt:
    the first and the last of at most two ``count=`` lines). The measured average must agree with
    the ``Inference (avg)`` (or older ``Inference:``/``no stats:``) figure of the timings line.
    Op-profiling sections are skipped (their ``Timings (microseconds): count=…`` lines are not run
    stats). ``ERROR:`` lines and unprefixed failure causes of a run that succeeded, ``WARN:``
    lines, ``Duplicate flags`` and a measured count below the runs asked for (benchmark_model
    stops at its max time) go to ``warnings``. ``xnnpack_applied`` is read from the delegate's own
    lines; with none, it is False if ``Use xnnpack: [0]`` was printed and unknown (None) otherwise.

    Text holding several runs (outputs pasted one after another) is split where a run begins:
    at ``STARTING!``, at a third ``Running benchmark`` line or a ``count=`` line beyond its one,
    and at a run's own lines (Running, ``count=``, timings, parameters, ``Loaded model``) after
    another run's timings line or failure. Each run is read on its own, so a result never mixes
    two runs: the first complete one is used, with the warning ``N runs in the output; the first
    is used`` (or which run, and why those before it — failed, cut off — were left out).

    Raises:
        OutputParseError: the run failed (quotes its first ``ERROR:`` line, else its first failure
            cause without a prefix, such as ``Failed to apply XNNPACK delegate.`` or ``Node number
            3 (CONV_2D) failed to prepare.``, else ``Benchmarking failed.``), a ``count=`` line is
            malformed (quotes it; in any run), the measured average contradicts the timings line
            (quotes both), or there is no measured result — empty output, garbage, a run cut off
            before its measured runs (quotes the last line). With several runs and none complete:
            the first run's error.
    """
    scans = _runs(text)
    if len(scans) == 1:
        return scans[0].result()
    return _first_complete(scans)
