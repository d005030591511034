"""Synthetic but realistic trials, for the store's tests and its benchmarks (no device needed).

Each trial draws per-invoke times around a given latency, writes the text the lab's runner prints
for them with its own writer (``device_agent.output``'s ``format_*`` and the runner's parameter
lines) and reads that text back with ``parse``: its result is what the host stores for real output.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import numpy as np

from device_agent.flags import param_lines, parse_flags
from device_agent.output import (
    FAILED,
    MEMORY_NOTE,
    RunStats,
    format_inference_timings,
    format_memory_delta,
    format_number,
    format_periodic_peak,
    format_running,
    format_stats,
    parse,
)
from device_agent.timing import summarize
from host.records import DeviceFacts, DeviceState, ModelFile, ToolInfo, Trial, TrialParams, TrialStatus
from host.store import Store

__all__ = [
    "emulated_device",
    "phone",
    "model_file",
    "builtin_tool",
    "synthetic_trial",
    "device_state",
    "guide_models",
    "add_synthetic_run",
    "SYNTHETIC_MANIFEST",
]


def emulated_device(serial: str = "emulator-5554", emulation: str | None = None) -> DeviceFacts:
    arm = emulation not in (None, "native")
    return DeviceFacts(
        serial=serial,
        kind="emulated",
        abis=("arm64-v8a",) if arm else ("x86_64",),
        model="lab emulated device",
        manufacturer="lab",
        soc="neoverse-n1" if arm else "Intel(R) Xeon(R) CPU @ 2.20GHz",
        sdk=34,
        release="14",
        cores=2,
        max_freqs_khz=(2200000, 2200000),
        emulation=emulation,
    )


def phone(serial: str = "1A2B3C4D5E", model: str = "Pixel 7") -> DeviceFacts:
    return DeviceFacts(
        serial=serial,
        kind="physical",
        abis=("arm64-v8a", "armeabi-v7a"),
        model=model,
        manufacturer="Google",
        soc="Tensor G2",
        sdk=34,
        release="14",
        cores=8,
        max_freqs_khz=(1803000,) * 4 + (2348000,) * 2 + (2850000,) * 2,
    )


def model_file(
    name: str = "dense.tflite",
    role: str | None = "dense",
    variant: str = "",
    size_bytes: int = 85_000,
    manifest: dict[str, Any] | None = None,
) -> ModelFile:
    """A model whose sha256 derives from its name, role and ``variant`` (another variant: another file)."""
    sha = hashlib.sha256(f"{name}|{role}|{variant}".encode()).hexdigest()
    return ModelFile(
        sha256=sha,
        name=name,
        size_bytes=size_bytes,
        path=f"/tmp/models/{name}",
        role=role,
        build_id="b" + sha[:11] if role else None,
        manifest=manifest,
    )


def builtin_tool(abi: str = "x86_64") -> ToolInfo:
    return ToolInfo(
        sha256=hashlib.sha256(b"device-agent-runner" + abi.encode()).hexdigest(),
        abi=abi,
        version="device_agent runner (LiteRT 2.3.0)",
        builtin=True,
        source="device",
    )


def device_state(at: datetime, temp_c: float = 41.5) -> DeviceState:
    return DeviceState(
        taken_at=at,
        thermal_c={"cpu-0-0": temp_c, "battery": 30.1},
        battery_level=87,
        battery_temp_c=30.1,
        charging=True,
        governors={"cpu0": "schedutil"},
        cur_freqs_khz={"cpu0": 1803000},
    )


def _output(command: str, model: ModelFile, init_us: float, warmup: RunStats, measured: RunStats) -> str:
    """What the runner prints for ``command``'s run with these statistics (a successful one)."""
    parsed = parse_flags(command.split()[1:])
    flags = parsed.flags
    lines = [
        "STARTING!",
        *param_lines(parsed),
        f"Loaded model {flags.graph}",
        "Created TensorFlow Lite XNNPACK delegate for CPU.",
        f"The input model file size (MB): {format_number(model.size_bytes / 1e6)}",
        f"Initialized session in {format_number(init_us / 1000.0)}ms.",
        format_running(flags.warmup_runs, flags.warmup_min_secs, flags.max_secs),
        format_stats(warmup),
        "",
        format_running(flags.num_runs, flags.min_secs, flags.max_secs),
        format_stats(measured),
        "",
        format_inference_timings(init_us, _known(warmup.first_us), _known(warmup.avg_us), _known(measured.avg_us)),
        MEMORY_NOTE,
        format_memory_delta(6.36, 9.83),
        format_periodic_peak(47.7),
    ]
    return "".join(f"INFO: {line}\n" if line else "\n" for line in lines)


def _known(value: float | None) -> float:
    if value is None:
        raise ValueError("a trial's warm-up and measured runs have their first and average times")
    return value


