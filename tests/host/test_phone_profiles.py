"""The lab's phone paths against emulated devices with phone profiles, through a real adb server:
facts and clusters, --max-temp waits, throttled trials, fixed-performance mode on and off again
(success, timeout, Ctrl-C), --cores, the SDK 28 and armeabi-v7a phones, unauthorized and offline
devices. No mocks: every device is ``python -m device_agent emulator --profile NAME``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from device_agent.emulator.auth import encode_public_key
from device_agent.profiles import PROFILE_DIR, load_profile
from host.bench import BenchOutcome, model_file, run_bench
from host.cli.devices import _cores as cores_cell
from host.cli.main import app
from host.devices import DeviceShell, select_devices
from host.devices.facts import clusters, read_facts_and_notes
from host.devices.tools import add_tool
from host.records import BenchRequest, DeviceFacts, Trial, TrialParams
from host.store import open_store

from .devices.elf_files import EM_AARCH64, EM_ARM, write_elf

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
QUICK = TrialParams(runs=20, warmup_runs=2, timeout_s=60)
_DEADLINE_S = 30.0


class Recorder:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, total_trials: int, devices: Sequence[DeviceFacts]) -> None:
        pass

    def note(self, serial: str, message: str) -> None:
        self.notes.append(message)

    def trial_done(self, trial: Trial) -> None:
        pass


def phone(factory: Callable[..., Any], name: str, *extra: str) -> Any:
    return factory(extra_args=("--profile", name, *extra))


def bench(adb_server: Any, tmp_path: Path, serial: str, *, params: TrialParams = QUICK, trials: int = 2,
          progress: Recorder | None = None, model: Path = MODELS / "conv.tflite", **kwargs: Any) -> BenchOutcome:
    request = BenchRequest(params=params, trials=trials, **kwargs)
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        return run_bench(request, [model_file(model)], select_devices(adb_server.client, [serial]),
                         store=store, home=tmp_path / "home", progress=progress, client=adb_server.client)


def stored_trials(tmp_path: Path, run_id: int) -> list[Trial]:
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        return store.load_trials(run_id)


def wait_for_log(device: Any, text: str) -> str:
    deadline = time.monotonic() + _DEADLINE_S
    while text not in device.log_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never appeared in the device's log:\n{device.log_text()}")
        time.sleep(0.05)
    return device.log_text()


def fixed_performance_switches(device: Any) -> list[str]:
    return [line.rsplit(" ", 1)[1] for line in device.log_text().splitlines() if "fixed-performance mode " in line]


@pytest.mark.parametrize("name,soc", [("pixel4", "SM8150"), ("galaxy_a50", "exynos5"), ("galaxy_j2_core", "exynos5")])
def test_facts_match_the_profile(adb_server: Any, emulated_device_factory: Callable[..., Any], name: str, soc: str) -> None:
    device = phone(emulated_device_factory, name)
    profile = load_profile(name)
    facts, notes = read_facts_and_notes(DeviceShell(adb_server.client, device.serial))
    assert (facts.model, facts.soc, facts.sdk) == (profile.props["ro.product.model"], soc, profile.sdk)
    assert facts.abis == tuple(profile.props["ro.product.cpu.abilist"].split(","))
    assert [(c.cores, c.max_freq_khz) for c in clusters(facts)] == sorted(
        ((tuple(c.cpus), c.max_khz) for c in profile.clusters), key=lambda cluster: cluster[1])
    assert notes and "sleep padding per invoke" in notes[0]
    listed = CliRunner().invoke(app, ["devices", "--json"])
    entry = next(e for e in json.loads(listed.stdout)["devices"] if e["serial"] == device.serial)
    assert [c["cpus"] for c in entry["clusters"]] == [c.cpus for c in clusters(facts)]
    assert entry["notes"] == list(notes)


def test_pixel4_clusters_in_lab_devices(adb_server: Any, emulated_device_factory: Callable[..., Any]) -> None:
    device = phone(emulated_device_factory, "pixel4")
    facts, _ = read_facts_and_notes(DeviceShell(adb_server.client, device.serial))
    assert cores_cell(facts) == "8: cpu0-3 1.79, cpu4-6 2.42, cpu7 2.84 GHz"
    table = CliRunner().invoke(app, ["devices"])
    assert table.exit_code == 0 and "cpu7" in table.stdout and "sleep padding" in table.stdout


@pytest.mark.parametrize("name", ["pixel4", "galaxy_a50", "galaxy_j2_core"])
def test_max_temp_waits_and_records_the_wait(adb_server: Any, emulated_device_factory: Callable[..., Any],
                                             tmp_path: Path, name: str) -> None:
    device = phone(emulated_device_factory, name, "--thermal-speed", "20", "--initial-temp", "80")
    recorder = Recorder()
    out = bench(adb_server, tmp_path, device.serial, trials=1, progress=recorder, max_temp_c=45.0, max_temp_wait_s=60.0)
    (trial,) = out.trials
    assert trial.status == "ok", trial.error
    before = trial.state_before
    assert before is not None and before.temp_wait_cooled is True and before.temp_wait_s is not None
    assert before.temp_wait_s > 0 and before.max_temp_c is not None and before.max_temp_c <= 45.0
    assert any(n.endswith(" °C > --max-temp 45 °C: waiting to cool") for n in recorder.notes), recorder.notes
    assert any(n.startswith("cooled to ") for n in recorder.notes)
    (saved,) = stored_trials(tmp_path, out.run_id)
    assert saved.state_before == before


def test_a_wait_that_runs_out_is_recorded_too(adb_server: Any, emulated_device_factory: Callable[..., Any],
                                              tmp_path: Path) -> None:
    device = phone(emulated_device_factory, "galaxy_a50", "--initial-temp", "80")  # real-time cooling: too slow
    out = bench(adb_server, tmp_path, device.serial, trials=1, max_temp_c=40.0, max_temp_wait_s=0.5)
    before = out.trials[0].state_before
    assert before is not None and before.temp_wait_cooled is False and before.temp_wait_s >= 0.5
    assert out.trials[0].state_after is not None and out.trials[0].state_after.throttled is True  # still past the trip


def test_a_long_run_throttles_slows_down_and_is_flagged(adb_server: Any, emulated_device_factory: Callable[..., Any],
                                                        tmp_path: Path) -> None:
    # The SDK 28 phone: no fixed-performance mode to hold its clocks, so its big cluster throttles.
    device = phone(emulated_device_factory, "galaxy_a50", "--thermal-speed", "8")
    recorder = Recorder()
    params = TrialParams(runs=50, warmup_runs=5, min_secs=1.0, timeout_s=60)
    out = bench(adb_server, tmp_path, device.serial, trials=8, params=params, progress=recorder)
    assert all(t.status == "ok" for t in out.trials), [t.error for t in out.trials]
    first, last = out.trials[0], out.trials[-1]
    assert first.state_after is not None and first.state_after.throttled is False
    assert last.state_after is not None and last.state_after.throttled is True
    assert "capped at" in (last.state_after.throttle_reason or "") and "cpu4" in last.state_after.throttle_reason
    assert any("ran throttled" in n for n in recorder.notes)
    assert first.result is not None and last.result is not None
    assert last.result.runs.median_us > 1.05 * first.result.runs.median_us  # the slowdown shows
    assert "invokes padded with sleep to the simulated clock" in last.raw_output
    saved = stored_trials(tmp_path, out.run_id)
    assert [t.state_after.throttled for t in saved if t.state_after] == [t.state_after.throttled for t in out.trials
                                                                       if t.state_after]


def test_fixed_performance_mode_is_on_for_the_trials_and_off_after(adb_server: Any,
                                                                   emulated_device_factory: Callable[..., Any],
                                                                   tmp_path: Path) -> None:
    device = phone(emulated_device_factory, "pixel4")
    recorder = Recorder()
    out = bench(adb_server, tmp_path, device.serial, trials=2, progress=recorder)
    for trial in out.trials:
        assert trial.state_before is not None and trial.state_before.fixed_performance_mode is True
        assert trial.state_before.cap_freqs_khz["cpu7"] == 1612800  # pinned
        assert trial.state_after is not None and trial.state_after.throttled is False
    assert fixed_performance_switches(device) == ["on", "off"]
    assert any(n.startswith("fixed-performance mode on") for n in recorder.notes)
    assert "lab emulated phone: fixed-performance mode off" in device.device.shell("dumpsys power")


def test_fixed_performance_mode_is_off_after_a_failed_trial(adb_server: Any, emulated_device_factory: Callable[..., Any],
                                                            tmp_path: Path) -> None:
    device = phone(emulated_device_factory, "pixel4")
    out = bench(adb_server, tmp_path, device.serial, trials=1, model=MODELS / "flex.tflite")  # the runtime rejects it
    assert out.trials[0].status == "failed"
    assert fixed_performance_switches(device) == ["on", "off"]


def test_fixed_performance_mode_is_off_after_a_trial_that_timed_out(adb_server: Any,
                                                                     emulated_device_factory: Callable[..., Any],
                                                                     tmp_path: Path) -> None:
    device = phone(emulated_device_factory, "pixel4")
    params = TrialParams(runs=10, warmup_runs=1, min_secs=20.0, timeout_s=2.0)
    out = bench(adb_server, tmp_path, device.serial, trials=1, params=params)
    assert out.trials[0].status == "timeout"
    assert fixed_performance_switches(device) == ["on", "off"]


def test_fixed_performance_mode_is_off_after_ctrl_c(adb_server: Any, emulated_device_factory: Callable[..., Any],
                                                    tmp_path: Path) -> None:
    device = phone(emulated_device_factory, "pixel4")
    env = {**os.environ, "LAB_HOME": str(tmp_path / "home")}
    env.pop("LAB_DB_URL", None)
    # SIGINT's Python handler installed in the child however the suite was started: a suite run in the
    # background of a script (`cmd &`, nohup) starts with SIGINT ignored, and its children inherit that.
    boot = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "sys.argv[0] = 'lab'; runpy.run_module('host.cli', run_name='__main__')")
    args = [sys.executable, "-c", boot, "bench", str(MODELS / "conv.tflite"), "--device", device.serial,
            "--trials", "5", "--runs", "10", "--warmup", "1", "--min-secs", "1"]
    lab = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        wait_for_log(device, "fixed-performance mode on")
        lab.send_signal(signal.SIGINT)
        _, err = lab.communicate(timeout=120)
    finally:
        if lab.poll() is None:
            lab.kill()
    assert lab.returncode != 0
    assert fixed_performance_switches(device) == ["on", "off"], err


def test_cores_big_pins_the_runner_to_the_big_cluster(adb_server: Any, emulated_device_factory: Callable[..., Any],
                                                      tmp_path: Path) -> None:
    device = phone(emulated_device_factory, "pixel4")
    recorder = Recorder()
    out = bench(adb_server, tmp_path, device.serial, trials=1, cores="big", progress=recorder)
    (trial,) = out.trials
    assert trial.status == "ok", trial.error
    assert trial.state_before is not None and trial.state_before.cpus == "big: 7"
    assert trial.command is not None and "taskset 80 benchmark_model" in trial.command
    assert "runner affinity: cpus 7" in trial.raw_output  # the runner reports the affinity it got
    assert "benchmark_model pinned to CPUs big: 7 (taskset 80)" in recorder.notes
    little = bench(adb_server, tmp_path, device.serial, trials=1, cores="little").trials[0]
    assert little.state_before is not None and little.state_before.cpus == "little: 0-3"
    assert "runner affinity: cpus 0-3" in little.raw_output
    saved = stored_trials(tmp_path, out.run_id)[0]
    assert saved.state_before is not None and saved.state_before.cpus == "big: 7"


def test_cores_the_device_lacks_fail_its_trials_clearly(adb_server: Any, emulated_device_factory: Callable[..., Any],
                                                        tmp_path: Path) -> None:
    device = phone(emulated_device_factory, "galaxy_j2_core")
    out = bench(adb_server, tmp_path, device.serial, trials=1, cores="4-7")
    assert out.trials[0].status == "failed"
    assert out.trials[0].error == f"--cores 4-7: {device.serial} has CPUs 0-3 only (see `lab devices`)"


def test_sdk_28_skips_fixed_performance_mode_with_a_note(adb_server: Any, emulated_device_factory: Callable[..., Any],
                                                         tmp_path: Path) -> None:
    device = phone(emulated_device_factory, "galaxy_a50")
    recorder = Recorder()
    out = bench(adb_server, tmp_path, device.serial, trials=1, progress=recorder)
    assert out.trials[0].status == "ok"
    assert out.trials[0].state_before is not None and out.trials[0].state_before.fixed_performance_mode is None
    assert any(n.startswith("fixed-performance mode skipped: Android 9 (SDK 28) predates it (SDK 30+)")
               for n in recorder.notes), recorder.notes
    assert fixed_performance_switches(device) == []  # never asked


def test_the_v7a_phone_refuses_an_arm64_binary_and_gets_its_own(adb_server: Any,
                                                                emulated_device_factory: Callable[..., Any],
                                                                tmp_path: Path) -> None:
    device = phone(emulated_device_factory, "galaxy_j2_core")
    arm64 = write_elf(tmp_path / "benchmark_model_arm64", EM_AARCH64)
    out = bench(adb_server, tmp_path, device.serial, trials=1, binary=str(arm64))
    assert out.trials[0].status == "failed"
    assert out.trials[0].error == (f"benchmark_model_arm64 is built for arm64-v8a, but {device.serial} runs armeabi-v7a, "
                                   "armeabi: use a benchmark_model for armeabi-v7a (`lab tools fetch --abi armeabi-v7a`)")
    home = tmp_path / "home"
    add_tool(home, arm64, "arm64-v8a")
    add_tool(home, write_elf(tmp_path / "benchmark_model_v7a", EM_ARM), "armeabi-v7a")
    chosen = bench(adb_server, tmp_path, device.serial, trials=1).trials[0]
    assert chosen.tool is not None and chosen.tool.abi == "armeabi-v7a"  # by the device's ABI list, not arm64


def _other_key_file(folder: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "authorized_keys"
    path.write_text(encode_public_key(key.public_key(), "someone@elsewhere") + "\n")
    return path


def _wait_for_state(adb_server: Any, serial: str, wanted: str) -> None:
    deadline = time.monotonic() + _DEADLINE_S
    state = "absent"
    while time.monotonic() < deadline:
        state = next((info.state for info in adb_server.client.list() if info.serial == serial), "absent")
        if state == wanted:
            return
        time.sleep(0.05)
    raise AssertionError(f"{serial} never became {wanted!r} (last {state!r})")


def test_unauthorized_and_offline_devices_are_listed_and_skipped(adb_server: Any,
                                                                 emulated_device_factory: Callable[..., Any],
                                                                 tmp_path: Path) -> None:
    ready = phone(emulated_device_factory, "pixel4")
    locked = emulated_device_factory(extra_args=("--profile", "galaxy_a50", "--authorized-keys",
                                                 str(_other_key_file(tmp_path))), connect=False)
    adb_server.client.connect(locked.serial, timeout=20)
    locked.connected = True
    _wait_for_state(adb_server, locked.serial, "unauthorized")
    hung = emulated_device_factory(extra_args=("--offline",), connect=False)
    adb_server.client.connect(hung.serial, timeout=20)  # adb answers "failed to connect" and lists it offline
    hung.connected = True
    _wait_for_state(adb_server, hung.serial, "offline")

    listed = CliRunner().invoke(app, ["devices", "--json"])
    entries = {e["serial"]: e for e in json.loads(listed.stdout)["devices"]}
    assert entries[locked.serial]["problem"].startswith("unauthorized: a phone: unlock it and accept")
    assert entries[hung.serial]["problem"] == ("offline: reconnect the cable, or run `adb reconnect offline` "
                                               "(network devices: `adb connect HOST:PORT`)")
    assert entries[ready.serial]["ready"]

    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["--home", str(home), "bench", str(MODELS / "conv.tflite"), "--trials", "1",
                                      "--runs", "10", "--warmup", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert f"skipping {locked.serial}: unauthorized: a phone" in result.stderr
    assert f"skipping {hung.serial}: offline: reconnect the cable" in result.stderr
    doc = json.loads(result.stdout)
    with open_store(f"sqlite:///{home / 'lab.db'}") as store:
        config = store.get_run(doc["run_id"]).config
    assert config["devices"] == [ready.serial]
    assert set(config["skipped_devices"]) == {locked.serial, hung.serial}
    assert config["skipped_devices"][hung.serial].startswith("offline:")


def test_an_old_toolbox_shell_without_nproc_or_taskset(adb_server: Any, emulated_device_factory: Callable[..., Any],
                                                       tmp_path: Path) -> None:
    # The v7a phone's data, as if it ran Android 5's toolbox: neither nproc nor taskset.
    data = json.loads((PROFILE_DIR / "galaxy_j2_core.json").read_text())
    data.update(name="toolbox_phone", shell="toolbox", commands=["cmd", "dumpsys"])
    data["props"].update({"ro.build.version.sdk": "22", "ro.build.version.release": "5.1.1"})
    path = tmp_path / "toolbox_phone.json"
    path.write_text(json.dumps(data))
    device = emulated_device_factory(extra_args=("--profile", str(path)))
    assert "nproc: inaccessible or not found" in adb_server.run("-s", device.serial, "shell", "nproc").stderr
    facts, _ = read_facts_and_notes(DeviceShell(adb_server.client, device.serial))
    assert facts.cores == 4 and facts.sdk == 22  # counted from /sys/devices/system/cpu/possible
    out = bench(adb_server, tmp_path, device.serial, trials=1, cores="big")
    assert out.trials[0].status == "failed"
    assert out.trials[0].error.startswith("--cores needs taskset on the device (toybox, Android 6+), and "
                                          "`taskset f true` failed (exit 127)")


def test_an_android_11_phone_that_refuses_fixed_performance_mode(adb_server: Any,
                                                                 emulated_device_factory: Callable[..., Any],
                                                                 tmp_path: Path) -> None:
    # The Pixel's data without a power service for `cmd`: SDK 33, yet `cmd power` is refused.
    data = json.loads((PROFILE_DIR / "pixel4.json").read_text())
    data.update(name="no_power_service", services=["battery", "thermalservice"])
    path = tmp_path / "no_power_service.json"
    path.write_text(json.dumps(data))
    device = emulated_device_factory(extra_args=("--profile", str(path)))
    recorder = Recorder()
    out = bench(adb_server, tmp_path, device.serial, trials=1, progress=recorder)
    assert out.trials[0].status == "ok"
    assert out.trials[0].state_before is not None and out.trials[0].state_before.fixed_performance_mode is None
    assert ("fixed-performance mode unavailable (`cmd power` answered: cmd: Can't find service: power); clocks "
            "follow the governor") in recorder.notes
    assert fixed_performance_switches(device) == []
