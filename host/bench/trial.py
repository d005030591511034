"""One trial: state before, benchmark_model with a deadline, parse, raw samples, state after.

Every outcome becomes a Trial — a measurement, or a failure kept as data with its reason and the
raw output: a device that disappears, a binary that crashes, output that cannot be parsed, a run
past its timeout, a model the runtime rejects.

A phone's trial may run throttled: a thermal zone at or past its trip point, or a core's cap
(``scaling_max_freq``) below its maximum — or, in fixed-performance mode, where caps sit below the
maximum by design, a cap that fell during the trial. The trial's ``state_after`` says so
(``throttled``, ``throttle_reason``); with ``--cores`` the runner runs under ``taskset`` and
``state_before.cpus`` names the CPUs.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from device_agent.errors import OutputParseError
from device_agent.op_profile import find_op_profile
from device_agent.output import BenchmarkResult, failure_cause, parse

from host.bench.plan import PlannedTrial
from host.devices.errors import DeviceGoneError, OutputTooLargeError, ShellTimeoutError
from host.devices.push import REMOTE_DIR, free_bytes, parse_size
from host.devices.shell import DeviceShell, ShellResult, command_line
from host.devices.state import StateReader
from host.devices.tools import version_line
from host.errors import DeviceError, UsageError
from host.records import DeviceFacts, DeviceState, ModelFile, ToolInfo, Trial, TrialParams

__all__ = [
    "DeviceSession",
    "benchmark_command",
    "builtin_tool",
    "failure_reason",
    "max_output_bytes",
    "MAX_OUTPUT_BYTES",
    "read_op_profile",
    "run_trial",
    "ops_requested",
    "SAMPLES_FILE",
    "OUTPUT_FILE",
    "OP_PROFILING_FLAG",
    "CorePin",
    "throttling",
]

OP_PROFILING_FLAG = "--enable_op_profiling=true"
"""benchmark_model's flag for per-op profiles (``lab bench --ops``)."""

XNNPACK_FP16_FLAG = "--xnnpack_force_fp16=true"
"""benchmark_model's flag that makes XNNPACK compute float operators in float16 (``--xnnpack-fp16``);
by default it unpacks fp16 weights and computes in float32."""

_STATE_TIMEOUT_S = 30.0

MAX_OUTPUT_BYTES = 16 * 2**20
"""The most of one trial's benchmark_model output the lab reads back (``$LAB_MAX_OUTPUT`` sets it).
On the device the output file is bounded too: the trial's shell runs ``ulimit -f`` first, so a
tool that prints without end is stopped by the kernel (SIGXFSZ) instead of filling the device."""
_MIN_OUTPUT_BYTES = 64 * 1024
_KEPT_BYTES = 64 * 1024  # of an output past the cap, this much of its start and of its end is stored
_ULIMIT_BLOCK = 512  # the unit of mksh's `ulimit -f`
_FULL_BYTES = 64 * 1024  # a device with less free space than this, whose trial output broke, is full


def max_output_bytes() -> int:
    """``$LAB_MAX_OUTPUT`` (bytes, or a size such as ``64MiB``), else :data:`MAX_OUTPUT_BYTES`.

    Raises:
        UsageError: the variable is not a size, or below 64 KiB (a normal output takes a few).
    """
    raw = os.environ.get("LAB_MAX_OUTPUT", "").strip()
    if not raw:
        return MAX_OUTPUT_BYTES
    size = parse_size(raw)
    if size is None or size < _MIN_OUTPUT_BYTES:
        raise UsageError(f"LAB_MAX_OUTPUT={raw!r} is not a size of at least 64KiB: give bytes or e.g. 16MiB")
    return size


def builtin_tool(abi: str, runner_line: str | None) -> ToolInfo:
    """ToolInfo of a device's own benchmark_model: no file to hash, so its runner line is hashed."""
    ident = runner_line or "benchmark_model"
    return ToolInfo(
        sha256=hashlib.sha256(f"builtin:{ident}".encode()).hexdigest(),
        abi=abi,
        version=runner_line,
        path=None,
        builtin=True,
        source="device",
    )


@dataclass(frozen=True)
class CorePin:
    """``--cores`` on one device: the CPUs benchmark_model may run on (``taskset`` takes the mask)."""

    cores: tuple[int, ...]
    label: str  # "big: 7", "4-7"

    @property
    def mask(self) -> str:
        """taskset's hex mask: bit N for CPU N."""
        return format(sum(1 << core for core in self.cores), "x")


