"""`lab submit`, `lab jobs`, `lab agent` and `lab devices --farm` as a user runs them: bad inputs
give one clear line and the documented exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host.cli.context import LabContext
from host.cli.farm_devices import show_farm_devices
from host.farm import open_farm_store

from .conftest import MODELS, free_port, lab

ADD = str(MODELS / "add.tflite")


def test_unreachable_database_exits_2(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/lab"
    for args in (("jobs",), ("submit", ADD, "--all"), ("agent", "--host-name", "x")):
        result = lab(url, tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "cannot reach the database" in result.stderr and "check the URL" in result.stderr
        assert "Traceback" not in result.stderr


def test_agent_refuses_sqlite(tmp_path: Path) -> None:
    result = lab(f"sqlite:///{tmp_path / 'lab.db'}", tmp_path, "agent")
    assert result.returncode == 2
    assert "a farm needs a shared server database" in result.stderr
    assert "postgresql+psycopg://" in result.stderr


def test_non_tflite_is_refused_at_submit(pg_url: str, tmp_path: Path) -> None:
    fake = tmp_path / "model.tflite"
    fake.write_bytes(b"not a flatbuffer at all")
    result = lab(pg_url, tmp_path, "submit", str(fake), "--device-model", "Pixel 7")
    assert result.returncode == 2
    assert f"{fake} is not a TFLite model" in result.stderr
    with open_farm_store(pg_url) as store:
        assert store.list_jobs() == []


def test_bad_selectors(pg_url: str, tmp_path: Path) -> None:
    none = lab(pg_url, tmp_path, "submit", ADD)
    assert none.returncode == 2 and "exactly one of --device SERIAL" in none.stderr
    two = lab(pg_url, tmp_path, "submit", ADD, "--all", "--abi", "x86_64")
    assert two.returncode == 2 and "exactly one of" in two.stderr
    empty = lab(pg_url, tmp_path, "submit", ADD, "--all")
    assert empty.returncode == 2 and "--all found no online device" in empty.stderr


def test_device_model_nobody_has_stays_queued_and_says_so(pg_url: str, tmp_path: Path) -> None:
    submitted = lab(pg_url, tmp_path, "submit", ADD, "--device-model", "Galaxy S99")
    assert submitted.returncode == 0, submitted.stderr
    job_id = int(submitted.stdout.split("\t")[0])
    assert "no matching device is registered for device model Galaxy S99" in submitted.stderr

    listed = lab(pg_url, tmp_path, "jobs", "--json")
    (job,) = json.loads(listed.stdout)["jobs"]
    assert (job["id"], job["status"], job["no_matching_device"]) == (job_id, "queued", True)
    table = lab(pg_url, tmp_path, "jobs", "--status", "queued")
    assert "no matching device" in table.stdout and "Galaxy S99" in table.stdout
    assert "no jobs in status done" in lab(pg_url, tmp_path, "jobs", "--status", "done").stderr

    waited = lab(pg_url, tmp_path, "submit", ADD, "--device-model", "Galaxy S99", "--wait", "--timeout", "1")
    assert waited.returncode == 1
    assert "gave up after 1 s" in waited.stderr and "no matching device is registered" in waited.stderr

    cancelled = lab(pg_url, tmp_path, "jobs", "cancel", str(job_id))
    assert cancelled.returncode == 0 and f"job {job_id} cancelled" in cancelled.stdout
    again = lab(pg_url, tmp_path, "jobs", "cancel", str(job_id))
    assert again.returncode == 1 and "already cancelled" in again.stderr
    unknown = lab(pg_url, tmp_path, "jobs", "cancel", "4242")
    assert unknown.returncode == 2 and "job 4242 is not in" in unknown.stderr
    bogus = lab(pg_url, tmp_path, "jobs", "--status", "bogus")
    assert bogus.returncode == 2 and "job status bogus is not one of" in bogus.stderr


def test_farm_devices_listing(pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_farm_store(pg_url) as store:
        agent = store.register_agent("rack-1", 60.0)
        store.register_devices(agent, [("m/emulator-5554", {"serial": "emulator-5554", "abis": ["x86_64"],
                                                             "model": "Pixel 7"})])
    context = LabContext(home=tmp_path, db_url=pg_url)
    show_farm_devices(context, json_=True)
    (device,) = json.loads(capsys.readouterr().out)["devices"]
    assert (device["host"], device["serial"], device["model"], device["state"]) == (
        "rack-1", "emulator-5554", "Pixel 7", "idle")
    show_farm_devices(context, json_=False)
    out = capsys.readouterr().out
    assert "rack-1" in out and "emulator-5554" in out and "idle" in out
