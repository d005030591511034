"""``lab submit`` and ``lab jobs``: models stored once in the database, one job per target device."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from host.bench.models import model_file
from host.errors import UsageError
from host.farm._errors import FarmError, JobTimeoutError
from host.records import BenchRequest, TrialParams, to_jsonable
from host.store._codec import from_jsonable
from host.store.queries.farm import FarmDevice, FarmJob, FarmQueries, JobSpec

__all__ = ["Target", "submit_jobs", "job_request", "wait_for_jobs", "FINISHED"]

FINISHED = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class Target:
    """Which devices the jobs are for: exactly one of the fields (``all`` True counts as one)."""

    serial: str | None = None
    device_model: str | None = None
    abi: str | None = None
    all: bool = False

    def check(self) -> None:
        chosen = [self.serial is not None, self.device_model is not None, self.abi is not None, self.all]
        if sum(chosen) != 1:
            raise UsageError(
                "choose the devices with exactly one of --device SERIAL, --device-model NAME, --abi ABI or --all"
            )


def _specs(target: Target, devices: Sequence[FarmDevice], base: JobSpec) -> list[JobSpec]:
    """One spec per matching registered device; a device model gets a single job any such device may take."""
    online = [d for d in devices if d.state != "offline"]
    if target.device_model is not None:
        return [JobSpec(**{**base.__dict__, "device_model": target.device_model})]
    if target.serial is not None:
        keys = [d.key for d in devices if d.serial == target.serial]
        if not keys:  # not registered (yet): any agent that later serves this serial takes it
            return [JobSpec(**{**base.__dict__, "device_serial": target.serial})]
        return [JobSpec(**{**base.__dict__, "device_key": key}) for key in keys]
    if target.abi is not None:
        keys = [d.key for d in online if target.abi in d.abis]
        if not keys:
            return [JobSpec(**{**base.__dict__, "abi": target.abi})]
        return [JobSpec(**{**base.__dict__, "device_key": key}) for key in keys]
    if not online:
        raise FarmError("--all found no online device in the farm: start `lab agent` on a host with devices")
    return [JobSpec(**{**base.__dict__, "device_key": d.key}) for d in online]


def submit_jobs(
    store: FarmQueries,
    paths: Sequence[Path],
    target: Target,
    request: BenchRequest,
    *,
    priority: int = 0,
    max_attempts: int = 3,
) -> list[int]:
    """Checks the models (TFLite only), stores their bytes once, queues the jobs; returns their ids.

    Each job's params are ``request`` as JSON (``to_jsonable``); the agent decodes them with
    ``job_request``.

    Raises:
        UsageError: no model, a file that is missing or not TFLite, a bad target, setting or count,
            or a ``binary`` (a path on this host means nothing on the agent's).
        FarmError: ``--all`` with no online device.
    """
    target.check()
    if not paths:
        raise UsageError("no model to submit: pass one or more .tflite files")
    request.check()
    if request.binary is not None:
        raise UsageError("a farm job cannot bring its own benchmark_model: each agent uses its devices' tools")
    if max_attempts < 1:
        raise UsageError(f"max attempts must be at least 1, got {max_attempts}")
    files = [model_file(Path(path)) for path in paths]  # refuses non-TFLite files here, not at the agent
    base = JobSpec(
        models=[{"sha256": f.sha256, "name": f.name} for f in files],
        params=to_jsonable(request),
        trials=request.trials,
        priority=priority,
        max_attempts=max_attempts,
    )
    specs = _specs(target, store.farm_devices(), base)
    for f in files:
        store.store_model(f.sha256, f.name, Path(f.path).read_bytes())
    return store.submit_jobs(specs)


def job_request(job: FarmJob) -> BenchRequest:
    """The request a job was submitted with, from its params: a ``BenchRequest`` as JSON, or (jobs
    queued before the record existed) ``TrialParams`` as JSON with the trials in their own column.

    Raises:
        DecodeError: params that fit neither shape; the message names the field.
    """
    if "params" in job.params:
        return from_jsonable(BenchRequest, job.params, "job params")
    return BenchRequest(params=from_jsonable(TrialParams, job.params, "job params"), trials=job.trials)


def wait_for_jobs(
    store: FarmQueries,
    ids: Sequence[int],
    *,
    timeout_s: float | None,
    poll_s: float = 0.5,
    on_update: Callable[[list[FarmJob]], None] | None = None,
) -> list[FarmJob]:
    """Polls until every job in ``ids`` is done, failed or cancelled; returns them.

    Raises:
        JobTimeoutError: ``timeout_s`` passed first; the message says which jobs are left and why.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        jobs = store.list_jobs(ids=list(ids))
        if on_update is not None:
            on_update(jobs)
        left = [job for job in jobs if job.status not in FINISHED]
        if not left:
            return jobs
        if deadline is not None and time.monotonic() >= deadline:
            lonely = store.jobs_without_device(left)
            parts = [
                f"{job.id} ({job.status}{', no matching device is registered' if job.id in lonely else ''})"
                for job in left
            ]
            raise JobTimeoutError(
                f"gave up after {timeout_s:g} s with {len(left)} job(s) unfinished: {', '.join(parts)}; "
                "they stay in the queue (`lab jobs`, `lab jobs cancel ID`)"
            )
        time.sleep(poll_s)