def synthetic_trial(
    run_id: int | None,
    device: DeviceFacts,
    model: ModelFile,
    *,
    latency_us: float,
    rng: np.random.Generator,
    index: int = 0,
    position: int = 0,
    runs: int = 50,
    noise: float = 0.03,
    started_at: datetime | None = None,
    keep_samples: bool = True,
    status: TrialStatus = "ok",
    preempt_rate: float = 0.0,
) -> Trial:
    """One trial of ``model`` on ``device`` whose invokes take ``latency_us`` ± ``noise`` (relative).

    ``preempt_rate``: the chance that an invoke is preempted by other work on the machine and takes
    2 to 10 times as long (what a busy host does to a trial's average, and not to its low percentiles).
    """
    start = started_at or datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=position)
    params = TrialParams(threads=1, runs=runs, warmup_runs=10)
    command = (
        f"benchmark_model --graph=/data/local/tmp/lab/{model.sha256}.tflite --num_threads=1 --num_runs={runs} "
        f"--warmup_runs={params.warmup_runs}"
    )
    trial = partial(
        Trial, run_id=run_id, device=device, model=model, tool=builtin_tool(device.abi), params=params, index=index,
        position=position, started_at=start, command=command,
    )  # fmt: skip
    if status != "ok":
        error = "Didn't find op for builtin opcode 'CONV_2D' version '6'"
        return trial(status=status, duration_s=0.4, error=error, raw_output=f"ERROR: {error}.\n{FAILED}\n")
    samples = np.maximum(rng.normal(latency_us, noise * latency_us, runs), latency_us * 0.2)
    if preempt_rate > 0:
        hit = rng.random(runs) < preempt_rate
        samples[hit] *= rng.uniform(2.0, 10.0, int(hit.sum()))
    warm = np.maximum(rng.normal(latency_us * 1.1, noise * latency_us, params.warmup_runs), latency_us * 0.2)
    samples_ns = [round(float(us) * 1000) for us in samples]  # the runner's clock: whole ns
    warm_ns = [round(float(us) * 1000) for us in warm]
    init_us = float(rng.uniform(3000, 6000))
    raw = _output(command, model, init_us, summarize(warm_ns), summarize(samples_ns))
    duration = (sum(samples_ns) + sum(warm_ns)) / 1e9 + init_us / 1e6
    return trial(
        status="ok",
        duration_s=duration,
        raw_output=raw,
        result=parse(raw),
        samples_us=[ns / 1000 for ns in samples_ns] if keep_samples else None,
        state_before=device_state(start),
        state_after=device_state(start + timedelta(seconds=duration), 42.0),
    )


SYNTHETIC_MANIFEST = {
    "manifest_version": 1,
    "build_id": "b1",
    "dataset": {"name": "synthetic", "accuracy_meaningful": False},
    "accuracy": {"tflite_dense": 0.712, "tflite_pruned": 0.705},
    "files": {
        "dense": {"conv1x1": [{"sparsity": 0.0}, {"sparsity": 0.01}]},
        "pruned": {"conv1x1": [{"sparsity": 0.76}, {"sparsity": 0.751}]},
    },
}
"""The parts of a build manifest (``host.builder.manifest``) that reports read."""


def guide_models() -> tuple[ModelFile, ModelFile]:
    """The dense and pruned models of a lab build, with a build manifest."""
    return (
        model_file("dense.tflite", "dense", size_bytes=120_000, manifest=SYNTHETIC_MANIFEST),
        model_file("pruned.tflite", "pruned", size_bytes=60_000, manifest=SYNTHETIC_MANIFEST),
    )


def add_synthetic_run(
    store: Store,
    slowdown: float = 1.0,
    trials: int = 5,
    devices: tuple[DeviceFacts, ...] | None = None,
    models: tuple[ModelFile, ...] | None = None,
    seed: int = 0,
    noise: float = 0.01,
    preempt_rate: float = 0.0,
    failing: tuple[str, ...] = (),
) -> int:
    """A finished `lab run`-like run: interleaved trials of each model on each device.

    On a phone the pruned model is 30% faster; on the emulated x86 device it is not (as with
    XNNPACK on AVX). ``slowdown`` scales every latency (1.1: the injected 10% regression).
    Every trial of a model named in ``failing`` fails (a model that stopped running).
    """
    rng = np.random.default_rng(seed)
    run_id = store.start_run("run", {"trials": trials, "synthetic": True})
    saved = []
    for device in devices or (emulated_device(), phone()):
        for i in range(trials):
            for j, model in enumerate(models or guide_models()):
                speed = 0.7 if (model.role == "pruned" and device.kind == "physical") else 1.0
                latency = 100.0 * speed * slowdown
                saved.append(
                    synthetic_trial(
                        run_id,
                        device,
                        model,
                        latency_us=latency,
                        rng=rng,
                        index=i,
                        position=2 * i + j,
                        noise=noise,
                        preempt_rate=preempt_rate,
                        status="failed" if model.name in failing else "ok",
                    )
                )
    store.save_trials(saved)
    store.finish_run(run_id, "ok")
    return run_id