@dataclass
class DeviceSession:
    """What a device's trials share: its shell, facts, state reader and the tool it runs."""

    shell: DeviceShell
    facts: DeviceFacts
    state: StateReader
    tool: ToolInfo
    tool_command: str  # what the device shell runs: a pushed path, or "benchmark_model"
    samples: bool  # the tool is the lab runner and writes --samples_file
    fixed_performance: bool | None = None
    remote_models: dict[str, str] = field(default_factory=dict)  # model sha256 -> device path
    work_dir: str = REMOTE_DIR  # this run's own folder for outputs (host.devices.lock.work_dir)
    max_output: int = MAX_OUTPUT_BYTES  # bytes of a trial's output read back (max_output_bytes)
    tool_final: bool = False  # the tool's version line has been read from a run
    pin: CorePin | None = None  # --cores: benchmark_model runs under taskset

    def settle_tool(self, output: str, result: BenchmarkResult | None) -> None:
        """Fill the tool's version from the first run that prints it (the runner line).

        Until then a builtin tool is known only as ``builtin:benchmark_model``.
        """
        if self.tool_final:
            return
        line = (result.runner if result else None) or version_line(output)
        if line is None:
            return
        self.tool_final = True
        if self.tool.builtin:
            self.tool = builtin_tool(self.tool.abi, line)
        elif self.tool.version is None:
            self.tool = replace(self.tool, version=line)


SAMPLES_FILE = "samples.txt"
"""Where the lab runner writes per-invoke samples, in the run's own work folder (removed before each trial)."""

OUTPUT_FILE = "output.txt"
"""Where benchmark_model's output goes during a trial, in the run's own work folder
(``host.devices.lock.work_dir``: two runs on one device never read each other's). Writing to a file on the device, read after
the run, keeps adb traffic (and the host, adb server and adbd waking for it) out of the measured
loop: streamed, the lines printed right before the loop made some trials on the emulated device up
to 2× slower than the runner alone on a 2-core machine (benchmarks/bench_fidelity.py)."""


def benchmark_command(tool_command: str, remote_model: str, params: TrialParams, samples_file: str | None) -> list[str]:
    """benchmark_model's argv. Run counts are exact: ``--min_secs``/``--warmup_min_secs`` default to 0,
    because the lab's repetition comes from trials, not from stretching one run to a second.
    """
    argv = [
        tool_command,
        f"--graph={remote_model}",
        f"--num_threads={params.threads}",
        f"--num_runs={params.runs}",
        f"--warmup_runs={params.warmup_runs}",
        f"--min_secs={params.min_secs if params.min_secs is not None else 0:g}",
        "--warmup_min_secs=0",
        f"--use_xnnpack={'true' if params.use_xnnpack else 'false'}",
        "--report_peak_memory_footprint=true",
        *params.extra_flags,
    ]
    if samples_file:
        argv.append(f"--samples_file={samples_file}")
    return argv


