"""Building the dense-vs-pruned report of a run from the store."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from host.bench.stats import Estimate, clean
from host.bench.summary import Summary, summarize
from host.records import DeviceFacts, Trial
from host.report.ops import top_ops
from host.report._model import DeviceReport, HistoryRow, ModelRow, RunReport, TopOps
from host.report.history import history_rows
from host.store import HistoryFilter, Store

__all__ = ["build_report", "manifest_facts", "device_notes", "SPARSE_PATH_RATIO"]

GUIDE_PIXEL4_RATIO = 12 / 17  # the guide's pruned/dense latency on a Pixel 4: 12 µs vs 17 µs
SPARSE_PATH_RATIO = 0.9  # pruned/dense instructions below this: XNNPACK's sparse kernels ran
X86_ABIS = ("x86_64", "x86")
_HISTORY_LIMIT = 200


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def manifest_facts(manifest: Mapping[str, Any] | None, role: str | None) -> tuple[float | None, float | None]:
    """(accuracy, sparsity) of the ``role`` file from its build manifest (``host.build.manifest``).

    Accuracy is the TFLite file's on the test split (``accuracy.tflite_<role>``); sparsity is the
    lowest of its 1x1 convolutions' (``files.<role>.conv1x1[].sparsity``): XNNPACK's sparse path
    needs every one of them sparse enough. Missing figures are None, shown as "—".
    """
    if not manifest or role is None:
        return None, None
    accuracy = _number(_get(manifest, "accuracy", f"tflite_{role}"))
    convs = _get(manifest, "files", role, "conv1x1")
    figures = [n for n in (_number(c.get("sparsity")) for c in convs or [] if isinstance(c, Mapping)) if n is not None]
    return accuracy, (min(figures) if figures else None)


def device_notes(device: DeviceFacts) -> list[str]:
    """What a reader must know about numbers from this device."""
    if device.kind == "emulated" and device.emulation not in (None, "native"):
        return [
            f"emulated ARM ({device.emulation}): instructions per inference — deterministic; "
            "wall time not representative of hardware"
        ]
    if device.kind == "emulated":
        note = "emulated device: measures this machine's CPU"
        if device.abi in X86_ABIS:
            note += "; XNNPACK's sparse kernels are inactive on x86 CPUs with AVX, so no pruning speed-up is expected"
        return [note]
    if device.kind == "emulator":
        return ["Android emulator: measures the host's CPU through virtualisation, not a phone's"]
    return []


def _instructions(trials: list[Trial]) -> float | None:
    counts = clean(
        t.result.instructions.median for t in trials if t.status == "ok" and t.result and t.result.instructions
    )
    return statistics.median(counts) if counts else None


def _speedup(ratio: Estimate | None) -> Estimate | None:
    if ratio is None or ratio.value <= 0 or ratio.low <= 0:
        return None
    return Estimate(1.0 / ratio.value, 1.0 / ratio.high, 1.0 / ratio.low)


def _row(summary: Summary, trials: list[Trial]) -> ModelRow:
    model = trials[0].model
    accuracy, sparsity = manifest_facts(model.manifest, model.role)
    return ModelRow(
        model_name=summary.model_name,
        model_sha256=summary.model_sha256,
        role=summary.role,
        size_bytes=model.size_bytes,
        trials_ok=summary.trials_ok,
        trials_failed=summary.trials_failed,
        median_us=summary.median_us,
        min_us=summary.min_us,
        std_us=summary.std_us,
        init_us=summary.init_us,
        peak_memory_mb=summary.peak_memory_mb,
        speedup=_speedup(summary.ratio),
        accuracy=accuracy,
        sparsity=sparsity,
        instructions=_instructions(trials),
        errors=summary.errors,
    )


def _section_notes(device: DeviceFacts, rows: list[ModelRow], baseline: ModelRow | None) -> list[str]:
    notes = device_notes(device)
    for row in rows:
        total = row.trials_ok + row.trials_failed
        if row.trials_failed:
            first = row.errors[0] if row.errors else "failed"
            notes.append(f"{row.model_name}: {row.trials_failed} of {total} trials failed ({first})")
        if 0 < row.trials_ok < 3:
            notes.append(f"{row.model_name}: only {row.trials_ok} successful trial(s); its CI means little")
        if row.speedup is not None and row.speedup.contains(1.0):
            notes.append(
                f"{row.model_name}: the speed-up's 95% CI ({row.speedup.low:.2f}–{row.speedup.high:.2f}×) "
                "includes 1 — not shown to differ from the baseline"
            )
        if baseline is not None and row is not baseline and row.instructions and baseline.instructions:
            ratio = row.instructions / baseline.instructions
            engaged = "yes" if ratio < SPARSE_PATH_RATIO else "no"
            notes.append(
                f"{row.model_name}: {ratio:.2f}× the baseline's instructions per inference — "
                f"sparse path engaged: {engaged} (the guide's Pixel 4 took {GUIDE_PIXEL4_RATIO:.2f}× the dense time)"
            )
    return notes


def _baseline(trials: list[Trial]) -> str | None:
    for trial in trials:
        if trial.model.role == "dense":
            return trial.model.sha256
    return trials[0].model.sha256 if trials else None


def _run_notes(run_status: str, trials: list[Trial]) -> list[str]:
    notes: list[str] = []
    if run_status == "running":
        notes.append("this run has not finished: the figures may still change")
    elif run_status in ("interrupted", "failed", "partial"):
        notes.append(f"run status: {run_status}")
    if not trials:
        notes.append("no trials were saved for this run")
    manifests = [t.model.manifest for t in trials if t.model.manifest]
    if manifests and _get(manifests[0], "dataset", "accuracy_meaningful") is False:
        notes.append("synthetic dataset: the accuracy figures mean nothing, only the latencies do")
    return notes


def build_report(store: Store, run_id: int) -> RunReport:
    """The dense-vs-pruned report of run ``run_id``. Raises NotFoundError for an unknown run."""
    run = store.get_run(run_id)
    trials = store.load_trials(run_id)
    baseline_sha = _baseline(trials)
    by_group: dict[tuple[str, str], list[Trial]] = {}
    for trial in trials:
        by_group.setdefault((trial.device.serial, trial.model.sha256), []).append(trial)
    sections: dict[str, list[ModelRow]] = {}
    devices: dict[str, DeviceFacts] = {}
    for summary in summarize(trials, baseline_sha):
        serial = summary.device.serial
        devices.setdefault(serial, summary.device)
        sections.setdefault(serial, []).append(_row(summary, by_group[(serial, summary.model_sha256)]))
    reports = []
    op_groups = store.op_groups([run.id])
    for serial, rows in sections.items():
        baseline = next((r for r in rows if r.model_sha256 == baseline_sha), None)
        tops = []
        for group in (g for g in op_groups if g.device.serial == serial):
            unit, ops = top_ops(group)
            tops.append(TopOps(group.model_name, unit, ops))
        reports.append(DeviceReport(devices[serial], rows, _section_notes(devices[serial], rows, baseline), tops))
    baseline_name = next((t.model.name for t in trials if t.model.sha256 == baseline_sha), None)
    return RunReport(
        run=run,
        baseline_name=baseline_name,
        devices=reports,
        notes=_run_notes(run.status, trials),
        history=_history(store, run.started_at, trials),
        generated_at=datetime.now(timezone.utc),
    )


def _history(store: Store, started: datetime, trials: list[Trial]) -> list[HistoryRow]:
    """These models on these devices in this run and the runs before it, oldest first."""
    serials = {t.device.serial for t in trials}
    rows = []
    for sha in dict.fromkeys(t.model.sha256 for t in trials):
        rows.extend(history_rows(store, HistoryFilter(model=sha, until=started, limit=_HISTORY_LIMIT)))
    kept = [r for r in rows if r.device_serial in serials]
    return sorted(kept, key=lambda r: (r.started_at, r.run_id, r.model_name))
