"""``run_bench``: every model on every device, one worker thread per device, saved as one run.

Each device gets the same interleaved plan (``host.bench.plan``). A device that cannot be set up
(no tool, wrong ABI, no space, gone) has all its planned trials stored as failed with the reason;
a trial that fails is stored as failed; the other trials and devices go on. Trials are saved as
they finish, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import adbutils

from host.bench.plan import PlannedTrial, plan_trials
from host.bench.prepare import prepare_session
from host.bench.summary import Summary, summarize
from host.bench.trial import MAX_OUTPUT_BYTES, OP_PROFILING_FLAG, CorePin, DeviceSession, max_output_bytes, run_trial
from host.bench.verify import Reference, check_all, host_references
from host.devices.adb import adb_client
from host.devices.facts import resolve_cores
from host.devices.lock import device_lock, work_dir
from host.devices.tools import check_binary_path
from host.devices.shell import DeviceShell
from host.devices.elf import binary_abi
from host.errors import DeviceError, LabError, NoDeviceError, UsageError
from host.records import BenchRequest, DeviceFacts, DeviceState, ModelFile, OutputCheck, Trial, TrialParams, to_jsonable

__all__ = ["BenchProgress", "BenchOutcome", "run_bench"]

_TEMP_POLL_S = 1.0  # a snapshot is one shell round trip: cheap enough to poll every second


class BenchProgress(Protocol):
    """What the CLI shows while a benchmark runs. Calls come from worker threads, one at a time."""

    def start(self, total_trials: int, devices: Sequence[DeviceFacts]) -> None: ...

    def note(self, serial: str, message: str) -> None: ...

    def trial_done(self, trial: Trial) -> None: ...


class Store(Protocol):
    def start_run(self, kind: str, config: dict[str, Any]) -> int: ...

    def save_trial(self, trial: Trial) -> int: ...

    def finish_run(self, run_id: int, status: str) -> None: ...

    def save_output_check(self, check: OutputCheck) -> None: ...


@dataclass
class BenchOutcome:
    """A finished run. exit_code: 0 every trial ok (and every output check, with ``request.verify``),
    1 some trial failed or some model gave wrong outputs on a device, 2 nothing could run."""

    run_id: int
    trials: list[Trial]
    summaries: list[Summary]
    exit_code: int
    setup_errors: dict[str, str] = field(default_factory=dict)  # serial -> why no trial could run there
    checks: list[OutputCheck] = field(default_factory=list)  # the on-device output checks (``request.verify``)


class _Reporter:
    """Serializes progress calls from the workers."""

    def __init__(self, progress: BenchProgress | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()

    def start(self, total: int, devices: Sequence[DeviceFacts]) -> None:
        if self._progress:
            with self._lock:
                self._progress.start(total, devices)

    def note(self, serial: str, message: str) -> None:
        if self._progress:
            with self._lock:
                self._progress.note(serial, message)

    def trial_done(self, trial: Trial) -> None:
        if self._progress:
            with self._lock:
                self._progress.trial_done(trial)


@dataclass
class _Job:
    client: adbutils.AdbClient
    models: Sequence[ModelFile]
    request: BenchRequest
    params: TrialParams  # the request's, plus what the device adds (``_device_params``)
    plan: list[PlannedTrial]
    store: Store
    run_id: int
    binary: Path | None
    home: Path
    reporter: _Reporter
    stop: threading.Event
    max_output: int = MAX_OUTPUT_BYTES  # bytes of a trial's output read back
    references: dict[str, Reference | str] = field(default_factory=dict)  # model sha256 -> output check's reference


def _stored_config(
    request: BenchRequest, models: Sequence[ModelFile], devices: Sequence[DeviceFacts], kind: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """The run's configuration as stored: one shape for every kind of run."""
    return {
        "command": kind,
        **extra,
        "models": [{"name": m.name, "sha256": m.sha256, "path": m.path} for m in models],
        "devices": [d.serial for d in devices],
        **to_jsonable(request),
    }


def _failed_trial(job: _Job, facts: DeviceFacts, planned: PlannedTrial, error: str) -> Trial:
    return Trial(
        run_id=job.run_id,
        device=facts,
        model=job.models[planned.model_index],
        tool=None,
        params=job.params,
        index=planned.trial_index,
        position=planned.position,
        status="failed",
        started_at=datetime.now(timezone.utc),
        duration_s=0.0,
        error=error,
    )


def _save(job: _Job, trial: Trial) -> Trial:
    trial.run_id = job.run_id
    job.store.save_trial(trial)
    job.reporter.trial_done(trial)
    return trial


