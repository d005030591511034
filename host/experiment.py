"""``lab run``: the guide's experiment in one call — build, devices, bench, store, report.

The stages are the other packages' own entry points; this module only sequences them, decides
whether an emulated device is needed, and makes sure one it started is stopped again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

from adbutils import AdbClient

from host.bench import BenchOutcome, BenchProgress, model_file, run_bench
from host.bench.trial import OP_PROFILING_FLAG
from host.build import BuildProgress, BuildResult, BuildSpec
from host.build.docker import build_with_backend
from host.devices import adb_client, select_devices
from host.devices.emulated import EmulatedDeviceHandle, start_emulated_device, stop_emulated_device
from host.errors import NoDeviceError
from host.records import DeviceFacts, TrialParams
from host.store import open_store

__all__ = ["EmulatorMode", "RunRequest", "RunOutcome", "RunProgress", "run_experiment"]

EmulatorMode = Literal["auto", "always", "never", "arm64"]
"""auto: an emulated x86_64 device when none is attached; always: only a new x86_64 one; never:
attached devices only; arm64: only a new arm64 one under QEMU (instruction counts)."""


@dataclass(frozen=True)
class RunRequest:
    build: BuildSpec
    params: TrialParams
    backend: str = "auto"  # where to build: auto, docker or local
    trials: int = 5
    serials: list[str] | None = None
    emulator: EmulatorMode = "auto"
    cooldown_s: float = 0.0
    max_temp_c: float | None = None
    force_build: bool = False
    seed: int = 0


@dataclass
class RunOutcome:
    build: BuildResult
    bench: BenchOutcome
    devices: list[DeviceFacts]
    db_url: str
    started_emulated: list[str] = field(default_factory=list)  # serials of devices this run started

    @property
    def run_id(self) -> int:
        return self.bench.run_id

    @property
    def exit_code(self) -> int:
        return self.bench.exit_code


class RunProgress(Protocol):
    """What ``lab run`` shows: a line per stage, and the build's and bench's own progress displays,
    each open only while its stage runs (a terminal shows one live display at a time)."""

    def stage(self, message: str) -> None:
        """A stage begins (one line)."""

    def building(self) -> AbstractContextManager[BuildProgress]:
        """The build's progress display, for the duration of the build."""

    def benching(self) -> AbstractContextManager[BenchProgress]:
        """The bench's progress display, for the duration of the trials."""


def run_experiment(request: RunRequest, *, home: Path, db_url: str, progress: RunProgress) -> RunOutcome:
    """Builds (or reuses) the dense and pruned models and benchmarks them on every selected device.

    Raises:
        NoDeviceError: nothing attached and ``emulator == "never"``.
        DeviceNotFoundError: a requested serial is not attached.
        BuildError, MissingExtraError, StoreError: from the stages themselves.
    """
    progress.stage("build: dense and pruned models")
    with progress.building() as build_progress:
        built = build_with_backend(
            request.build, home, backend=request.backend, force=request.force_build, progress=build_progress
        )
    progress.stage(f"build {built.build_id}: {'reused from cache' if built.cached else 'done'} ({built.dir})")
    models = [
        model_file(built.dense, role="dense", build_id=built.build_id, manifest=built.manifest),
        model_file(built.pruned, role="pruned", build_id=built.build_id, manifest=built.manifest),
    ]
    store = open_store(db_url)
    try:
        progress.stage("devices: looking for attached devices")
        client = adb_client(on_start=progress.stage)
        with _devices(client, request, home, progress) as (devices, started), progress.benching() as bench_progress:
            progress.stage(f"bench: {len(models)} models × {len(devices)} device(s) × {request.trials} trials")
            outcome = run_bench(
                models,
                devices,
                _params(request),
                trials=request.trials,
                cooldown_s=request.cooldown_s,
                max_temp_c=request.max_temp_c,
                store=store,
                binary=None,
                home=home,
                config=_config(request, built),
                progress=bench_progress,
                run_kind="run",
                seed=request.seed,
            )
    finally:
        store.close()
    return RunOutcome(build=built, bench=outcome, devices=devices, db_url=db_url, started_emulated=started)


@contextmanager
def _devices(
    client: AdbClient, request: RunRequest, home: Path, progress: RunProgress
) -> Iterator[tuple[list[DeviceFacts], list[str]]]:
    """The devices to run on, starting an emulated one when asked or when none is attached (auto)."""
    handles: list[EmulatedDeviceHandle] = []
    try:
        if request.emulator in ("always", "arm64"):
            handles.append(_start(home, progress, "arm64" if request.emulator == "arm64" else "x86_64"))
            devices = select_devices(client, [handles[0].serial])
        else:
            try:
                devices = select_devices(client, request.serials)
            except NoDeviceError:
                if request.emulator == "never":
                    raise NoDeviceError(
                        "no device attached and --emulator never: attach a phone with USB debugging on, "
                        "or use --emulator auto to run on an emulated device"
                    ) from None
                handles.append(_start(home, progress))
                devices = select_devices(client, [handles[0].serial])
        yield devices, [h.serial for h in handles]
    finally:
        for handle in handles:
            stop_emulated_device(handle)


def _start(home: Path, progress: RunProgress, arch: str = "x86_64") -> EmulatedDeviceHandle:
    if arch == "arm64":
        progress.stage("devices: starting an emulated arm64 device (QEMU; counts instructions per inference)")
    else:
        progress.stage("devices: starting an emulated device (measures this machine's CPU)")
    return start_emulated_device(home, arch=arch)


def _params(request: RunRequest) -> TrialParams:
    """On the arm64 emulated device, per-kernel counts too: they show which kernels ran (sparse or not)."""
    if request.emulator != "arm64" or OP_PROFILING_FLAG in request.params.extra_flags:
        return request.params
    return replace(request.params, extra_flags=(*request.params.extra_flags, OP_PROFILING_FLAG))


def _config(request: RunRequest, built: BuildResult) -> dict[str, object]:
    return {
        "command": "run",
        "build_id": built.build_id,
        "dataset": request.build.dataset,
        "quick": request.build.quick,
        "trials": request.trials,
        "threads": request.params.threads,
        "runs": request.params.runs,
        "warmup_runs": request.params.warmup_runs,
        "use_xnnpack": request.params.use_xnnpack,
        "emulator": request.emulator,
        "cooldown_s": request.cooldown_s,
        "seed": request.seed,
    }
