"""`run_bench` and `lab bench` on emulated devices through the real adb server, with a real store:
the happy path on one and two devices, push skipping, state snapshots, and failures kept as data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from host.bench import BenchOutcome, model_file, run_bench
from host.cli.main import app
from host.devices import select_devices
from host.devices.tools import add_tool
from host.errors import UsageError
from host.records import BenchRequest, DeviceFacts, Trial, TrialParams
from host.store import HistoryFilter, open_store

from ..devices.elf_files import EM_AARCH64, write_elf, write_script
from ..devices.facts_tree import write_facts_tree

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"
FAST = TrialParams(runs=20, warmup_runs=2, timeout_s=60)


class Recorder:
    """A BenchProgress that keeps what it was told, and which thread told it."""

    def __init__(self) -> None:
        self.total = 0
        self.notes: list[tuple[str, str]] = []
        self.done: list[tuple[str, str]] = []  # (serial, worker thread name)

    def start(self, total_trials: int, devices: Sequence[DeviceFacts]) -> None:
        self.total = total_trials

    def note(self, serial: str, message: str) -> None:
        self.notes.append((serial, message))

    def trial_done(self, trial: Trial) -> None:
        self.done.append((trial.device.serial, threading.current_thread().name))


def bench(
    adb_server: Any,
    tmp_path: Path,
    models: list[Path],
    serials: list[str],
    *,
    params: TrialParams = FAST,
    trials: int = 2,
    binary: Path | None = None,
    progress: Recorder | None = None,
    **kwargs: Any,
) -> BenchOutcome:
    """``run_bench`` with a request of ``params``, ``trials``, ``binary`` and the other fields in ``kwargs``."""
    devices = select_devices(adb_server.client, serials)
    request = BenchRequest(params=params, trials=trials, binary=str(binary) if binary else None, **kwargs)
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        return run_bench(
            request,
            [model_file(m) for m in models],
            devices,
            store=store,
            home=tmp_path / "home",
            config={"test": True},
            progress=progress,
            client=adb_server.client,
        )


def stored(tmp_path: Path, run_id: int) -> tuple[str, list[Trial]]:
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        return store.get_run(run_id).status, store.load_trials(run_id)


def test_one_device_two_models(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    recorder = Recorder()
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite", MODELS / "conv.tflite"], [emulated_device.serial],
                trials=3, progress=recorder)
    assert out.exit_code == 0 and recorder.total == 6 and len(recorder.done) == 6
    assert [t.status for t in out.trials] == ["ok"] * 6
    blocks = [{t.model.name for t in out.trials[i : i + 2]} for i in range(0, 6, 2)]
    assert blocks == [{"add.tflite", "conv.tflite"}] * 3  # interleaved: each block runs both
    add, conv = out.summaries
    assert (add.model_name, add.trials_ok, conv.trials_ok) == ("add.tflite", 3, 3)
    assert add.latency_us is not None and add.latency_us.low <= add.latency_us.value <= add.latency_us.high
    assert add.ratio is None and conv.ratio is not None and conv.ratio.low <= conv.ratio.value <= conv.ratio.high
    assert conv.init_us and conv.peak_memory_mb and conv.tail_us is not None and conv.min_us

    status, trials = stored(tmp_path, out.run_id)
    assert status == "ok" and len(trials) == 6
    t = trials[0]
    assert t.device.kind == "emulated" and t.device.serial == emulated_device.serial
    assert t.tool is not None and t.tool.builtin and t.tool.version and "LiteRT" in t.tool.version
    assert t.tool.sha256 == hashlib.sha256(f"builtin:{t.tool.version}".encode()).hexdigest()
    assert t.model.sha256 == hashlib.sha256((MODELS / t.model.name).read_bytes()).hexdigest()
    assert "count=20" in t.raw_output and t.result is not None and t.result.runs is not None
    assert t.samples_us is not None and len(t.samples_us) == t.result.runs.count == 20
    assert t.command is not None and "--num_runs=20" in t.command and "--samples_file=" in t.command
    assert t.state_before is not None and t.state_after is not None
    assert t.state_before.taken_at <= t.started_at <= t.state_after.taken_at
    assert t.state_before.fixed_performance_mode is None  # the emulated device has no `cmd power`


def test_two_devices_in_parallel(adb_server: Any, emulated_device_factory: Callable[..., Any], tmp_path: Path) -> None:
    a, b = emulated_device_factory(), emulated_device_factory()
    recorder = Recorder()
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite", MODELS / "conv.tflite"], [a.serial, b.serial],
                progress=recorder)
    assert out.exit_code == 0 and len(out.trials) == 8
    assert [s.device.serial for s in out.summaries] == [a.serial, a.serial, b.serial, b.serial]
    workers = {serial: {name for s, name in recorder.done if s == serial} for serial in (a.serial, b.serial)}
    assert len(workers[a.serial]) == 1 and len(workers[b.serial]) == 1
    assert workers[a.serial] != workers[b.serial]  # one worker thread per device
    assert all(s.ratio is not None for s in out.summaries if s.model_name == "conv.tflite")


def test_second_run_skips_the_push(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    model = MODELS / "conv.tflite"
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    first = Recorder()
    bench(adb_server, tmp_path, [model], [emulated_device.serial], trials=1, progress=first)
    on_device = emulated_device.root / "lab" / f"{sha}.tflite"
    stamp = on_device.stat().st_mtime_ns
    assert any(message.startswith("pushed 1 file") for _, message in first.notes)
    second = Recorder()
    out = bench(adb_server, tmp_path, [model], [emulated_device.serial], trials=1, progress=second)
    assert out.exit_code == 0
    assert not any(message.startswith("pushed") for _, message in second.notes)
    assert on_device.stat().st_mtime_ns == stamp


def test_state_snapshots_and_max_temp(adb_server: Any, emulated_device_factory: Callable[..., Any], tmp_path: Path) -> None:
    device = emulated_device_factory(facts_root=write_facts_tree(tmp_path / "facts", {"cpu-big": "71000"}))
    recorder = Recorder()
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [device.serial], trials=2, progress=recorder,
                max_temp_c=50.0, max_temp_wait_s=0.0, cooldown_s=0.3)
    trial, later = out.trials
    assert trial.status == "ok" and later.status == "ok"
    assert trial.state_after is not None and later.state_before is not None
    assert (later.state_before.taken_at - trial.state_after.taken_at).total_seconds() >= 0.3  # the cooldown
    assert trial.state_before is not None and trial.state_before.thermal_c == {"cpu-big": 71.0}
    assert trial.state_after is not None and set(trial.state_after.governors.values()) == {"schedutil"}
    assert (device.serial, "still 71.0 °C after 0 s: running anyway (state recorded)") in recorder.notes
    _, (saved, _) = stored(tmp_path, out.run_id)
    assert saved.state_before == trial.state_before and saved.state_after == trial.state_after


def test_model_name_with_spaces_and_quotes(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    odd = tmp_path / "it's a \"dense\" model; v1.tflite"
    shutil.copyfile(MODELS / "add.tflite", odd)
    out = bench(adb_server, tmp_path, [odd], [emulated_device.serial], trials=1)
    assert out.exit_code == 0 and out.summaries[0].model_name == odd.name
    _, (saved,) = stored(tmp_path, out.run_id)
    assert saved.model.name == odd.name and saved.status == "ok"


def test_a_cached_tool_is_pushed_and_used(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    wrapper = write_script(tmp_path / "benchmark_model", f'exec "{sys.executable}" -m device_agent bench "$@"')
    tool = add_tool(tmp_path / "home", wrapper, "x86_64")
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial], trials=1)
    (trial,) = out.trials
    assert trial.status == "ok", trial.error
    assert trial.tool is not None and not trial.tool.builtin and trial.tool.sha256 == tool.sha256
    assert trial.tool.version and "LiteRT" in trial.tool.version  # read from its first run
    assert trial.samples_us is None and trial.command is not None and "--samples_file" not in trial.command
    pushed = emulated_device.root / "lab" / "bin" / f"benchmark_model-{tool.sha256[:16]}"
    assert pushed.stat().st_mode & 0o777 == 0o755


def test_wrong_abi_binary_fails_the_device(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    arm = write_elf(tmp_path / "benchmark_model", EM_AARCH64)
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial], binary=arm)
    assert out.exit_code == 2
    message = out.setup_errors[emulated_device.serial]
    assert message.startswith(f"benchmark_model is built for arm64-v8a, but {emulated_device.serial} runs x86_64")
    assert not (emulated_device.root / "lab" / "bin").exists()  # caught before anything was pushed
    status, trials = stored(tmp_path, out.run_id)
    assert status == "failed" and [t.status for t in trials] == ["failed", "failed"]
    assert all(t.error == message for t in trials)


def test_a_runner_that_hangs_times_out(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    hang = write_script(tmp_path / "hang", 'echo "INFO: STARTING!"; sleep 30')
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial], binary=hang,
                params=TrialParams(runs=5, timeout_s=1.0))
    assert out.exit_code == 2 and [t.status for t in out.trials] == ["timeout", "timeout"]
    assert out.trials[0].error == "no result within --timeout 1 s"
    assert out.trials[0].raw_output == "INFO: STARTING!\n"
    assert out.trials[0].state_after is not None  # the device answers again after the timeout
    _, trials = stored(tmp_path, out.run_id)
    assert [t.status for t in trials] == ["timeout", "timeout"]


def test_garbage_output_and_crashes(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    junk = write_script(tmp_path / "junk", 'echo "hello, I am not benchmark_model"')
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial], binary=junk, trials=1)
    (trial,) = out.trials
    assert out.exit_code == 2 and trial.status == "failed"
    assert trial.error is not None and trial.error.startswith("unreadable benchmark_model output: ")
    assert "hello, I am not benchmark_model" in trial.error and trial.raw_output == "hello, I am not benchmark_model\n"
    crash = write_script(tmp_path / "crash", 'echo "INFO: STARTING!"; kill -SEGV $$')
    (trial,) = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial], binary=crash, trials=1).trials
    assert trial.status == "failed" and trial.error == "benchmark_model crashed (SIGSEGV, exit 139): INFO: STARTING!"


def test_a_model_the_runtime_rejects(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite", MODELS / "flex.tflite"], [emulated_device.serial], trials=1)
    assert out.exit_code == 1
    by_name = {t.model.name: t for t in out.trials}
    assert by_name["add.tflite"].status == "ok"
    flex = by_name["flex.tflite"]
    assert flex.status == "failed" and flex.error is not None
    assert flex.error.startswith("benchmark_model failed (exit 1): Select TensorFlow op(s)")
    assert "Benchmarking failed." in flex.raw_output
    assert stored(tmp_path, out.run_id)[0] == "partial"


def _runner_child(emulator_pid: int, timeout_s: float = 30.0) -> int:
    """Pid of the benchmark runner the emulated device started (a trial is under way)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children: list[str] = []
        for task in Path(f"/proc/{emulator_pid}/task").glob("*"):  # the thread that forked lists the child
            try:
                children += (task / "children").read_text().split()
            except OSError:
                continue
        for pid in children:
            try:
                if b"--graph=" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
            except OSError:
                continue
        time.sleep(0.01)
    raise AssertionError("no trial started on the device")