def failure_reason(output: str, returncode: int) -> str:
    """One line saying why a benchmark_model run failed, from its exit status and the cause it printed
    (an ``ERROR:`` line, or a cause without one such as ``Failed to apply XNNPACK delegate.``)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    detail = failure_cause(output) or (lines[-1] if lines else "no output")
    if returncode == 127:
        return f"benchmark_model not found on the device (exit 127): {detail}"
    if returncode == 126:
        return f"benchmark_model cannot execute on the device (exit 126): {detail}"
    if returncode > 128:
        try:
            name = signal.Signals(returncode - 128).name
        except ValueError:
            name = f"signal {returncode - 128}"
        return f"benchmark_model crashed ({name}, exit {returncode}): {detail}"
    return f"benchmark_model failed (exit {returncode}): {detail}"


def ops_requested(params: TrialParams) -> bool:
    return OP_PROFILING_FLAG in params.extra_flags


def read_op_profile(result: BenchmarkResult, output: str) -> BenchmarkResult:
    """``result`` with benchmark_model's op profile from ``output``, for a trial run with ``--ops``.

    A profile that is absent (neither op tables nor per-kernel counts) or unreadable is a warning
    of the trial, never its failure: the times still count.
    """
    warnings = list(result.warnings)
    try:
        profile = find_op_profile(output)
    except OutputParseError as exc:
        return replace(result, warnings=(*warnings, f"op profile unreadable: {exc}"))
    if profile is not None:
        warnings.extend(f"op profile: {w}" for w in profile.warnings)
    elif result.kernels is None:
        reasons = [result.op_profiling_unavailable]
        if result.kernels_unavailable:
            reasons.append(f"per-kernel counts: {result.kernels_unavailable}")
        reason = "; ".join(r for r in reasons if r) or "benchmark_model printed no op profile"
        warnings.append(f"op profiling requested but absent: {reason}")
    return replace(result, op_profile=profile, warnings=tuple(warnings))


def _parse_samples(text: str) -> list[float] | None:
    try:
        values = [float(line) for line in text.split()]
    except ValueError:
        return None
    return values or None


def _ghz(khz: int) -> str:
    return f"{khz / 1e6:.2f}"


def throttling(facts: DeviceFacts, before: DeviceState | None, after: DeviceState) -> tuple[bool | None, str | None]:
    """Whether a trial ran throttled, judged from the states around it, and why.

    Throttled: a zone at or past its trip point (before or after); a core's cap below its maximum
    frequency; in fixed-performance mode (caps below the maximum by design) a cap lower after the
    trial than before. None when the device shows neither trip points nor caps.
    """
    reasons: list[str] = []
    known = False
    for state in (before, after):
        for zone, trip in (state.trips_c.items() if state is not None else ()):
            temp = state.thermal_c.get(zone) if state is not None else None
            if temp is None:
                continue
            known = True
            if temp >= trip and not any(r.startswith(f"{zone} ") for r in reasons):
                reasons.append(f"{zone} at {temp:.1f} °C, past its trip point {trip:g} °C")
    if after.cap_freqs_khz:
        known = True
        capped: dict[tuple[int, int], list[int]] = {}
        for name, cap in after.cap_freqs_khz.items():
            core = int(name.removeprefix("cpu"))
            if after.fixed_performance_mode:
                ceiling = before.cap_freqs_khz.get(name) if before is not None else None
            else:
                ceiling = facts.max_freqs_khz[core] if core < len(facts.max_freqs_khz) else None
            if ceiling and cap < ceiling:
                capped.setdefault((cap, ceiling), []).append(core)
        for (cap, ceiling), cores in sorted(capped.items(), key=lambda item: item[1]):
            cpus = ",".join(f"cpu{c}" for c in cores)
            if after.fixed_performance_mode:
                reasons.append(f"{cpus} cap fell from {_ghz(ceiling)} to {_ghz(cap)} GHz during the trial")
            else:
                reasons.append(f"{cpus} capped at {_ghz(cap)} of {_ghz(ceiling)} GHz")
    if not known:
        return None, None
    return bool(reasons), "; ".join(reasons) or None


def _state(session: DeviceSession) -> DeviceState:
    return session.state.snapshot(session.fixed_performance, timeout=_STATE_TIMEOUT_S)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def run_trial(
    session: DeviceSession,
    model: ModelFile,
    params: TrialParams,
    planned: PlannedTrial,
    state_before: DeviceState | None = None,
) -> Trial:
    """Runs one planned trial and returns it — never raises for a device or tool failure.

    ``state_before`` is a snapshot already taken (e.g. while waiting for the device to cool).
    """
    started = _now()
    trial = Trial(
        run_id=None,
        device=session.facts,
        model=model,
        tool=session.tool,
        params=params,
        index=planned.trial_index,
        position=planned.position,
        status="failed",
        started_at=started,
        duration_s=0.0,
    )
    try:
        trial.state_before = state_before or _state(session)
    except DeviceError as exc:
        trial.error = f"state before the trial: {exc}"
        return trial
    if session.pin is not None:
        trial.state_before = replace(trial.state_before, cpus=session.pin.label)
    output_path = f"{session.work_dir}/{OUTPUT_FILE}"
    samples = f"{session.work_dir}/{SAMPLES_FILE}" if session.samples else None
    argv = benchmark_command(session.tool_command, session.remote_models[model.sha256], params, samples)
    if session.pin is not None:
        argv = ["taskset", session.pin.mask, *argv]
    stale = [output_path, *([samples] if samples else [])]  # no leftovers of an earlier trial
    bound = f"ulimit -f {session.max_output // _ULIMIT_BLOCK + 1}"  # the output file, bounded on the device
    line = (f"{command_line(['rm', '-f', *stale])} ; {bound} ; {command_line(argv)} > "
            f"{command_line([output_path])} 2>&1")
    trial.command = line
    trial.started_at = _now()
    t0 = time.monotonic()
    result: ShellResult | None = None
    printed = ""  # what reached the shell's own streams (the shell's errors; partial output)
    too_large = False
    try:
        result = session.shell.run(line, timeout=params.timeout_s, max_output=session.max_output)
        printed = result.output
    except ShellTimeoutError as exc:
        trial.status = "timeout"
        trial.error = f"no result within --timeout {params.timeout_s:g} s"
        printed = exc.output
    except DeviceGoneError as exc:
        trial.error = f"device gone: {exc}"
        printed = exc.output
    except OutputTooLargeError as exc:
        too_large, printed = True, exc.output
    except DeviceError as exc:
        trial.error = str(exc)
    trial.duration_s = time.monotonic() - t0
    output: str | None = None
    try:  # the output and samples files are read in the same round trip as the state after
        reads = [["cat", output_path], *([["cat", samples]] if samples else [])]
        trial.state_after, files = session.state.snapshot_with(
            reads, session.fixed_performance, _STATE_TIMEOUT_S, max_output=2 * session.max_output + 2**20
        )
        output = files[0]
    except OutputTooLargeError as exc:  # a device whose shell ignored `ulimit -f`
        trial.state_after, output, too_large = None, exc.output, True
    except DeviceError:
        trial.state_after = None
    if trial.state_after is not None:
        throttled, why = throttling(session.facts, trial.state_before, trial.state_after)
        trial.state_after = replace(trial.state_after, throttled=throttled, throttle_reason=why)
    trial.raw_output = (output or "") + printed
    if too_large or (result is not None and output is not None and (
            result.returncode == 128 + signal.SIGXFSZ or len(output) > session.max_output)):
        _too_large(trial, session.max_output)
    elif result is not None:
        if output is None:
            trial.error = "the device stopped answering before the trial's output could be read"
        else:
            _read_result(trial, result.returncode)
            if samples and trial.status == "ok":
                trial.samples_us = _parse_samples(files[1])
            if trial.status != "ok":
                _name_full_storage(trial, session)
    session.settle_tool(trial.raw_output, trial.result)
    trial.tool = session.tool
    return trial


def _too_large(trial: Trial, cap: int) -> None:
    """Fails ``trial`` for printing more than ``cap`` bytes, keeping the start and end of its output."""
    trial.status = "failed"
    kept = _KEPT_BYTES // 1024
    trial.error = (f"output too large: benchmark_model printed more than {cap / 2**20:g} MiB (set LAB_MAX_OUTPUT "
                   f"to allow more); its first and last {kept} KiB are kept")
    text = trial.raw_output
    if len(text) > 2 * _KEPT_BYTES:
        cut = len(text) - 2 * _KEPT_BYTES
        trial.raw_output = f"{text[:_KEPT_BYTES]}\n[… {cut:,} characters left out by the lab …]\n{text[-_KEPT_BYTES:]}"


def _name_full_storage(trial: Trial, session: DeviceSession) -> None:
    """A trial whose output broke on a device with no space left says so: the output was cut short
    by the full storage, which the error of the cut output alone would not tell."""
    try:
        free = free_bytes(session.shell, session.work_dir, _STATE_TIMEOUT_S)
    except DeviceError:
        return
    if free is not None and free < _FULL_BYTES:
        trial.error = (f"device storage full ({free / 1024:.0f} KiB free under {session.work_dir}): the trial's output "
                       f"was cut short; free some space on the device ({trial.error})")


def _read_result(trial: Trial, returncode: int) -> None:
    if returncode != 0:
        trial.error = failure_reason(trial.raw_output, returncode)
        return
    try:
        parsed = parse(trial.raw_output)
    except OutputParseError as exc:
        trial.error = f"unreadable benchmark_model output: {exc}"
        return
    if ops_requested(trial.params):
        parsed = read_op_profile(parsed, trial.raw_output)
    trial.result = parsed
    if parsed.runs is None or parsed.runs.avg_us is None:
        trial.error = "benchmark_model printed no measured runs (no count=… line with an average)"
        return
    trial.status = "ok"
