"""Synthetic but realistic trials, for the store's tests and its benchmarks (no device needed).

Each trial draws per-invoke times around a given latency, derives benchmark_model's statistics
from them exactly as benchmark_model does (first, curr, min, max, avg, std, percentiles) and
writes the text a TFLite 2.20 benchmark_model would print for them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from device_agent.output import BenchmarkResult, RunStats
from host.records import DeviceFacts, DeviceState, ModelFile, ToolInfo, Trial, TrialParams, TrialStatus
from host.store._store import Store

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


def _stats(values: np.ndarray) -> RunStats:
    return RunStats(
        count=int(values.size),
        curr_us=float(values[-1]),
        first_us=float(values[0]),
        min_us=float(values.min()),
        max_us=float(values.max()),
        avg_us=float(values.mean()),
        std_us=float(values.std()),
        p5_us=float(np.percentile(values, 5)),
        median_us=float(np.median(values)),
        p95_us=float(np.percentile(values, 95)),
    )


def _line(s: RunStats) -> str:
    return (
        f"INFO: count={s.count} first={s.first_us:.0f} curr={s.curr_us:.0f} min={s.min_us:.0f} max={s.max_us:.0f} "
        f"avg={s.avg_us:g} std={s.std_us:.0f} p5={s.p5_us:.0f} median={s.median_us:.0f} p95={s.p95_us:.0f}"
    )


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
    command = f"benchmark_model --graph=/data/local/tmp/lab/{model.sha256}.tflite --num_threads=1 --num_runs={runs}"
    tool = builtin_tool(device.abi)
    if status != "ok":
        raw = "ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'.\nBenchmarking failed.\n"
        return Trial(
            run_id=run_id,
            device=device,
            model=model,
            tool=tool,
            params=params,
            index=index,
            position=position,
            status=status,
            started_at=start,
            duration_s=0.4,
            error="Didn't find op for builtin opcode 'CONV_2D' version '6'",
            raw_output=raw,
            command=command,
        )
    samples = np.maximum(rng.normal(latency_us, noise * latency_us, runs), latency_us * 0.2)
    if preempt_rate > 0:
        hit = rng.random(runs) < preempt_rate
        samples[hit] *= rng.uniform(2.0, 10.0, int(hit.sum()))
    warm = np.maximum(rng.normal(latency_us * 1.1, noise * latency_us, 10), latency_us * 0.2)
    measured, warmup = _stats(samples), _stats(warm)
    init_us = float(rng.uniform(3000, 6000))
    result = BenchmarkResult(
        runs=measured,
        warmup=warmup,
        init_us=init_us,
        first_inference_us=warmup.first_us,
        warmup_avg_us=warmup.avg_us,
        inference_avg_us=measured.avg_us,
        memory_delta_init_mb=6.36,
        memory_delta_overall_mb=9.83,
        periodic_peak_memory_mb=47.7,
        num_threads=1,
        use_xnnpack=True,
        xnnpack_applied=True,
        model_size_mb=model.size_bytes / 1e6,
    )
    lines = [
        "INFO: STARTING!",
        "INFO: Num threads: [1]",
        f"INFO: Graph: [/data/local/tmp/lab/{model.sha256}.tflite]",
        "INFO: Use xnnpack: [1]",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        f"INFO: The input model file size (MB): {model.size_bytes / 1e6:g}",
        f"INFO: Initialized session in {init_us / 1000:.3f}ms.",
        _line(warmup),
        "",
        _line(measured),
        "",
        f"INFO: Inference timings in us: Init: {init_us:.0f}, First inference: {warmup.first_us:.0f}, "
        f"Warmup (avg): {warmup.avg_us:g}, Inference (avg): {measured.avg_us:g}",
        "INFO: Memory footprint delta from the start of the tool (MB): init=6.36 overall=9.83",
        "INFO: Overall peak memory footprint (MB) via periodic monitoring: 47.7",
        "",
    ]
    raw = "\n".join(lines)
    duration = float(samples.sum() + warm.sum() + init_us) / 1e6
    return Trial(
        run_id=run_id,
        device=device,
        model=model,
        tool=tool,
        params=params,
        index=index,
        position=position,
        status="ok",
        started_at=start,
        duration_s=duration,
        raw_output=raw,
        result=result,
        samples_us=[float(v) for v in samples] if keep_samples else None,
        state_before=device_state(start),
        state_after=device_state(start + timedelta(seconds=duration), 42.0),
        command=command,
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
"""The parts of a build manifest (``host.build.manifest``) that reports read."""


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
