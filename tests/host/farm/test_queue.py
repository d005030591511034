"""The job queue against real PostgreSQL, without devices: claiming under contention, device claims,
leases and requeueing, priorities, cancelling, and what `lab jobs` says about unmatched jobs."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator

import pytest

from host.errors import NotFoundError, StoreError, UsageError
from host.farm import AgentHandle, JobSpec, open_farm_store
from host.store import Store

FACTS = {"serial": "emulator-5554", "kind": "emulated", "abis": ["x86_64"], "model": "Pixel 7"}
MODEL = [{"sha256": "0" * 64, "name": "m.tflite"}]


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    with open_farm_store(pg_url) as opened:
        yield opened


def _agent(store: Store, name: str, devices: list[dict] | None = None, heartbeat_s: float = 1.0
           ) -> tuple[AgentHandle, list[int]]:
    agent = store.register_agent(name, heartbeat_s)
    ids = store.register_devices(agent, [(f"{name}/{d['serial']}", d) for d in (devices or [FACTS])])
    return agent, list(ids.values())


def _spec(**target: str) -> JobSpec:
    return JobSpec(models=MODEL, params={"runs": 1}, trials=1, **target)


def test_concurrent_claimers_take_each_job_once(store: Store, pg_url: str) -> None:
    ids = store.submit_jobs([_spec(device_model="Pixel 7") for _ in range(60)])
    devices = [{**FACTS, "serial": f"s{i}"} for i in range(4)]
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        with open_farm_store(pg_url) as own:
            agent, device_ids = _agent(own, name, devices)
            while True:
                took = False
                for device_id in device_ids:
                    job = own.claim_job(agent, device_id, lease_s=60)
                    if job is not None:
                        took = True
                        with lock:
                            claimed.append(job.id)
                        assert own.finish_job(agent, job, "done")
                if not took and not own.list_jobs(statuses=["queued"]):
                    return

    threads = [threading.Thread(target=claimer, args=(f"agent{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)
    assert {j.status for j in store.list_jobs()} == {"done"}


def test_a_device_runs_one_job_at_a_time_across_agents(store: Store) -> None:
    store.submit_jobs([_spec(device_model="Pixel 7"), _spec(device_model="Pixel 7")])
    first, (device_id,) = _agent(store, "first")
    second = store.register_agent("second", 1.0)  # a second agent that sees the same device
    job = store.claim_job(first, device_id, lease_s=60)
    assert job is not None
    assert store.claim_job(second, device_id, lease_s=60) is None
    assert store.claim_job(first, device_id, lease_s=60) is None  # and not two jobs by the same agent
    assert [j.status for j in store.list_jobs()] == ["running", "queued"]
    assert store.finish_job(first, job, "done")
    assert store.claim_job(second, device_id, lease_s=60) is not None


def _next_expiry(store: Store, timeout: float = 60) -> tuple[list[int], list[int]]:
    """What ``requeue_expired`` does once a lease has lapsed: polled, so a slow machine only waits longer."""
    deadline = time.monotonic() + timeout
    while not any(outcome := store.requeue_expired()):
        assert time.monotonic() < deadline, "no lease lapsed"
        time.sleep(0.1)
    return outcome


def test_expired_lease_requeues_then_fails_after_the_attempt_limit(store: Store) -> None:
    (job_id,) = store.submit_jobs([JobSpec(models=MODEL, params={}, trials=1, device_model="Pixel 7",
                                           max_attempts=2)])
    dead, (device_id,) = _agent(store, "dead")
    live = store.register_agent("live", 1.0)
    first = store.claim_job(dead, device_id, lease_s=2)  # 2 s: a loaded machine may stall a second here
    assert first is not None and first.attempt == 1
    assert store.requeue_expired() == ([], [])  # lease still running
    assert _next_expiry(store) == ([job_id], [])
    (job,) = store.list_jobs()
    assert (job.status, job.attempt, job.holder) == ("queued", 1, None)
    assert "lease expired" in (job.error or "")
    assert not store.finish_job(dead, first, "done")  # the dead attempt cannot finish it any more
    second = store.claim_job(live, device_id, lease_s=2)
    assert second is not None and second.attempt == 2
    assert _next_expiry(store) == ([], [job_id])
    (job,) = store.list_jobs()
    assert job.status == "failed" and "gave up" in (job.error or "")


def test_heartbeat_renews_the_leases_of_running_jobs_only(store: Store) -> None:
    kept_id, dropped_id = store.submit_jobs([_spec(device_model="Pixel 7"), _spec(device_model="Pixel 7")])
    agent, device_ids = _agent(store, "a", [FACTS, {**FACTS, "serial": "second"}])
    kept = store.claim_job(agent, device_ids[0], lease_s=30)
    dropped = store.claim_job(agent, device_ids[1], lease_s=0.5)
    assert kept is not None and dropped is not None and kept.id == kept_id
    # Heartbeats renew the kept job for 30 s each (a busy machine may stall between them for seconds)
    # until the dropped one, left out of them, lapses after its 0.5 s.
    deadline = time.monotonic() + 60
    lapsed: list[int] = []
    while dropped_id not in lapsed:
        assert time.monotonic() < deadline, "the dropped job's lease never lapsed"
        time.sleep(0.2)
        store.heartbeat(agent, device_ids, [kept.id], lease_s=30)
        requeued, _ = store.requeue_expired()
        assert kept.id not in requeued
        lapsed += requeued
    assert store.job_is_mine(agent, kept.id, kept.attempt)
    assert [j.status for j in store.list_jobs(ids=[dropped_id])] == ["queued"]  # the agent had let it go
    other = store.register_agent("b", 1.0)
    assert store.claim_job(other, device_ids[1], lease_s=60) is not None  # its device claim lapsed too
    store.submit_jobs([_spec(device_model="Pixel 7")])
    assert store.claim_job(other, device_ids[0], lease_s=60) is None  # the renewed one did not


def test_priority_then_age_and_matching(store: Store) -> None:
    low, other_model, high, by_abi, by_serial = store.submit_jobs([
        _spec(device_model="Pixel 7"),
        _spec(device_model="Galaxy S23"),
        JobSpec(models=MODEL, params={}, trials=1, device_model="Pixel 7", priority=5),
        _spec(abi="x86_64"),
        _spec(device_serial="emulator-5554"),
    ])
    agent, (device_id,) = _agent(store, "a")
    order = []
    while (job := store.claim_job(agent, device_id, lease_s=60)) is not None:
        order.append(job.id)
        store.finish_job(agent, job, "done")
    assert order == [high, low, by_abi, by_serial]
    assert [j.id for j in store.list_jobs(statuses=["queued"])] == [other_model]
    assert store.jobs_without_device(store.list_jobs()) == {other_model}


def test_cancel(store: Store) -> None:
    queued, running = store.submit_jobs([_spec(device_model="nobody"), _spec(device_model="Pixel 7")])
    agent, (device_id,) = _agent(store, "a")
    job = store.claim_job(agent, device_id, lease_s=60)
    assert job is not None and job.id == running
    assert store.cancel_job(queued).status == "cancelled"
    assert store.cancel_job(running).status == "cancelled"
    assert not store.job_is_mine(agent, running, job.attempt)  # the agent stops before its next trial
    assert not store.finish_job(agent, job, "done")
    with pytest.raises(StoreError, match="already cancelled"):
        store.cancel_job(queued)
    with pytest.raises(NotFoundError, match="job 999 is not in"):
        store.cancel_job(999)
    with pytest.raises(UsageError, match="job status bogus is not one of"):
        store.list_jobs(statuses=["bogus"])


def test_device_states(store: Store) -> None:
    store.submit_jobs([_spec(device_model="Pixel 7")])
    # 2 s heartbeats: a busy machine may stall seconds between these lines without three being missed
    busy_agent, (busy_device,) = _agent(store, "busy", heartbeat_s=2.0)
    idle_agent, _ = _agent(store, "idle", [{**FACTS, "serial": "other"}], heartbeat_s=60)
    assert store.claim_job(busy_agent, busy_device, lease_s=60) is not None
    assert {d.host: d.state for d in store.farm_devices()} == {"busy": "busy", "idle": "idle"}
    store.stop_agent(idle_agent)
    deadline = time.monotonic() + 60  # the busy agent now misses three heartbeats (6 s)
    while (states := {d.host: d.state for d in store.farm_devices()})["busy"] != "offline":
        assert time.monotonic() < deadline, states
        time.sleep(0.2)
    assert states == {"busy": "offline", "idle": "offline"}


def test_models_are_stored_once(store: Store) -> None:
    assert store.store_model("a" * 64, "m.tflite", b"TFL3 bytes")
    assert not store.store_model("a" * 64, "renamed.tflite", b"TFL3 bytes")
    assert store.model_bytes("a" * 64) == b"TFL3 bytes"
    with pytest.raises(NotFoundError, match="submit it again"):
        store.model_bytes("b" * 64)


def test_skewed_agent_clocks_neither_steal_nor_lose_jobs(store: Store, pg_url: str) -> None:
    """Leases come from the database's clock: agents three hours ahead or behind change nothing."""
    skew = timedelta(hours=3)
    with open_farm_store(pg_url) as ahead, open_farm_store(pg_url) as behind:
        ahead.clock = lambda: datetime.now(timezone.utc) + skew
        behind.clock = lambda: datetime.now(timezone.utc) - skew
        first, second = store.submit_jobs([_spec(device_model="Pixel 7"), _spec(device_model="Pixel 7")])
        slow_agent, (slow_device,) = _agent(behind, "behind")
        held = behind.claim_job(slow_agent, slow_device, lease_s=60)
        assert held is not None and held.id == first
        # by its own clock the agent ahead would see that lease long expired: it must not take the job
        assert ahead.requeue_expired() == ([], [])
        fast_agent, (fast_device,) = _agent(ahead, "ahead", [{**FACTS, "serial": "other"}])
        lapsing = ahead.claim_job(fast_agent, fast_device, lease_s=0.2)
        assert lapsing is not None and lapsing.id == second
        # by its own clock the agent behind would see that lease live for hours: it must still requeue it
        deadline = time.monotonic() + 30
        requeued: list[int] = []
        while second not in requeued and time.monotonic() < deadline:
            requeued, _ = behind.requeue_expired()
            time.sleep(0.05)
        assert requeued == [second]
        assert [j.status for j in store.list_jobs(ids=[first])] == ["running"]
        states = {d.serial: d.state for d in store.farm_devices()}
        assert states == {"emulator-5554": "busy", "other": "idle"}  # heartbeats stamped by the database too