def _cool_state(job: _Job, session: DeviceSession) -> DeviceState | None:
    """With --max-temp: the state once the device is cool enough (or the wait ran out), with the
    wait recorded in it (``temp_wait_s``, ``temp_wait_cooled``)."""
    limit, patience = job.request.max_temp_c, job.request.max_temp_wait_s
    if limit is None:
        return None
    serial = session.facts.serial
    state = session.state.snapshot(session.fixed_performance)
    if state.max_temp_c is None:
        return state
    started = time.monotonic()
    waited = 0.0
    noted = False
    while state.max_temp_c is not None and state.max_temp_c > limit and waited < patience:
        if not noted:  # once per trial: the wait's outcome is noted and stored below
            job.reporter.note(serial, f"{state.max_temp_c:.1f} °C > --max-temp {limit:g} °C: waiting to cool")
            noted = True
        step = min(_TEMP_POLL_S, patience - waited)
        if job.stop.wait(step):
            break
        waited = time.monotonic() - started
        state = session.state.snapshot(session.fixed_performance)
    cooled = state.max_temp_c is None or state.max_temp_c <= limit
    if not cooled:
        job.reporter.note(serial, f"still {state.max_temp_c:.1f} °C after {waited:.0f} s: running anyway (state recorded)")
    elif noted:
        job.reporter.note(serial, f"cooled to {state.max_temp_c:.1f} °C in {waited:.1f} s")
    return replace(state, temp_wait_s=round(waited, 3), temp_wait_cooled=cooled)


@dataclass
class _DeviceResult:
    trials: list[Trial]
    setup_error: str | None = None
    checks: list[OutputCheck] = field(default_factory=list)


def _device_params(params: TrialParams, facts: DeviceFacts) -> TrialParams:
    """On a QEMU-emulated device, per-kernel instruction counts too: they show which kernels ran
    (XNNPACK's sparse ones or not) and cost no time that matters there."""
    if facts.emulation in (None, "native") or OP_PROFILING_FLAG in params.extra_flags:
        return params
    return replace(params, extra_flags=(*params.extra_flags, OP_PROFILING_FLAG))


def _device_worker(job: _Job, facts: DeviceFacts) -> _DeviceResult:
    """The device's trials, under its lock, in a work folder of this run's own (removed at the end).

    A device that cannot be locked or set up gets every planned trial stored as failed with the reason.
    """
    job = replace(job, params=_device_params(job.params, facts))
    serial = facts.serial
    shell = DeviceShell(job.client, serial)

    def note(message: str) -> None:
        job.reporter.note(serial, message)

    with ExitStack() as held:
        work = work_dir()
        try:
            held.enter_context(device_lock(shell, serial, wait=job.request.wait_for_device, note=note, stop=job.stop))
            session = prepare_session(shell, facts, job.models, binary=job.binary, home=job.home, note=note, work=work)
            session.max_output = job.max_output
        except LabError as exc:
            note(f"cannot run: {exc}")
            return _DeviceResult([_save(job, _failed_trial(job, facts, planned, str(exc))) for planned in job.plan], str(exc))
        held.callback(_clean_up, job, session, work)
        trials = _trials(job, session)
        return _DeviceResult(trials, checks=_checks(job, session, trials))


def _checks(job: _Job, session: DeviceSession, trials: list[Trial]) -> list[OutputCheck]:
    """With ``request.verify``: the output check of each model measured on this device, saved."""
    if not job.request.verify or job.stop.is_set():
        return []
    measured = {t.model.sha256 for t in trials if t.status == "ok"}
    if measured:
        job.reporter.note(session.facts.serial, f"checking outputs on {job.request.verify} inputs against the host's")
    checks = check_all(session, job.models, job.params, job.references, measured)
    for check in checks:
        check.run_id = job.run_id
        job.store.save_output_check(check)
        if check.status != "ok":
            job.reporter.note(session.facts.serial, f"output check of {check.model.name}: {check.error}")
    return checks


def _pin(job: _Job, session: DeviceSession) -> str | None:
    """With --cores: pins the session's runs to those CPUs; returns why it cannot (the device's
    topology does not have them, or its shell has no taskset), else None."""
    if job.request.cores is None:
        return None
    facts = session.facts
    try:
        cores, label = resolve_cores(facts, job.request.cores)
        pin = CorePin(cores, label)
        probe = session.shell.run(["taskset", pin.mask, "true"])
    except LabError as exc:
        return str(exc)
    if probe.returncode != 0:
        return (f"--cores needs taskset on the device (toybox, Android 6+), and `taskset {pin.mask} true` failed "
                f"(exit {probe.returncode}): {probe.output.strip() or 'no output'}; run without --cores")
    session.pin = pin
    job.reporter.note(facts.serial, f"benchmark_model pinned to CPUs {label} (taskset {pin.mask})")
    return None


def _trials(job: _Job, session: DeviceSession) -> list[Trial]:
    trials: list[Trial] = []
    unpinnable = _pin(job, session)
    if unpinnable is not None:
        job.reporter.note(session.facts.serial, f"cannot run: {unpinnable}")
        return [_save(job, _failed_trial(job, session.facts, planned, unpinnable)) for planned in job.plan]
    for planned in job.plan:
        if job.stop.is_set():
            break
        cooldown = job.request.cooldown_s
        if planned.position > 0 and cooldown > 0 and job.stop.wait(cooldown):
            break
        try:
            before = _cool_state(job, session)
        except DeviceError:
            before = None  # run_trial takes its own snapshot and records why it fails
        trial = run_trial(session, job.models[planned.model_index], job.params, planned, before)
        if trial.state_after is not None and trial.state_after.throttled:
            job.reporter.note(session.facts.serial, f"{trial.model.name} trial {trial.index + 1} ran throttled: "
                                                    f"{trial.state_after.throttle_reason}")
        trials.append(_save(job, trial))
    return trials


