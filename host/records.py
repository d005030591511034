"""Plain record types shared by devices, bench, store and report.

No ORM object and no adbutils object crosses a package boundary: these do. Units are in the
field names (``_us`` microseconds, ``_mb`` mebibytes, ``_khz``, ``_c`` degrees Celsius).

Imports only the standard library and ``host.errors``: the CLI's option declarations take their
defaults from ``BenchRequest`` when ``lab --help`` runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from host.errors import UsageError

if TYPE_CHECKING:
    from device_agent import output as _output
else:

    class _Deferred:
        """``device_agent.output``, imported when ``Trial``'s type hints are first resolved (the codec
        decoding a trial), not when this module is."""

        def __getattr__(self, name: str) -> Any:
            return getattr(importlib.import_module("device_agent.output"), name)

    _output = _Deferred()

__all__ = [
    "DeviceKind",
    "DeviceFacts",
    "DeviceState",
    "ToolInfo",
    "ModelFile",
    "TrialParams",
    "BenchRequest",
    "MAX_TRIALS",
    "MAX_RUNS",
    "CORES_RE",
    "TrialStatus",
    "Trial",
    "CheckStatus",
    "OutputCheck",
    "MAX_VERIFY_INPUTS",
    "RUN_VERIFY_INPUTS",
    "to_jsonable",
]

DeviceKind = Literal["physical", "emulator", "emulated"]
"""physical: a phone over USB/TCP; emulator: Android's emulator; emulated: lab's device agent."""


@dataclass(frozen=True)
class DeviceFacts:
    """What a device is. Optional fields are ones a device may not report."""

    serial: str
    kind: DeviceKind
    abis: tuple[str, ...]
    model: str | None = None
    manufacturer: str | None = None
    soc: str | None = None
    sdk: int | None = None
    release: str | None = None
    cores: int | None = None
    max_freqs_khz: tuple[int | None, ...] = ()
    emulation: str | None = None  # e.g. "qemu-user neoverse-n1"; None for real hardware or native emulation

    @property
    def abi(self) -> str:
        return self.abis[0] if self.abis else "unknown"

    @property
    def fingerprint(self) -> str:
        """Identity of the hardware, stable across serial changes (adb over TCP changes serials)."""
        return "|".join(str(x) for x in (self.kind, self.manufacturer, self.model, self.soc, self.abi, self.emulation))


@dataclass(frozen=True)
class DeviceState:
    """A device's state at one moment, taken before and after every trial."""

    taken_at: datetime
    thermal_c: dict[str, float] = field(default_factory=dict)  # zone type (or name) -> temperature
    battery_level: int | None = None  # percent
    battery_temp_c: float | None = None
    charging: bool | None = None
    governors: dict[str, str] = field(default_factory=dict)  # "cpu0" -> "schedutil"
    cur_freqs_khz: dict[str, int] = field(default_factory=dict)  # "cpu0" -> 1800000
    fixed_performance_mode: bool | None = None  # None: not supported or not tried
    # scaling_max_freq per core: the policy's cap, below cpuinfo_max_freq when throttled or pinned
    cap_freqs_khz: dict[str, int] = field(default_factory=dict)
    trips_c: dict[str, float] = field(default_factory=dict)  # zone -> its lowest passive/hot trip point
    # What the lab did around one trial, kept in the state so the store needs no new column:
    throttled: bool | None = None  # on state_after: the trial ran throttled (why: throttle_reason); None: unknown
    throttle_reason: str | None = None
    temp_wait_s: float | None = None  # on state_before: seconds waited for --max-temp before the trial
    temp_wait_cooled: bool | None = None  # that wait ended below --max-temp (False: it ran out, the trial ran hot)
    cpus: str | None = None  # on state_before: the CPUs benchmark_model was pinned to (--cores), e.g. "big: 7"

    @property
    def max_temp_c(self) -> float | None:
        return max(self.thermal_c.values()) if self.thermal_c else None


@dataclass(frozen=True)
class ToolInfo:
    """A benchmark_model binary. ``builtin`` is the emulated device's own runner (no file pushed)."""

    sha256: str
    abi: str
    version: str | None = None
    path: str | None = None  # local path of the cached binary; None when builtin
    builtin: bool = False
    source: str | None = None  # "fetched:<url>", "added:<path>", "device"


@dataclass(frozen=True)
class ModelFile:
    """A .tflite file to benchmark. ``manifest`` is the build manifest entry when lab built it."""

    sha256: str
    name: str
    size_bytes: int
    path: str
    role: str | None = None  # "dense" / "pruned" when it comes from a lab build
    build_id: str | None = None
    manifest: dict[str, Any] | None = None


@dataclass(frozen=True)
class TrialParams:
    """How benchmark_model runs one trial; stored with each trial."""

    threads: int = 1
    runs: int = 100
    warmup_runs: int = 10
    use_xnnpack: bool = True
    min_secs: float | None = None
    timeout_s: float = 300.0
    extra_flags: tuple[str, ...] = ()


MAX_TRIALS = 10_000  # per model and device: the plan is made up front, and each trial costs seconds anyway
MAX_RUNS = 10_000_000  # invokes per trial; beyond, one trial outlasts any --timeout worth setting
CORES_RE = re.compile(r"big|little|\d+(-\d+)?(,\d+(-\d+)?)*")
"""What ``--cores`` takes: a cluster by name, or CPU numbers and ranges (taskset's list form)."""
MAX_VERIFY_INPUTS = 1024  # inputs of the on-device output check: one batch, pushed as one file per input
RUN_VERIFY_INPUTS = 16  # ``lab run`` checks outputs on this many inputs unless told otherwise (``lab bench``: off)