def test_a_job_whose_device_fails_set_up_moves_to_another_device_then_fails_with_every_reason(store: Store) -> None:
    (job_id,) = store.submit_jobs([JobSpec(models=MODEL, params={}, trials=1, device_model="Pixel 7", max_attempts=2)])
    broken_agent, (broken,) = _agent(store, "broken")
    other_agent, (other,) = _agent(store, "other", [{**FACTS, "serial": "second"}])
    first = store.claim_job(broken_agent, broken, lease_s=60)
    assert first is not None
    assert store.requeue_elsewhere(broken_agent, first, "no benchmark_model for armeabi-v7a") == "queued"
    (job,) = store.list_jobs()
    assert (job.status, job.attempt, job.failed_devices) == ("queued", 1, (broken,))  # the attempt counts
    assert "broken: no benchmark_model for armeabi-v7a" in (job.error or "")
    assert store.claim_job(broken_agent, broken, lease_s=60) is None  # not on the device it failed on
    second = store.claim_job(other_agent, other, lease_s=60)
    assert second is not None and second.id == job_id and second.attempt == 2
    assert store.requeue_elsewhere(other_agent, second, "device full") == "failed"
    (job,) = store.list_jobs()
    assert job.status == "failed" and job.error is not None
    assert job.error.startswith("could not be set up on 2 device(s):")
    assert "broken: no benchmark_model" in job.error and "other: device full" in job.error
    assert store.requeue_elsewhere(other_agent, second, "again") is None  # no longer the agent's
    assert {d.serial: d.state for d in store.farm_devices()} == {"emulator-5554": "idle", "second": "idle"}