def _clean_up(job: _Job, session: DeviceSession, work: str) -> None:
    """Fixed-performance mode off again, and the run's work folder gone (a device that left keeps both)."""
    if session.fixed_performance:
        try:
            session.state.set_fixed_performance(False)
        except DeviceError:
            job.reporter.note(session.facts.serial, "could not turn fixed-performance mode off again (device gone?)")
    try:
        session.shell.run(["rm", "-rf", work])
    except DeviceError:
        pass


def run_bench(
    request: BenchRequest,
    models: list[ModelFile],
    devices: list[DeviceFacts],
    *,
    store: Store,
    home: Path,
    progress: BenchProgress | None,
    config: dict[str, Any] | None = None,
    run_kind: str = "bench",
    client: adbutils.AdbClient | None = None,
    references: dict[str, Reference] | None = None,
) -> BenchOutcome:
    """Benchmarks every model on every device as ``request`` asks and stores the trials as one run.

    The run's stored configuration is the command (``run_kind`` unless ``config`` names another),
    ``config`` (what the caller adds: a build id, a farm job), the models, the devices and the
    request's fields (``to_jsonable``; decoded back with ``from_jsonable(BenchRequest, config)``).

    With ``request.verify`` each model measured on a device is then checked there on that many
    inputs (``host.bench.verify``) against ``references`` (by model sha256: a build's), or the
    host's outputs for seeded inputs made now.

    Raises:
        UsageError: no models, a setting out of range (``BenchRequest.check``), or a bad $LAB_MAX_OUTPUT.
        ToolError: ``request.binary`` is missing or not an executable.
        NoDeviceError: no devices.
        StoreError: the store failed (the run is marked failed when it still can be).
        KeyboardInterrupt: after the workers finish their current trial; the run is marked
            interrupted and keeps every trial saved so far.

    Each device is locked for the run (``host.devices.lock``): a device another run holds is waited
    for, or with ``request.wait_for_device`` False its trials are stored as failed with the holder named.
    """
    if not models:
        raise UsageError("no model to benchmark: pass one or more .tflite files")
    if not devices:
        raise NoDeviceError("no device to benchmark on")
    request.check()
    binary = Path(request.binary) if request.binary is not None else None
    if binary is not None:
        check_binary_path(binary)
        binary_abi(binary)  # an unreadable file or a non-executable fails here; a wrong ABI per device
    max_output = max_output_bytes()
    devices = list({d.serial: d for d in devices}.values())  # one worker per device, even if named twice
    plan = plan_trials(len(models), request.trials, request.seed)
    client = client or adb_client()
    run_id = store.start_run(run_kind, _stored_config(request, models, devices, run_kind, config or {}))
    reporter = _Reporter(progress)
    checked = host_references(models, request.verify, request.seed, references) if request.verify else {}
    job = _Job(
        client, models, request, request.params, plan, store, run_id, binary, home, reporter, threading.Event(),
        max_output, checked,
    )
    reporter.start(len(plan) * len(devices), devices)
    pool = ThreadPoolExecutor(max_workers=len(devices), thread_name_prefix="bench")
    futures: dict[str, Future[_DeviceResult]] = {d.serial: pool.submit(_device_worker, job, d) for d in devices}
    try:
        done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            job.stop.set()
        wait(futures.values())
    except BaseException:
        job.stop.set()
        pool.shutdown(wait=True)
        store.finish_run(run_id, "interrupted")
        raise
    pool.shutdown(wait=True)
    errors = [f.exception() for f in futures.values() if f.exception() is not None]
    if errors:
        store.finish_run(run_id, "failed")
        raise errors[0]  # type: ignore[misc]
    order = {d.serial: i for i, d in enumerate(devices)}
    all_trials = sorted(
        (t for f in futures.values() for t in f.result().trials), key=lambda t: (order[t.device.serial], t.position)
    )
    ok = sum(t.status == "ok" for t in all_trials)
    checks = [c for f in futures.values() for c in f.result().checks]
    exit_code = 0 if ok == len(all_trials) else (2 if ok == 0 else 1)
    store.finish_run(run_id, {0: "ok", 1: "partial", 2: "failed"}[exit_code])  # the trials' status; checks apart
    if exit_code == 0 and any(c.status != "ok" for c in checks):
        exit_code = 1
    setup_errors: dict[str, str] = {}
    for serial, future in futures.items():
        error = future.result().setup_error
        if error is not None:
            setup_errors[serial] = error
    return BenchOutcome(
        run_id=run_id,
        trials=all_trials,
        summaries=summarize(all_trials, baseline_sha256=models[0].sha256),
        exit_code=exit_code,
        setup_errors=setup_errors,
        checks=sorted(checks, key=lambda c: (order[c.device.serial], c.model.name)),
    )