def test_device_killed_mid_run(adb_server: Any, emulated_device_factory: Callable[..., Any], tmp_path: Path) -> None:
    steady, doomed = emulated_device_factory(), emulated_device_factory()
    params = TrialParams(runs=10, warmup_runs=1, min_secs=1.0, timeout_s=60)  # each trial lasts ≥ 1 s
    result: dict[str, BenchOutcome] = {}
    worker = threading.Thread(
        target=lambda: result.setdefault(
            "out", bench(adb_server, tmp_path, [MODELS / "add.tflite"], [steady.serial, doomed.serial], params=params)
        )
    )
    worker.start()
    runner_pid = _runner_child(doomed.process.pid)
    os.kill(doomed.process.pid, signal.SIGKILL)  # the device vanishes while its first trial runs
    try:
        worker.join(timeout=120)
    finally:
        try:
            os.killpg(runner_pid, signal.SIGKILL)  # its orphaned runner, started in its own group
        except ProcessLookupError:
            pass
    out = result["out"]
    assert out.exit_code == 1
    steady_trials = [t for t in out.trials if t.device.serial == steady.serial]
    doomed_trials = [t for t in out.trials if t.device.serial == doomed.serial]
    assert [t.status for t in steady_trials] == ["ok", "ok"]
    assert [t.status for t in doomed_trials] == ["failed", "failed"]
    assert doomed_trials[0].error is not None and doomed_trials[0].error.startswith("device gone: ")
    status, trials = stored(tmp_path, out.run_id)
    assert status == "partial" and sorted(t.status for t in trials) == ["failed", "failed", "ok", "ok"]


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this test, however the suite was started: Python installs
    that handler only where SIGINT was not ignored at its start, and a suite run in the background
    of a script (`cmd &`, nohup) starts with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_interrupted_run_keeps_what_it_measured(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    class InterruptAfterFirst(Recorder):
        def trial_done(self, trial: Trial) -> None:
            super().trial_done(trial)
            if len(self.done) == 1:
                # Ctrl-C while the next trial runs, delivered to the main thread (which waits on the workers):
                # a process-wide kill may land on a worker thread and leave the main thread's wait uninterrupted
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    params = TrialParams(runs=10, warmup_runs=1, min_secs=0.5, timeout_s=60)
    with pytest.raises(KeyboardInterrupt):
        bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial], trials=4, params=params,
              progress=InterruptAfterFirst())
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        (run,) = store.list_runs()
        trials = store.load_trials(run.id)
    assert run.status == "interrupted"
    assert 1 <= len(trials) < 4 and all(t.status == "ok" for t in trials)  # the trial under way finished