def test_agents_starting_together_register_the_same_devices_and_models_without_error(store: Store, pg_url: str) -> None:
    """Two agents on one adb server start at once: both upsert the same new device rows (and two
    submitters the same new model); neither may fail on the other's insert."""
    rounds = 15
    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []
    seen: list[dict[str, int]] = []

    def register(name: str) -> None:
        with open_farm_store(pg_url) as own:
            agent = own.register_agent(name, 1.0)
            for round_ in range(rounds):
                devices = [(f"shared/s{round_}-{i}", {**FACTS, "serial": f"s{round_}-{i}"}) for i in range(3)]
                barrier.wait()
                try:
                    seen.append(own.register_devices(agent, devices))
                    own.store_model(f"{round_:064x}", "m.tflite", b"TFL3")
                except BaseException as exc:  # noqa: BLE001 - reported below with the round
                    errors.append(exc)

    threads = [threading.Thread(target=register, args=(name,)) for name in ("shared", "shared-twin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(seen) == 2 * rounds
    by_key: dict[str, set[int]] = {}
    for ids in seen:
        for key, device_id in ids.items():
            by_key.setdefault(key, set()).add(device_id)
    assert len(by_key) == 3 * rounds and all(len(ids) == 1 for ids in by_key.values())  # one row per device
    assert len(store.farm_devices()) == 3 * rounds