@dataclass(frozen=True)
class BenchRequest:
    """What a benchmark run is asked to do, whoever asks (``lab bench``, ``lab run``, a farm job).

    The one place its settings' defaults are declared: the CLI's options take theirs from here
    (``host.cli.options``), and the run's stored configuration and a farm job's spec are this
    record through ``to_jsonable``.
    """

    params: TrialParams = field(default_factory=TrialParams)
    trials: int = 5  # per model and device, interleaved
    cooldown_s: float = 0.0  # pause between two trials on a device
    max_temp_c: float | None = None  # before each trial, wait (bounded) until every thermal zone is below it
    max_temp_wait_s: float = 300.0  # that wait's bound per trial; then the trial runs and keeps the state
    seed: int = 0  # of the shuffled trial order
    binary: str | None = None  # a benchmark_model on this host to push and use for this run only
    wait_for_device: bool = True  # another run holds a device: wait for it (False: fail its trials)
    cores: str | None = None  # pin benchmark_model with taskset: "big", "little" or CPUs such as "4-7" or "0,2"
    verify: int = 0  # after the trials, check each model's outputs on this many inputs against the host's (0: off)

    def with_flags(self, *flags: str) -> BenchRequest:
        """This request with benchmark_model flags added to its trials' extra flags (each once)."""
        extra = (*self.params.extra_flags, *(f for f in flags if f not in self.params.extra_flags))
        return dataclasses.replace(self, params=dataclasses.replace(self.params, extra_flags=extra))

    def check(self) -> None:
        """Raises UsageError naming the first setting out of range."""
        p = self.params
        if not 1 <= self.trials <= MAX_TRIALS:
            raise UsageError(f"--trials must be between 1 and {MAX_TRIALS:,}, got {self.trials:,}")
        if not 1 <= p.runs <= MAX_RUNS:
            raise UsageError(f"--runs must be between 1 and {MAX_RUNS:,}, got {p.runs:,}")
        if p.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {p.threads}")
        if p.warmup_runs < 0:
            raise UsageError(f"--warmup must not be negative, got {p.warmup_runs}")
        if p.timeout_s <= 0:
            raise UsageError(f"--timeout must be positive, got {p.timeout_s:g}")
        if p.min_secs is not None and p.min_secs < 0:
            raise UsageError(f"--min-secs must not be negative, got {p.min_secs:g}")
        if self.cooldown_s < 0:
            raise UsageError(f"--cooldown must not be negative, got {self.cooldown_s:g}")
        if self.max_temp_wait_s < 0:
            raise UsageError(f"--max-temp-wait must not be negative, got {self.max_temp_wait_s:g}")
        if self.cores is not None and not CORES_RE.fullmatch(self.cores):
            raise UsageError(f"--cores must be big, little or CPU numbers such as 4-7 or 0,2; got {self.cores!r}")
        if not 0 <= self.verify <= MAX_VERIFY_INPUTS:
            raise UsageError(f"--verify must be between 0 (off) and {MAX_VERIFY_INPUTS:,} inputs, got {self.verify:,}")


TrialStatus = Literal["ok", "failed", "timeout"]


@dataclass
class Trial:
    """One benchmark_model invocation of one model on one device: a measurement, or a failure kept as data."""

    run_id: int | None
    device: DeviceFacts
    model: ModelFile
    tool: ToolInfo | None
    params: TrialParams
    index: int  # trial number of this model on this device, 0-based
    position: int  # position in the device's interleaved plan, 0-based
    status: TrialStatus
    started_at: datetime
    duration_s: float
    error: str | None = None
    raw_output: str = ""
    result: _output.BenchmarkResult | None = None
    samples_us: list[float] | None = None  # per-invoke times when the runner gives them
    state_before: DeviceState | None = None
    state_after: DeviceState | None = None
    command: str | None = None  # the device shell command that ran


CheckStatus = Literal["ok", "wrong", "failed"]
"""ok: the device's outputs match the host's within the tolerance; wrong: they do not ("wrong
output on this device"); failed: the check could not be made (reason in ``error``)."""


@dataclass
class OutputCheck:
    """The on-device output check of one model on one device (``host.bench.verify``): its outputs
    for ``inputs`` inputs against the host's reference outputs for the same inputs."""

    run_id: int | None
    device: DeviceFacts
    model: ModelFile
    status: CheckStatus
    inputs: int
    precision: str  # fp32, fp16, int8 or dynamic: picks the tolerance
    tolerance: str  # the rule applied, in words
    reference: str  # where the host's outputs come from
    checked_at: datetime
    duration_s: float = 0.0
    max_abs_error: float | None = None
    max_rel_error: float | None = None  # max |device - host| / max |host|
    top1_agreement: float | None = None  # fraction of inputs whose top-1 class the device and host share
    baseline_agreement: float | None = None  # top-1 agreement with the baseline model (dense fp32) on the host
    baseline: str | None = None  # that model's name
    error: str | None = None
    command: str | None = None


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, datetimes, tuples and dicts as plain JSON-ready values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj
