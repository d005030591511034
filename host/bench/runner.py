"""``run_bench``: every model on every device, one worker thread per device, saved as one run.

Each device gets the same interleaved plan (``host.bench.plan``). A device that cannot be set up
(no tool, wrong ABI, no space, gone) has all its planned trials stored as failed with the reason;
a trial that fails is stored as failed; the other trials and devices go on. Trials are saved as
they finish, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import threading
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
from host.bench.trial import MAX_OUTPUT_BYTES, OP_PROFILING_FLAG, DeviceSession, max_output_bytes, run_trial
from host.devices.adb import adb_client
from host.devices.lock import device_lock, work_dir
from host.devices.tools import check_binary_path
from host.devices.shell import DeviceShell
from host.devices.elf import binary_abi
from host.errors import DeviceError, LabError, NoDeviceError, UsageError
from host.records import DeviceFacts, DeviceState, ModelFile, Trial, TrialParams

__all__ = ["BenchProgress", "BenchOutcome", "run_bench", "MAX_TEMP_WAIT_S"]

MAX_TEMP_WAIT_S = 300.0  # --max-temp waits at most this long per trial, then runs and keeps the state
_TEMP_POLL_S = 5.0


class BenchProgress(Protocol):
    """What the CLI shows while a benchmark runs. Calls come from worker threads, one at a time."""

    def start(self, total_trials: int, devices: Sequence[DeviceFacts]) -> None: ...

    def note(self, serial: str, message: str) -> None: ...

    def trial_done(self, trial: Trial) -> None: ...


class Store(Protocol):
    def start_run(self, kind: str, config: dict[str, Any]) -> int: ...

    def save_trial(self, trial: Trial) -> int: ...

    def finish_run(self, run_id: int, status: str) -> None: ...


@dataclass
class BenchOutcome:
    """A finished run. exit_code: 0 every trial ok, 1 some failed, 2 nothing could run."""

    run_id: int
    trials: list[Trial]
    summaries: list[Summary]
    exit_code: int
    setup_errors: dict[str, str] = field(default_factory=dict)  # serial -> why no trial could run there


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


MAX_TRIALS = 10_000  # per model and device: the plan is made up front, and each trial costs seconds anyway
MAX_RUNS = 10_000_000  # invokes per trial; beyond, one trial outlasts any --timeout worth setting


@dataclass
class _Job:
    client: adbutils.AdbClient
    models: Sequence[ModelFile]
    params: TrialParams
    plan: list[PlannedTrial]
    cooldown_s: float
    max_temp_c: float | None
    max_temp_wait_s: float
    store: Store
    run_id: int
    binary: Path | None
    home: Path
    reporter: _Reporter
    stop: threading.Event
    wait_for_device: bool = True  # another run holds the device: wait for it (False: fail its trials)
    max_output: int = MAX_OUTPUT_BYTES  # bytes of a trial's output read back


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
    """With --max-temp: the state once the device is cool enough (or the wait ran out)."""
    if job.max_temp_c is None:
        return None
    serial = session.facts.serial
    state = session.state.snapshot(session.fixed_performance)
    if state.max_temp_c is None:
        return state
    waited = 0.0
    while state.max_temp_c is not None and state.max_temp_c > job.max_temp_c and waited < job.max_temp_wait_s:
        job.reporter.note(serial, f"{state.max_temp_c:.1f} °C > --max-temp {job.max_temp_c:g} °C: waiting to cool")
        step = min(_TEMP_POLL_S, job.max_temp_wait_s - waited)
        if job.stop.wait(step):
            break
        waited += step
        state = session.state.snapshot(session.fixed_performance)
    if state.max_temp_c is not None and state.max_temp_c > job.max_temp_c:
        job.reporter.note(serial, f"still {state.max_temp_c:.1f} °C after {waited:g} s: running anyway (state recorded)")
    return state


@dataclass
class _DeviceResult:
    trials: list[Trial]
    setup_error: str | None = None


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
            held.enter_context(device_lock(shell, serial, wait=job.wait_for_device, note=note, stop=job.stop))
            session = prepare_session(shell, facts, job.models, binary=job.binary, home=job.home, note=note, work=work)
            session.max_output = job.max_output
        except LabError as exc:
            note(f"cannot run: {exc}")
            return _DeviceResult([_save(job, _failed_trial(job, facts, planned, str(exc))) for planned in job.plan], str(exc))
        held.callback(_clean_up, job, session, work)
        return _DeviceResult(_trials(job, session))


def _trials(job: _Job, session: DeviceSession) -> list[Trial]:
    trials: list[Trial] = []
    for planned in job.plan:
        if job.stop.is_set():
            break
        if planned.position > 0 and job.cooldown_s > 0 and job.stop.wait(job.cooldown_s):
            break
        try:
            before = _cool_state(job, session)
        except DeviceError:
            before = None  # run_trial takes its own snapshot and records why it fails
        trials.append(_save(job, run_trial(session, job.models[planned.model_index], job.params, planned, before)))
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
    models: list[ModelFile],
    devices: list[DeviceFacts],
    params: TrialParams,
    *,
    trials: int,
    cooldown_s: float,
    max_temp_c: float | None,
    store: Store,
    binary: Path | None,
    home: Path,
    config: dict[str, Any],
    progress: BenchProgress | None,
    run_kind: str = "bench",
    seed: int = 0,
    client: adbutils.AdbClient | None = None,
    max_temp_wait_s: float = MAX_TEMP_WAIT_S,
    wait_for_device: bool = True,
) -> BenchOutcome:
    """Benchmarks every model on every device and stores the trials as one run.

    Raises:
        UsageError: no models, a bad trial count / cooldown, or a bad $LAB_MAX_OUTPUT.
        ToolError: ``binary`` is missing or not an executable.
        NoDeviceError: no devices.
        StoreError: the store failed (the run is marked failed when it still can be).
        KeyboardInterrupt: after the workers finish their current trial; the run is marked
            interrupted and keeps every trial saved so far.

    Each device is locked for the run (``host.devices.lock``): a device another run holds is waited
    for, or with ``wait_for_device=False`` its trials are stored as failed with the holder named.
    """
    if not models:
        raise UsageError("no model to benchmark: pass one or more .tflite files")
    if not devices:
        raise NoDeviceError("no device to benchmark on")
    if not 1 <= trials <= MAX_TRIALS:
        raise UsageError(f"--trials must be between 1 and {MAX_TRIALS:,}, got {trials:,}")
    if not 1 <= params.runs <= MAX_RUNS:
        raise UsageError(f"--runs must be between 1 and {MAX_RUNS:,}, got {params.runs:,}")
    if cooldown_s < 0:
        raise UsageError(f"--cooldown must not be negative, got {cooldown_s:g}")
    if binary is not None:
        check_binary_path(binary)
        binary_abi(binary)  # an unreadable file or a non-executable fails here; a wrong ABI per device
    max_output = max_output_bytes()
    devices = list({d.serial: d for d in devices}.values())  # one worker per device, even if named twice
    plan = plan_trials(len(models), trials, seed)
    client = client or adb_client()
    run_id = store.start_run(run_kind, config)
    reporter = _Reporter(progress)
    job = _Job(
        client, models, params, plan, cooldown_s, max_temp_c, max_temp_wait_s, store, run_id, binary, home, reporter,
        threading.Event(), wait_for_device, max_output,
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
    exit_code = 0 if ok == len(all_trials) else (2 if ok == 0 else 1)
    store.finish_run(run_id, {0: "ok", 1: "partial", 2: "failed"}[exit_code])
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
    )
