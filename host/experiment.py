"""``lab run``: the guide's experiment in one call — build, devices, bench, store, report.

The stages are the other packages' own entry points; this module only sequences them, decides
which emulated devices are needed (preparing the arm64 one on first use), makes sure the ones it
started are stopped again, and states the run's finding in one sentence (``run_finding``).

With no phone attached (``--emulator auto``) a run starts both emulated devices: the x86_64 one
measures this machine's CPU, where XNNPACK's sparse kernels are off (AVX), and the arm64 one runs
an ARM core under QEMU, where they run and instructions per inference show what pruning saves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from adbutils import AdbClient

from device_agent.errors import AgentError
from host.bench import BenchOutcome, BenchProgress, model_file, run_bench
from host.bench.evidence import SPARSE_PATH_RATIO, sparse_evidence
from host.bench.verify import build_references
from host.builder import BuildProgress, BuildResult, BuildSpec
from host.builder.variants import parse_variants
from host.builder.docker import build_with_backend
from host.devices import adb_client, select_devices
from host.devices.discovery import skipped_devices
from host.devices.emulated import EmulatedDeviceHandle, start_emulated_device, stop_emulated_device
from host.errors import ConfigError, DeviceError, NoDeviceError
from host.records import BenchRequest, DeviceFacts
from host.store import Store, open_store

if TYPE_CHECKING:
    from host.report import ModelRow, RunReport

__all__ = [
    "EmulatorMode",
    "EMULATOR_ALIASES",
    "RunRequest",
    "RunOutcome",
    "RunProgress",
    "PrepareProgress",
    "run_experiment",
    "run_finding",
]

EmulatorMode = Literal["auto", "x86", "arm64", "both", "never"]
"""auto: attached devices, else both emulated devices (the arm64 one when it can be prepared);
x86: only a new emulated x86_64 device (this machine's CPU); arm64: only a new emulated ARM core
under QEMU (instruction counts); both: the two emulated devices; never: attached devices only."""
EMULATOR_ALIASES: dict[str, EmulatorMode] = {"always": "x86"}
"""Older spellings of ``--emulator``: ``always`` (a new x86_64 emulated device only) is ``x86``."""

_ARCHS: dict[str, tuple[str, ...]] = {"x86": ("x86_64",), "arm64": ("arm64",), "both": ("x86_64", "arm64")}


@dataclass(frozen=True)
class RunRequest:
    """``lab run``'s request: what to build, where, and the benchmark (its own record, as ``lab bench`` takes it)."""

    build: BuildSpec
    bench: BenchRequest = field(default_factory=BenchRequest)
    backend: str = "auto"  # where to build: auto, docker or local
    serials: list[str] | None = None
    emulator: EmulatorMode = "auto"
    force_build: bool = False


@dataclass
class RunOutcome:
    build: BuildResult
    bench: BenchOutcome
    devices: list[DeviceFacts]
    db_url: str
    started_emulated: list[str] = field(default_factory=list)  # serials of devices this run started
    notes: list[str] = field(default_factory=list)  # one line each: an emulated device left out or without counts, and why

    @property
    def run_id(self) -> int:
        return self.bench.run_id

    @property
    def exit_code(self) -> int:
        return self.bench.exit_code


class PrepareProgress(Protocol):
    """The arm64 userland's preparation on first use: its lines, and a bar over its downloads."""

    def line(self, message: str) -> None: ...

    def downloaded(self, done: int, total: int) -> None:
        """``done`` of ``total`` bytes downloaded so far."""


class RunProgress(Protocol):
    """What ``lab run`` shows: a line per stage, and the build's, the arm64 userland's and the bench's
    own progress displays, each open only while its stage runs (a terminal shows one live display at a time)."""

    def stage(self, message: str) -> None:
        """A stage begins (one line)."""

    def building(self) -> AbstractContextManager[BuildProgress]:
        """The build's progress display, for the duration of the build."""

    def preparing(self) -> AbstractContextManager[PrepareProgress]:
        """The arm64 userland's download display, while it is prepared (first use only)."""

    def benching(self) -> AbstractContextManager[BenchProgress]:
        """The bench's progress display, for the duration of the trials."""


def run_experiment(request: RunRequest, *, home: Path, db_url: str, progress: RunProgress) -> RunOutcome:
    """Builds (or reuses) the dense and pruned models and benchmarks them on every selected device.

    Raises:
        NoDeviceError: nothing attached and ``emulator == "never"``.
        DeviceNotFoundError: a requested serial is not attached.
        ConfigError: ``emulator`` is ``arm64`` or ``both`` and the arm64 device cannot be prepared
            (offline, no disk space; the message says which).
        BuildError, MissingExtraError, StoreError: from the stages themselves.
    """
    progress.stage(f"build: {', '.join(parse_variants(request.build.variants))} models")
    with progress.building() as build_progress:
        built = build_with_backend(
            request.build, home, backend=request.backend, force=request.force_build, progress=build_progress
        )
    progress.stage(f"build {built.build_id}: {'reused from cache' if built.cached else 'done'} ({built.dir})")
    for name, reason in built.failed_variants.items():
        progress.stage(f"variant {name} not built: {reason}")
    models = [
        model_file(path, role=name, build_id=built.build_id, manifest=built.manifest)
        for name, path in built.files.items()
    ]
    references = build_references(models, built.dir, built.manifest) if request.bench.verify else {}
    store = open_store(db_url)
    notes: list[str] = []
    try:
        progress.stage("devices: looking for attached devices")
        client = adb_client(on_start=progress.stage)
        skipped = skipped_devices(client, request.serials)  # stored with the run: who was left out, and why
        for serial, problem in skipped.items():
            progress.stage(f"devices: skipping {serial}: {problem}")
            notes.append(f"device {serial} skipped: {problem}")
        with _devices(client, request, home, progress, notes) as (devices, started), progress.benching() as bench_progress:
            progress.stage(f"bench: {len(models)} models × {len(devices)} device(s) × {request.bench.trials} trials")
            outcome = run_bench(  # the arm64 emulated device adds per-kernel counts itself (host.bench.runner)
                request.bench,
                models,
                devices,
                store=store,
                home=home,
                config={**_config(request, built), **({"skipped_devices": skipped} if skipped else {})},
                progress=bench_progress,
                run_kind="run",
                client=client,
                references=references,
            )
    finally:
        store.close()
    return RunOutcome(build=built, bench=outcome, devices=devices, db_url=db_url, started_emulated=started, notes=notes)


@contextmanager
def _devices(
    client: AdbClient, request: RunRequest, home: Path, progress: RunProgress, notes: list[str]
) -> Iterator[tuple[list[DeviceFacts], list[str]]]:
    """The devices to run on: attached ones, or emulated ones this run starts (and stops after)."""
    handles: list[EmulatedDeviceHandle] = []
    try:
        archs = _ARCHS.get(request.emulator)
        if archs is None:  # auto or never: attached devices first
            attached = _attached(client, request)
            if attached:
                yield attached, []
                return
            archs = _ARCHS["both"]
        required = request.emulator != "auto"
        if "arm64" in archs and not _prepare_arm64(progress, notes, required=required):
            archs = tuple(a for a in archs if a != "arm64")
        for arch in archs:
            try:
                handles.append(_start(home, progress, arch))
            except DeviceError as exc:
                if arch != "arm64" or required:
                    raise
                _left_out(progress, notes, f"it did not start ({exc})")
        yield select_devices(client, [h.serial for h in handles]), [h.serial for h in handles]
    finally:
        for handle in handles:
            stop_emulated_device(handle)


def _attached(client: AdbClient, request: RunRequest) -> list[DeviceFacts]:
    """The attached devices asked for; none (auto) means emulated ones are started instead.

    Raises:
        NoDeviceError: none attached and ``--emulator never``. DeviceNotFoundError: an unknown ``--device``.
    """
    try:
        return select_devices(client, request.serials)
    except NoDeviceError:
        if request.emulator == "never":
            raise NoDeviceError(
                "no device attached and --emulator never: attach a phone with USB debugging on, "
                "or use --emulator auto to run on emulated devices"
            ) from None
        return []


def _left_out(progress: RunProgress, notes: list[str], why: str) -> None:
    line = f"no emulated ARM core in this run: {why}; running on the x86_64 one only"
    progress.stage(f"devices: {line}")
    notes.append(line)


def _prepare_arm64(progress: RunProgress, notes: list[str], *, required: bool) -> bool:
    """Prepares the arm64 userland when it is not yet (first use, with a download bar); False when it
    cannot be and the run goes on without it (``required``: it is an error instead)."""
    from device_agent.qemu import default_dest, prepare

    dest = default_dest()
    try:
        with progress.preparing() as display:
            userland = prepare(dest, progress=display.line, on_bytes=display.downloaded)
    except AgentError as exc:
        if required:
            raise ConfigError(f"the emulated ARM core cannot be prepared: {exc}") from exc
        _left_out(progress, notes, str(exc))
        return False
    reason = userland.counting_unavailable()
    if reason:
        notes.append(f"emulated ARM core: instruction counts unavailable: {reason}")
    return True


def _start(home: Path, progress: RunProgress, arch: str) -> EmulatedDeviceHandle:
    if arch == "arm64":
        progress.stage("devices: starting an emulated ARM core (QEMU neoverse-n1; counts instructions per inference)")
    else:
        progress.stage("devices: starting an emulated x86_64 device (measures this machine's CPU)")
    return start_emulated_device(home, arch=arch)


def _config(request: RunRequest, built: BuildResult) -> dict[str, object]:
    """What ``lab run`` adds to the run's stored configuration (``run_bench`` adds the bench request)."""
    return {
        "build_id": built.build_id,
        "dataset": request.build.dataset,
        "quick": request.build.quick,
        "emulator": request.emulator,
    }


# ---- the finding: one sentence over every device of the run ----

GUIDE_PIXEL4_RATIO = 12 / 17  # the guide's pruned/dense latency on a Pixel 4: 12 µs vs 17 µs


def _time_clause(device: DeviceFacts, pruned: ModelRow) -> str | None:
    speedup = pruned.speedup
    if speedup is None:
        return None
    where = "this x86 CPU" if device.kind == "emulated" else (device.model or device.serial)
    why = " — XNNPACK's sparse kernels are off with AVX" if device.kind == "emulated" and device.abi in ("x86_64", "x86") else ""
    if speedup.low > 1:
        return f"on {where} the pruned model is {speedup.value:.2f}× faster"
    if speedup.high < 1:
        return f"on {where} the pruned model is slower ({speedup.value:.2f}× the speed){why}"
    return f"on {where} the pruned model is not faster ({speedup.value:.2f}×){why}"


def _instructions_clause(device: DeviceFacts, dense: ModelRow, pruned: ModelRow, kernels: Callable[[str], set[str]]) -> str:
    core = (device.emulation or "").removeprefix("qemu-user ").strip() or "ARM"
    if not dense.instructions or not pruned.instructions:
        return f"on an emulated ARM core ({core}) no instructions were counted"
    ratio = pruned.instructions / dense.instructions
    evidence = sparse_evidence(kernels(dense.model_sha256), kernels(pruned.model_sha256))
    if evidence is None:
        engaged = f"the sparse path is {'probably ' if ratio < SPARSE_PATH_RATIO else 'probably not '}engaged (no per-kernel counts)"
    else:
        engaged = "the sparse path is engaged" if evidence[0] else "the sparse path is not engaged"
    return (
        f"on an emulated ARM core ({core}) it needs {ratio:.2f}× the instructions: {engaged} "
        f"(the guide's Pixel 4: {GUIDE_PIXEL4_RATIO:.2f}× the time)"
    )


def run_finding(store: Store, report: RunReport) -> str | None:
    """The run's finding in one sentence, device by device, or None without a dense and a pruned result.

    "on this x86 CPU the pruned model is not faster (0.99×) — XNNPACK's sparse kernels are off with
    AVX; on an emulated ARM core (neoverse-n1) it needs 0.62× the instructions: the sparse path is
    engaged (the guide's Pixel 4: 0.71× the time)". Whether the sparse path ran comes from the
    kernels that ran (``host.bench.evidence``), not from the ratio, where per-kernel counts exist.
    """
    from host.report.ops import profile_names

    groups = store.op_groups([report.run.id])
    clauses = []
    for section in report.devices:
        device = section.device
        rows = {row.role: row for row in section.rows}
        dense, pruned = rows.get("dense"), rows.get("pruned")
        if dense is None or pruned is None:
            continue
        if device.emulation not in (None, "native"):

            def kernels(sha256: str, serial: str = device.serial) -> set[str]:
                group = next((g for g in groups if g.device.serial == serial and g.model_sha256 == sha256), None)
                return profile_names(group, "kernel")

            clauses.append(_instructions_clause(device, dense, pruned, kernels))
        else:
            clause = _time_clause(device, pruned)
            if clause:
                clauses.append(clause)
    if not clauses:
        return None
    text = "; ".join(clauses)
    return text[0].upper() + text[1:] + "."
