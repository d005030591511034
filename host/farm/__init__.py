"""The device farm across hosts (issue 9): a job queue in the shared PostgreSQL store.

``submit_jobs`` queues benchmarks for devices of any host; ``FarmAgent`` runs on each host with
devices, claims jobs for its own devices and runs them with the bench code; ``open_farm_store``
opens the store with the farm's queries.
"""

from __future__ import annotations

from host.farm._agent import AgentOptions, AgentReport, FarmAgent, device_key
from host.farm._errors import FarmError, FarmNeedsServerError, JobTimeoutError
from host.farm._store import is_sqlite, open_farm_store
from host.farm._submit import FINISHED, Target, submit_jobs, wait_for_jobs
from host.store.queries.farm import AgentHandle, FarmDevice, FarmJob, JobSpec

__all__ = [
    "AgentHandle",
    "AgentOptions",
    "AgentReport",
    "FINISHED",
    "FarmAgent",
    "FarmDevice",
    "FarmError",
    "FarmJob",
    "FarmNeedsServerError",
    "JobSpec",
    "JobTimeoutError",
    "Target",
    "device_key",
    "is_sqlite",
    "open_farm_store",
    "submit_jobs",
    "wait_for_jobs",
]