def test_lab_bench_json(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--home", str(tmp_path), "bench", str(MODELS / "add.tflite"), str(MODELS / "conv.tflite"),
            "--device", emulated_device.serial, "--trials", "2", "--runs", "20", "--warmup", "2", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + emulated_device.log_text()
    doc = json.loads(result.stdout)
    assert doc["status"] == "ok" and doc["trials"] == doc["trials_ok"] == 4 and doc["failures"] == []
    add, conv = doc["results"]
    assert add["model"]["name"] == "add.tflite" and add["ratio"] is None
    assert set(conv["ratio"]) == {"value", "low", "high"} and conv["baseline_sha256"] == add["model"]["sha256"]
    assert set(add["latency_us"]) == {"value", "low", "high"} and add["statistic"] == "p5" and add["device"]["kind"] == "emulated"
    assert doc["tools"][emulated_device.serial]["builtin"] is True
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        assert store.get_run(doc["run_id"]).status == "ok"
    table = runner.invoke(app, [*args[:-1], "--trials", "1"])
    assert table.exit_code == 0 and "conv.tflite" in table.stdout and "emulated device" in table.stdout


def test_lab_bench_bad_inputs(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--home", str(tmp_path), "bench"]
    fake = tmp_path / "fake.tflite"
    fake.write_text("not a model")
    result = runner.invoke(app, [*base, str(fake)])
    assert result.exit_code == 2 and f"error: {fake} is not a TFLite model" in result.stderr
    result = runner.invoke(app, [*base, str(tmp_path / "missing.tflite")])
    assert result.exit_code == 2 and "missing.tflite does not exist" in result.stderr
    result = runner.invoke(app, [*base, str(MODELS / "add.tflite"), "--device", "127.0.0.1:1"])
    assert result.exit_code == 2 and "device 127.0.0.1:1 (--device) is not attached" in result.stderr
    junk = write_script(tmp_path / "junk", "echo junk")
    result = runner.invoke(app, [*base, str(MODELS / "add.tflite"), "--device", emulated_device.serial,
                                 "--binary", str(junk), "--trials", "1"])
    assert result.exit_code == 2 and "1 trial(s) failed: unreadable benchmark_model output" in result.stderr


def test_two_files_with_the_same_bytes_keep_both_names(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    copy = tmp_path / "renamed_add.tflite"
    shutil.copyfile(MODELS / "add.tflite", copy)
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite", copy], [emulated_device.serial], trials=2)
    assert out.exit_code == 0
    assert [s.model_name for s in out.summaries] == ["add.tflite", "renamed_add.tflite"]
    assert [s.trials_ok for s in out.summaries] == [2, 2] and out.summaries[1].ratio is not None
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        trials = store.load_trials(out.run_id)
        assert sorted({t.model.name for t in trials}) == ["add.tflite", "renamed_add.tflite"]
        groups = store.run_groups([out.run_id])
        assert sorted(g.model_name for g in groups) == ["add.tflite", "renamed_add.tflite"]
        (only,) = store.history(HistoryFilter(model="renamed_add"))
        assert only.model_name == "renamed_add.tflite" and only.trials_ok == 2


def test_a_tool_that_prints_without_end_is_stopped_at_the_output_cap(
    adb_server: Any, emulated_device: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The device's shell bounds the output file (`ulimit -f`), the host reads at most the cap, and the
    trial fails as "output too large" with the start and end of what was printed — not a timeout,
    not a device filled up, not the host's memory grown by it."""
    monkeypatch.setenv("LAB_MAX_OUTPUT", "1MiB")
    chatty = write_script(tmp_path / "chatty", 'echo "INFO: STARTING!"; while true; do echo "INFO: more and more"; done')
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial], binary=chatty,
                params=TrialParams(runs=5, timeout_s=120), trials=2)
    assert out.exit_code == 2
    for trial in out.trials:
        assert trial.status == "failed"
        assert trial.error == ("output too large: benchmark_model printed more than 1 MiB (set LAB_MAX_OUTPUT to "
                               "allow more); its first and last 64 KiB are kept")
        assert trial.command is not None and "ulimit -f 2049 ;" in trial.command
        assert trial.raw_output.startswith("INFO: STARTING!\nINFO: more and more\n")
        assert "characters left out by the lab" in trial.raw_output
        assert len(trial.raw_output) < 2 * 64 * 1024 + 200
    _, trials = stored(tmp_path, out.run_id)
    assert [t.error is not None and t.error.startswith("output too large") for t in trials] == [True, True]
    monkeypatch.setenv("LAB_MAX_OUTPUT", "lots")
    with pytest.raises(UsageError, match=r"LAB_MAX_OUTPUT='lots' is not a size of at least 64KiB"):
        bench(adb_server, tmp_path, [MODELS / "add.tflite"], [emulated_device.serial])


def test_a_device_whose_storage_fills_up_is_named_full(
    adb_server: Any, emulated_device_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Storage that runs out mid-run cuts benchmark_model's output short: the trial says the device
    is full (from df), instead of "device gone" or only "unreadable output"."""
    device = emulated_device_factory(extra_args=("--storage", "4M"))
    first = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [device.serial], trials=1)
    assert first.exit_code == 0  # the model is on the device now
    used = sum(p.stat().st_size for p in device.root.rglob("*") if p.is_file())
    adb_server.client.device(device.serial).sync.push(b"\0" * (4 * 2**20 - used - 300), "/data/local/tmp/filler")
    out = bench(adb_server, tmp_path, [MODELS / "add.tflite"], [device.serial], trials=1)
    (trial,) = out.trials
    assert out.exit_code == 2 and trial.status == "failed"
    assert trial.error is not None and trial.error.startswith("device storage full (0 KiB free under /data/local/tmp/lab/")
    assert "free some space on the device (unreadable benchmark_model output" in trial.error
