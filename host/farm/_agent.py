"""``lab agent``: serve this host's devices to the farm until told to stop.

One loop claims queued jobs for idle devices (at most ``max_parallel`` at once, one per device)
and runs each with the bench code in a worker thread, into a run of its own tied to the job. A
heartbeat thread keeps the host and its devices alive in the database, renews the leases of what
the agent holds, and requeues the jobs of agents whose leases ran out (any agent does this, so a
farm recovers as long as one agent runs). Stopping claims nothing more; ``release()`` (SIGTERM in
the CLI) also gives running jobs back: each stops after its current trial and is requeued for
another device without counting the attempt (its partial run is closed as interrupted), so a host
taken down for maintenance loses no job. ``stop`` alone lets running jobs finish.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import adbutils

from host.bench.models import model_file
from host.bench.runner import run_bench
from host.devices.discovery import list_devices
from host.errors import DeviceError, LabError, StoreError, UsageError
from host.farm._submit import job_request
from host.records import DeviceFacts, ModelFile, OutputCheck, Trial, to_jsonable
from host.store.queries.farm import AgentHandle, FarmJob, FarmQueries

__all__ = ["AgentOptions", "AgentReport", "FarmAgent", "device_key"]


def device_key(serial: str, machine: str | None = None) -> str:
    """A device's identity in the farm: TCP serials (127.0.0.1:5555) only mean something on one machine."""
    return f"{machine or socket.gethostname()}/{serial}"


@dataclass(frozen=True)
class AgentOptions:
    host_name: str
    max_parallel: int = 4
    lease_s: float = 60.0
    heartbeat_s: float = 10.0
    poll_s: float = 1.0
    rediscover_s: float = 30.0  # how often to look for devices attached or gone since the start

    def check(self) -> None:
        if not self.host_name.strip():
            raise UsageError("--host-name must not be empty")
        if self.max_parallel < 1:
            raise UsageError(f"--max-parallel must be at least 1, got {self.max_parallel}")
        if self.rediscover_s <= 0:
            raise UsageError(f"--rediscover must be positive, got {self.rediscover_s:g}")
        if self.heartbeat_s <= 0:
            raise UsageError(f"--heartbeat must be positive, got {self.heartbeat_s:g}")
        if self.lease_s < 2 * self.heartbeat_s:
            raise UsageError(
                f"--lease ({self.lease_s:g} s) must be at least twice --heartbeat ({self.heartbeat_s:g} s), "
                "or a live agent's jobs would be requeued between two renewals"
            )


@dataclass
class AgentReport:
    """What an agent did before it stopped: job ids by how they ended."""

    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)  # cancelled or requeued while running here
    released: list[int] = field(default_factory=list)  # given back to the queue when the agent was stopped


class _JobLost(LabError):
    """The job stopped being this agent's (cancelled, or its lease expired and another agent took it)."""


class _JobReleased(LabError):
    """The agent is giving its jobs back (SIGTERM): this one stops after its current trial."""


class _JobStore:
    """The store as ``run_bench`` sees it for one job attempt: the run is tied to the job, and trials
    are written only while the attempt is still this agent's."""

    def __init__(self, store: FarmQueries, agent: AgentHandle, job: FarmJob, releasing: threading.Event) -> None:
        self._store = store
        self._agent = agent
        self._job = job
        self._releasing = releasing

    def start_run(self, kind: str, config: dict[str, Any]) -> int:
        run_id = self._store.start_run(kind, config)  # type: ignore[attr-defined]
        if not self._store.attach_run(self._agent, self._job.id, self._job.attempt, run_id):
            self._store.finish_run(run_id, "interrupted")  # type: ignore[attr-defined]
            raise _JobLost(f"job {self._job.id} is no longer this agent's")
        return run_id

    def save_trial(self, trial: Trial) -> int:
        if not self._store.job_is_mine(self._agent, self._job.id, self._job.attempt):
            raise _JobLost(f"job {self._job.id} is no longer this agent's")
        saved = self._store.save_trial(trial)  # type: ignore[attr-defined]
        if self._releasing.is_set():
            raise _JobReleased(f"job {self._job.id} released by its agent")
        return saved

    def finish_run(self, run_id: int, status: str) -> None:
        self._store.finish_run(run_id, "interrupted" if self._releasing.is_set() else status)  # type: ignore[attr-defined]

    def save_output_check(self, check: OutputCheck) -> None:
        if not self._store.job_is_mine(self._agent, self._job.id, self._job.attempt):
            raise _JobLost(f"job {self._job.id} is no longer this agent's")
        self._store.save_output_check(check)  # type: ignore[attr-defined]


