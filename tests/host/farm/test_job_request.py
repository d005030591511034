"""A job's params are the bench request as JSON, decoded by the agent with the store's codec; jobs
queued by an older ``lab submit`` (TrialParams as JSON, trials in their own column) still decode."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest

from host.farm import FarmJob
from host.farm._submit import job_request
from host.records import BenchRequest, TrialParams, to_jsonable
from host.store._codec import DecodeError, from_jsonable


def _job(params: dict[str, Any], trials: int) -> FarmJob:
    return FarmJob(
        id=1, status="queued", priority=0, models=[], params=params, trials=trials, target="model Pixel 7",
        device_key=None, device_serial=None, device_model="Pixel 7", abi=None, attempt=0, max_attempts=3,
        holder=None, host_name=None, device_id=None, run_id=None, error=None,
        submitted_at=datetime.now(timezone.utc), started_at=None, finished_at=None,
    )


def test_a_request_round_trips_through_the_job_params() -> None:
    request = BenchRequest(
        params=TrialParams(threads=4, runs=7, warmup_runs=0, use_xnnpack=False, min_secs=0.5, extra_flags=("--x=1",)),
        trials=3, cooldown_s=1.5, max_temp_c=40.0, seed=9,
    )
    assert job_request(_job(to_jsonable(request), request.trials)) == request


def test_params_queued_by_an_older_submit_decode() -> None:
    old = {"threads": 2, "runs": 3, "warmup_runs": 0, "use_xnnpack": True, "min_secs": None, "timeout_s": 300.0,
           "extra_flags": []}
    assert job_request(_job(old, 4)) == BenchRequest(params=TrialParams(threads=2, runs=3, warmup_runs=0), trials=4)
    assert job_request(_job({}, 1)) == BenchRequest(trials=1)


def test_bad_params_name_the_field() -> None:
    with pytest.raises(DecodeError, match=r"job params\.params\.runs: expected an integer"):
        job_request(_job({"params": {"runs": "many"}, "trials": 1}, 1))


def test_a_stored_run_configuration_decodes_as_the_request() -> None:
    """What ``run_bench`` stores, and what ``lab bench`` stored before the record (params, trials,
    cooldown, max temperature, seed and binary at the top level), decode with the generic codec."""
    request = replace(BenchRequest(), trials=2, binary="/opt/benchmark_model")
    stored = {"command": "bench", "models": [], "devices": ["emulator-5554"], **to_jsonable(request)}
    assert from_jsonable(BenchRequest, stored) == request
    older = {"command": "bench", "models": [], "devices": [], "params": to_jsonable(TrialParams(runs=5)),
             "trials": 3, "cooldown_s": 0.0, "max_temp_c": None, "seed": 1, "binary": None}
    assert from_jsonable(BenchRequest, older) == BenchRequest(params=TrialParams(runs=5), trials=3, seed=1)
