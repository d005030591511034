"""The farm's job queue on real PostgreSQL: claim throughput and latency, and submit-to-first-result.

    bash .ci/postgres.sh                                  # a throwaway server; prints LAB_TEST_PG_URL
    .venv/bin/python benchmarks/farm_queue.py             # uses $LAB_TEST_PG_URL (or the script's env file)
    .venv/bin/python benchmarks/farm_queue.py --jobs 4000 --claimers 1 2 4 8 --db postgresql+psycopg://…

Throughput: ``--jobs`` tiny jobs (any device of one model may take them) are queued, then 1, 2
and 4 claimer processes — each an agent with 4 registered devices — claim and finish jobs as fast
as the queue lets them (``claim_job`` then ``finish_job``, no benchmark), until the queue is
empty. Reported: jobs/s and the median and p95 latency of one ``claim_job`` call.

First result: a real ``lab agent`` process with one emulated device on a private adb server,
idle on an empty queue; a 1-trial job of add.tflite is submitted and the time until its first
trial is in the database is measured, with the agent's default 1 s queue poll and with 0.1 s.

Each run uses a scratch database on the server, dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import adbutils
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from device_agent.emulator.launch import spawn
from host.farm import JobSpec, Target, open_farm_store, submit_jobs
from host.records import BenchRequest, TrialParams
from host.store import Store

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "tests" / "fixtures" / "models" / "add.tflite"
DEADLINE_S = 120.0  # any one wait below: past it the benchmark stops with the agent's log
ENV_FILE = Path(os.environ.get("LAB_CI_PG_ROOT", "/tmp/lab-ci-postgres")) / "env"
DEVICES_PER_CLAIMER = 4


def _server_url(given: str | None) -> str:
    url = given or os.environ.get("LAB_TEST_PG_URL")
    if not url and ENV_FILE.is_file():
        url = ENV_FILE.read_text().strip().removeprefix("export LAB_TEST_PG_URL=")
    if not url:
        sys.exit("no PostgreSQL: run `bash .ci/postgres.sh` and pass --db or set LAB_TEST_PG_URL")
    return url


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    name = f"lab_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _claimer(url: str, name: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:
    with open_farm_store(url) as store:
        agent = store.register_agent(name, 60.0)
        facts = [{"serial": f"{name}-{i}", "abis": ["x86_64"], "model": "bench"} for i in range(DEVICES_PER_CLAIMER)]
        device_ids = list(store.register_devices(agent, [(f"{name}/{f['serial']}", f) for f in facts]).values())
        start.wait()
        latencies, done = [], 0
        while True:
            took = False
            for device_id in device_ids:
                began = time.perf_counter()
                job = store.claim_job(agent, device_id, lease_s=60)
                latencies.append(time.perf_counter() - began)
                if job is not None:
                    store.finish_job(agent, job, "done")
                    done += 1
                    took = True
            if not took:
                break
        out.put((done, latencies, time.perf_counter()))


def claim_throughput(server: str, jobs: int, claimers: int) -> tuple[float, float, float]:
    """(jobs/s, median claim ms, p95 claim ms) with ``claimers`` processes draining ``jobs`` jobs."""
    with scratch_database(server) as url:
        with open_farm_store(url) as store:
            spec = JobSpec(models=[{"sha256": "0" * 64, "name": "tiny.tflite"}], params={}, trials=1,
                           device_model="bench")
            store.submit_jobs([spec] * jobs)
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_claimer, args=(url, f"c{i}", start, out)) for i in range(claimers)]
        for p in procs:
            p.start()
        time.sleep(3.0)  # every claimer connected and registered
        began = time.perf_counter()
        start.set()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        elapsed = max(r[2] for r in results) - began
        total = sum(r[0] for r in results)
        assert total == jobs, f"claimed {total} of {jobs}"
        latencies = sorted(x for r in results for x in r[1])
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        return total / elapsed, statistics.median(latencies) * 1000, p95 * 1000


def _first_trial_saved(store: Store, job_id: int) -> bool:
    (job,) = store.list_jobs(ids=[job_id])
    if job.run_id is None:
        return False
    run = store.get_run(job.run_id)
    return run.trials_ok + run.trials_failed > 0


def _wait(condition: Callable[[], bool], poll_s: float, agent: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Polls ``condition`` until it holds; a dead agent or DEADLINE_S without it stops the benchmark."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if agent.poll() is not None or time.monotonic() > deadline:
            why = f"the agent exited with {agent.returncode}" if agent.poll() is not None else f"{DEADLINE_S:g} s passed"
            raise SystemExit(f"waiting for {what}: {why}; its log:\n{log.read_text()[-3000:]}")
        time.sleep(poll_s)


def first_result(server: str, poll_s: float, repeats: int) -> list[float]:
    """Seconds from submit to the first trial in the database, on an idle one-device farm."""
    adb = adbutils.adb_path()
    times = []
    with scratch_database(server) as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with open_farm_store(url):
            pass  # migrate before the agent starts
        sock = __import__("socket").socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        env = {**os.environ, "ADB_EMU": "0", "ADB_MDNS": "0", "ANDROID_ADB_SERVER_PORT": str(port)}
        subprocess.run([adb, "-P", str(port), "start-server"], env=env, check=True, capture_output=True)
        device = spawn(root=folder / "device", model="bench phone", log_path=folder / "device.log")
        agent = None
        try:
            client = adbutils.AdbClient(host="127.0.0.1", port=port)
            client.connect(device.address, timeout=20)
            agent = subprocess.Popen(
                [sys.executable, "-m", "host.cli", "--db", url, "--home", str(folder / "home"), "agent",
                 "--host-name", "bench", "--heartbeat", "1", "--lease", "10", "--poll", str(poll_s)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(folder / "agent.log", "w"),
            )
            log = folder / "agent.log"
            with open_farm_store(url) as store:
                _wait(lambda: any(d.state == "idle" for d in store.farm_devices()), 0.1, agent, log, "the device idle")
                request = BenchRequest(params=TrialParams(runs=10, warmup_runs=0, min_secs=0.0), trials=1)
                for _ in range(repeats):
                    began = time.perf_counter()
                    (job_id,) = submit_jobs(store, [MODEL], Target(device_model="bench phone"), request)
                    _wait(lambda: _first_trial_saved(store, job_id), 0.01, agent, log, f"job {job_id}'s first trial")
                    times.append(time.perf_counter() - began)
                    _wait(lambda: store.list_jobs(ids=[job_id])[0].status != "running", 0.05, agent, log,
                          f"job {job_id} finished")
        finally:
            if agent is not None:
                agent.terminate()
                agent.wait(60)
            device.stop()
            subprocess.run([adb, "-P", str(port), "kill-server"], env=env, capture_output=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="PostgreSQL server URL (a scratch database is made on it)")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--claimers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    server = _server_url(args.db)
    print(f"PostgreSQL {make_url(server).render_as_string(hide_password=True)}, {os.cpu_count()} cores")
    print(f"claim throughput, {args.jobs} tiny jobs, {DEVICES_PER_CLAIMER} devices per claimer:")
    for n in args.claimers:
        rate, median_ms, p95_ms = claim_throughput(server, args.jobs, n)
        print(f"  {n} claimer(s): {rate:7.0f} jobs/s   claim median {median_ms:5.2f} ms   p95 {p95_ms:5.2f} ms")
    print(f"submit to first result (1 trial of add.tflite, 10 runs; median of {args.repeats}):")
    for poll in (1.0, 0.1):
        times = first_result(server, poll, args.repeats)
        print(f"  agent poll {poll:g} s: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