class FarmAgent:
    """One agent process's work. ``run(stop)`` returns when ``stop`` is set and running jobs finished."""

    def __init__(
        self,
        store: FarmQueries,
        home: Path,
        options: AgentOptions,
        client: adbutils.AdbClient,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        options.check()
        self._store = store
        self._home = home
        self._options = options
        self._client = client
        self._log = log
        self._devices: dict[int, DeviceFacts] = {}  # farm device id -> facts
        self._busy: dict[int, Future[None]] = {}  # device id -> its job's worker
        self._jobs: dict[int, int] = {}  # device id -> the job running there
        self._lock = threading.Lock()
        self._releasing = threading.Event()
        self.report = AgentReport()
        self.agent: AgentHandle | None = None

    # -- set-up ---------------------------------------------------------------------------------

    def _discover(self, agent: AgentHandle) -> None:
        """Registers the devices adb has ready now; one that left stops heartbeating (and shows offline)."""
        ready = [entry.facts for entry in list_devices(self._client) if entry.facts is not None]
        ids = self._store.register_devices(agent, [(device_key(f.serial), to_jsonable(f)) for f in ready])
        by_key = {device_key(f.serial): f for f in ready}
        devices = {device_id: by_key[key] for key, device_id in ids.items()}
        with self._lock:
            changed = devices.keys() != self._devices.keys()
            self._devices = devices
        if changed:
            names = ", ".join(f"{f.serial} ({f.model or 'unknown model'})" for f in ready) or "none"
            self._log(f"agent {agent.name}: serving {len(ready)} device(s): {names}")

    # -- models ---------------------------------------------------------------------------------

    def _model(self, sha256: str, name: str) -> ModelFile:
        """The job's model as a local file, fetched from the database once per host."""
        folder = self._home / "farm" / "models" / sha256
        path = folder / Path(name).name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            data = self._store.model_bytes(sha256)
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}"
            partial.write_bytes(data)
            partial.replace(path)
        return model_file(path)

    # -- one job --------------------------------------------------------------------------------

    def _run_job(self, agent: AgentHandle, job: FarmJob, facts: DeviceFacts) -> None:
        try:
            models = [self._model(m["sha256"], m["name"]) for m in job.models]
            outcome = run_bench(
                job_request(job),
                models,
                [facts],
                store=_JobStore(self._store, agent, job, self._releasing),
                home=self._home,
                config={"command": "farm", "job": job.id, "attempt": job.attempt, "agent": agent.name},
                progress=None,
                client=self._client,
            )
        except _JobReleased:
            self._finish(agent, job, "queued", f"released by agent {agent.name} while stopping; requeued")
            return
        except _JobLost:
            self.report.lost.append(job.id)
            self._log(f"job {job.id}: no longer ours (cancelled or requeued); stopped")
            if job.device_id is not None:
                self._store.release_device(agent, job.device_id)
            return
        except (LabError, OSError, ValueError, TypeError) as exc:
            self._finish(agent, job, "failed", f"{type(exc).__name__}: {exc}")
            return
        if outcome.exit_code == 2 and outcome.setup_errors:
            reason = "; ".join(outcome.setup_errors.values())
            status = self._store.requeue_elsewhere(agent, job, f"{facts.serial}: {reason} (run {outcome.run_id})")
            self._log(f"job {job.id}: could not be set up on {facts.serial} ({reason}); "
                      + ("requeued for another device" if status == "queued" else f"now {status}"))
            (self.report.failed if status == "failed" else self.report.released).append(job.id)
        elif outcome.exit_code == 2:
            self._finish(agent, job, "failed", f"nothing could run: every trial failed (run {outcome.run_id})")
        else:
            note = None if outcome.exit_code == 0 else "some trials failed"
            self._finish(agent, job, "done", note)

    def _finish(self, agent: AgentHandle, job: FarmJob, status: str, error: str | None) -> None:
        try:
            finished = self._store.finish_job(agent, job, status, error)
        except StoreError as exc:  # its lease lapses (no more renewals) and another attempt runs it
            self._log(f"job {job.id}: could not record it as {status} ({exc}); it will be requeued")
            return
        if finished and status == "queued":
            self.report.released.append(job.id)
            self._log(f"job {job.id}: given back to the queue ({error})")
        elif finished:
            (self.report.done if status == "done" else self.report.failed).append(job.id)
            self._log(f"job {job.id}: {status}{f' ({error})' if error else ''}")
        else:
            self.report.lost.append(job.id)
            self._log(f"job {job.id}: finished here but it was no longer ours; result not counted")

    # -- loops ----------------------------------------------------------------------------------

    def _heartbeat_loop(self, agent: AgentHandle, stop: threading.Event) -> None:
        beats = 0
        every = max(1, round(self._options.rediscover_s / self._options.heartbeat_s))
        while not stop.wait(self._options.heartbeat_s):
            beats += 1
            try:
                if beats % every == 0:
                    self._discover(agent)
                with self._lock:
                    ids = list(self._devices)
                    jobs = [self._jobs[d] for d, f in self._busy.items() if not f.done() and d in self._jobs]
                self._store.heartbeat(agent, ids, jobs, self._options.lease_s)
                requeued, failed = self._store.requeue_expired()
                if requeued:
                    self._log(f"requeued job(s) {', '.join(map(str, requeued))} whose agent stopped answering")
                if failed:
                    self._log(f"job(s) {', '.join(map(str, failed))} failed: out of attempts")
            except (StoreError, DeviceError) as exc:
                self._log(f"heartbeat failed: {exc}")

    def _claim(self, agent: AgentHandle, pool: ThreadPoolExecutor) -> None:
        with self._lock:
            for device_id in [d for d, f in self._busy.items() if f.done()]:
                del self._busy[device_id]
            idle = [(d, facts) for d, facts in self._devices.items() if d not in self._busy]
        for device_id, facts in idle:
            if len(self._busy) >= self._options.max_parallel:
                return
            job = self._store.claim_job(agent, device_id, self._options.lease_s)
            if job is None:
                continue
            self._log(f"job {job.id}: running on {facts.serial} (attempt {job.attempt})")
            with self._lock:
                self._jobs[device_id] = job.id
                self._busy[device_id] = pool.submit(self._run_job, agent, job, facts)

    def release(self) -> None:
        """Gives running jobs back: each stops after its current trial and is requeued (see the module)."""
        self._releasing.set()

    def run(self, stop: threading.Event) -> AgentReport:
        """Serves the farm until ``stop`` is set; then finishes running jobs and lets the devices go."""
        agent = self._store.register_agent(self._options.host_name, self._options.heartbeat_s)
        self.agent = agent
        self._discover(agent)
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat_loop, args=(agent, beat_stop), name="heartbeat", daemon=True)
        beat.start()
        pool = ThreadPoolExecutor(max_workers=self._options.max_parallel, thread_name_prefix="job")
        try:
            self._store.requeue_expired()
            while not stop.is_set():
                try:
                    self._claim(agent, pool)
                except StoreError as exc:
                    self._log(f"claiming failed: {exc}")
                stop.wait(self._options.poll_s)
            running = len([f for f in self._busy.values() if not f.done()])
            if running:
                what = "giving back" if self._releasing.is_set() else "letting finish"
                self._log(f"stopping: {what} {running} running job(s)")
        finally:
            pool.shutdown(wait=True)
            beat_stop.set()
            beat.join()
            self._store.stop_agent(agent)
            self._log(f"agent {agent.name}: stopped")
        return self.report

