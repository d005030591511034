"""Two and more `lab agent` processes against one real PostgreSQL, each with its own adb server and
emulated devices: jobs run exactly once, results land in history, a killed agent's job moves on."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from host.farm import open_farm_store

from .conftest import MODELS, lab, wait_until

FAST = ("--trials", "1", "--runs", "3", "--warmup", "0")


def _jobs(db_url: str, home: Path) -> list[dict]:
    result = lab(db_url, home, "jobs", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["jobs"]


def _measurements_per_run(db_url: str) -> dict[int, int]:
    with open_farm_store(db_url) as store:
        return {r.id: r.trials_ok + r.trials_failed for r in store.list_runs(limit=None)}


def test_two_agents_finish_every_job_exactly_once(pg_url, farm_host_factory, tmp_path):
    alpha = farm_host_factory("alpha", devices=2, model="Pixel 7")
    beta = farm_host_factory("beta", devices=2, model="Pixel 7")
    alpha.start_agent(pg_url)
    beta.start_agent(pg_url)
    wait_until(lambda: len(json.loads(lab(pg_url, tmp_path, "jobs", "--json").stdout or '{"jobs": []}')["jobs"]) == 0
               and _online(pg_url) == 4, 60, "four devices online")
    ids = []
    for _ in range(10):
        submitted = lab(pg_url, tmp_path, "submit", str(MODELS / "add.tflite"), str(MODELS / "conv.tflite"),
                        "--device-model", "Pixel 7", *FAST, "--json")
        assert submitted.returncode == 0, submitted.stderr
        ids += [job["id"] for job in json.loads(submitted.stdout)["jobs"]]
    assert len(ids) == 10
    waited = lab(pg_url, tmp_path, "submit", str(MODELS / "add.tflite"), "--device-model", "Pixel 7", *FAST,
                 "--wait", "--timeout", "90", "--json", timeout=120)
    assert waited.returncode == 0, waited.stderr
    ids += [job["id"] for job in json.loads(waited.stdout)["jobs"]]
    wait_until(lambda: all(j["status"] == "done" for j in _jobs(pg_url, tmp_path)), 90, "every job done")

    jobs = _jobs(pg_url, tmp_path)
    assert sorted(j["id"] for j in jobs) == sorted(ids)
    assert all(j["attempt"] == 1 for j in jobs)
    assert {j["host_name"] for j in jobs} == {"alpha", "beta"}  # both agents took work
    runs = _measurements_per_run(pg_url)
    job_runs = [j["run_id"] for j in jobs]
    assert len(set(job_runs)) == len(jobs)  # one run per job
    for job in jobs:
        assert runs[job["run_id"]] == len(job["models"]), job  # 1 trial per model, nothing twice

    history = lab(pg_url, tmp_path, "history", "--json")
    assert history.returncode == 0, history.stderr
    assert "add.tflite" in history.stdout and "conv.tflite" in history.stdout

    assert alpha.stop_agent() == 0 and beta.stop_agent() == 0
    assert "stopped" in alpha.log_text()
    devices = _farm_devices(pg_url)
    assert len(devices) == 4 and {d.state for d in devices} == {"offline"}


def _farm_devices(db_url: str):
    with open_farm_store(db_url) as store:
        return store.farm_devices()


def _online(db_url: str) -> int:
    return sum(d.state != "offline" for d in _farm_devices(db_url))


def test_killed_agent_job_is_requeued_to_the_other_agent(pg_url, farm_host_factory, tmp_path):
    slow = farm_host_factory("slow", devices=1, model="Pixel 8")
    spare = farm_host_factory("spare", devices=1, model="Pixel 8")
    slow.start_agent(pg_url, lease=3, heartbeat=0.5)
    wait_until(lambda: _online(pg_url) == 1, 60, "the first agent's device online")
    # four trials of at least 2 s each: the job is still running when its first trial is saved
    submitted = lab(pg_url, tmp_path, "submit", str(MODELS / "conv.tflite"), "--device-model", "Pixel 8",
                    "--trials", "4", "--runs", "3", "--warmup", "0", "--min-secs", "2", "--json")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["jobs"][0]["id"]
    first_run = wait_until(lambda: _jobs(pg_url, tmp_path)[0]["run_id"], 60, "the job's run")
    wait_until(lambda: _measurements_per_run(pg_url)[first_run] >= 1, 60, "the first trial saved")
    slow.stop_agent(signal.SIGKILL)
    assert _jobs(pg_url, tmp_path)[0]["status"] == "running"
    killed_trials = _measurements_per_run(pg_url)[first_run]
    assert killed_trials < 4

    spare.start_agent(pg_url, lease=3, heartbeat=0.5)
    job = wait_until(lambda: next((j for j in _jobs(pg_url, tmp_path) if j["status"] == "done"), None), 120,
                     "the job to finish on the other agent")
    assert job["id"] == job_id
    assert job["host_name"] == "spare" and job["attempt"] == 2
    assert job["run_id"] != first_run
    runs = _measurements_per_run(pg_url)
    assert runs[job["run_id"]] == 4  # the second attempt's run has its own trials, each once
    assert runs[first_run] == killed_trials  # and the dead attempt's run got nothing more
    with open_farm_store(pg_url) as store:
        assert store.get_run(first_run).status == "interrupted"
        assert store.get_run(job["run_id"]).status == "ok"
        states = {d.host: d.state for d in store.farm_devices()}
    assert states == {"slow": "offline", "spare": "idle"}
    assert spare.stop_agent() == 0


def test_two_agents_on_the_same_devices_never_share_one(pg_url, farm_host_factory, tmp_path):
    shared = farm_host_factory("shared", devices=2, model="Pixel 9")
    shared.start_agent(pg_url)
    twin = shared.start_agent(pg_url, name="shared-twin")
    logs = [shared.home / "agent-shared.log", shared.home / "agent-shared-twin.log"]
    wait_until(lambda: all("serving 2 device(s)" in log.read_text() for log in logs), 60,
               "both agents to serve the two devices")
    assert _online(pg_url) == 2  # one row per device, whichever agent registered it last
    submitted = lab(pg_url, tmp_path, "submit", str(MODELS / "add.tflite"), "--device-model", "Pixel 9", *FAST,
                    "--json")
    ids = [json.loads(submitted.stdout)["jobs"][0]["id"]]
    for _ in range(7):
        again = lab(pg_url, tmp_path, "submit", str(MODELS / "add.tflite"), "--device-model", "Pixel 9", *FAST,
                    "--json")
        ids.append(json.loads(again.stdout)["jobs"][0]["id"])
    wait_until(lambda: all(j["status"] == "done" for j in _jobs(pg_url, tmp_path)), 90, "every job done")
    jobs = _jobs(pg_url, tmp_path)
    assert sorted(j["id"] for j in jobs) == sorted(ids) and all(j["attempt"] == 1 for j in jobs)
    by_device: dict[int, list[tuple[str, str]]] = {}
    for job in jobs:
        by_device.setdefault(job["device_id"], []).append((job["started_at"], job["finished_at"]))
    for spans in by_device.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end <= start, spans  # one job at a time per device
    assert shared.stop_agent() == 0
    twin.send_signal(signal.SIGTERM)
    assert twin.wait(60) == 0


def test_cancelling_a_running_job_stops_it_and_frees_the_device(pg_url, farm_host_factory, tmp_path):
    host = farm_host_factory("solo", devices=1, model="Pixel 6")
    host.start_agent(pg_url)
    wait_until(lambda: _online(pg_url) == 1, 60, "the device online")
    submitted = lab(pg_url, tmp_path, "submit", str(MODELS / "add.tflite"), "--device-model", "Pixel 6",
                    "--trials", "4", "--runs", "3", "--warmup", "0", "--min-secs", "2", "--json")
    job_id = json.loads(submitted.stdout)["jobs"][0]["id"]
    run_id = wait_until(lambda: _jobs(pg_url, tmp_path)[0]["run_id"], 60, "the job's run")
    wait_until(lambda: _measurements_per_run(pg_url)[run_id] >= 1, 60, "the first trial saved")
    cancelled = lab(pg_url, tmp_path, "jobs", "cancel", str(job_id))
    assert cancelled.returncode == 0, cancelled.stderr
    wait_until(lambda: "no longer ours" in host.log_text(), 30, "the agent to stop the job")
    assert _measurements_per_run(pg_url)[run_id] < 4
    assert [d.state for d in _farm_devices(pg_url)] == ["idle"]
    follow_up = lab(pg_url, tmp_path, "submit", str(MODELS / "add.tflite"), "--device-model", "Pixel 6", *FAST,
                    "--wait", "--timeout", "60", "--json", timeout=90)
    assert follow_up.returncode == 0, follow_up.stderr  # the device was let go: the next job runs
    assert host.stop_agent() == 0


def test_agent_picks_up_attached_devices_and_drops_removed_ones(pg_url, farm_host_factory):
    host = farm_host_factory("desk", devices=1, model="Pixel 5")
    host.start_agent(pg_url, extra=("--rediscover", "0.5"))
    wait_until(lambda: _online(pg_url) == 1, 60, "the first device online")
    added = farm_host_factory.add_device(host, "Pixel 5")
    wait_until(lambda: _online(pg_url) == 2, 30, "the attached device online")
    host.client.disconnect(added.address)
    states = wait_until(
        lambda: (lambda s: s if s.get(added.address) == "offline" else None)(
            {d.serial: d.state for d in _farm_devices(pg_url)}), 30, "the removed device offline")
    assert states[host.serials[0]] == "idle"
    assert host.stop_agent() == 0


def test_sigterm_gives_a_running_job_back_and_another_agent_finishes_it(pg_url, farm_host_factory, tmp_path):
    leaving = farm_host_factory("leaving", devices=1, model="Pixel 4")
    leaving.start_agent(pg_url)
    wait_until(lambda: _online(pg_url) == 1, 60, "the device online")
    submitted = lab(pg_url, tmp_path, "submit", str(MODELS / "add.tflite"), "--device-model", "Pixel 4",
                    "--trials", "4", "--runs", "3", "--warmup", "0", "--min-secs", "2", "--json")
    job_id = json.loads(submitted.stdout)["jobs"][0]["id"]
    first_run = wait_until(lambda: _jobs(pg_url, tmp_path)[0]["run_id"], 60, "the job's run")
    wait_until(lambda: _measurements_per_run(pg_url)[first_run] >= 1, 60, "the first trial saved")
    assert leaving.stop_agent(signal.SIGTERM) == 0  # within the current trial, not the whole job
    assert "given back to the queue" in leaving.log_text()
    (job,) = _jobs(pg_url, tmp_path)
    assert (job["status"], job["attempt"], job["run_id"]) == ("queued", 0, None)  # the attempt does not count
    assert "released by agent leaving" in job["error"]
    assert _measurements_per_run(pg_url)[first_run] < 4
    with open_farm_store(pg_url) as store:
        assert store.get_run(first_run).status == "interrupted"
    taker = farm_host_factory("taker", devices=1, model="Pixel 4")
    taker.start_agent(pg_url)
    done = wait_until(lambda: (lambda j: j if j["status"] == "done" else None)(_jobs(pg_url, tmp_path)[0]), 120,
                      "the job done by the other agent")
    assert done["id"] == job_id and done["attempt"] == 1 and done["host_name"] == "taker"
    assert _measurements_per_run(pg_url)[done["run_id"]] == 4
    assert taker.stop_agent() == 0
