"""Plain record types shared by devices, bench, store and report.

No ORM object and no adbutils object crosses a package boundary: these do. Units are in the
field names (``_us`` microseconds, ``_mb`` mebibytes, ``_khz``, ``_c`` degrees Celsius).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from device_agent.output import BenchmarkResult

__all__ = [
    "DeviceKind",
    "DeviceFacts",
    "DeviceState",
    "ToolInfo",
    "ModelFile",
    "TrialParams",
    "TrialStatus",
    "Trial",
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
    threads: int = 1
    runs: int = 100
    warmup_runs: int = 10
    use_xnnpack: bool = True
    min_secs: float | None = None
    timeout_s: float = 300.0
    extra_flags: tuple[str, ...] = ()


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
    result: BenchmarkResult | None = None
    samples_us: list[float] | None = None  # per-invoke times when the runner gives them
    state_before: DeviceState | None = None
    state_after: DeviceState | None = None
    command: str | None = None  # the device shell command that ran


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
