"""Building the dense-vs-pruned report of a run from the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from host.bench.stats import Estimate
from host.bench.evidence import delegated_nodes, kernel_families, sparse_evidence, sparse_note
from host.bench.summary import MIN_TRIALS_FOR_CI, Summary, summarize
from host.figures import DISTURBED_RATIO
from host.records import DeviceFacts, OutputCheck, Trial
from host.report.ops import kernel_instructions, profile_names, top_ops
from host.report._model import DeviceReport, HistoryRow, KernelFigures, ModelRow, OutputFigures, RunReport, TopOps
from host.report.history import history_rows
from host.store import HistoryFilter, RunInfo, Store
from host.store.queries.ops import OpGroup

__all__ = ["build_report", "report_of", "manifest_facts", "device_notes"]

GUIDE_PIXEL4_RATIO = 12 / 17  # the guide's pruned/dense latency on a Pixel 4: 12 µs vs 17 µs
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
    """(accuracy, sparsity) of the ``role`` file from its build manifest (``host.builder.manifest``).

    Accuracy is the TFLite file's on the test split (``accuracy.tflite.<role>``, or
    ``accuracy.tflite_<role>`` in builds made before variants); sparsity is the
    lowest of its 1x1 convolutions' (``files.<role>.conv1x1[].sparsity``): XNNPACK's sparse path
    needs every one of them sparse enough. Missing figures are None, shown as "—".
    """
    if not manifest or role is None:
        return None, None
    accuracy = _number(_get(manifest, "accuracy", "tflite", role))
    if accuracy is None:
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


def _speedup(ratio: Estimate | None) -> Estimate | None:
    if ratio is None or ratio.value <= 0 or ratio.low <= 0:
        return None
    return Estimate(1.0 / ratio.value, 1.0 / ratio.high, 1.0 / ratio.low)


def _matrix_order(trials: list[Trial]) -> list[str]:
    """The variants of the run's build in the matrix's order (its manifest lists them so)."""
    for trial in trials:
        files = _get(trial.model.manifest, "files")
        if isinstance(files, Mapping):
            return list(files)
    return []


def _outputs(check: OutputCheck | None) -> OutputFigures | None:
    if check is None:
        return None
    return OutputFigures(
        status=check.status,
        inputs=check.inputs,
        precision=check.precision,
        max_abs_error=check.max_abs_error,
        max_rel_error=check.max_rel_error,
        top1_agreement=check.top1_agreement,
        baseline_agreement=check.baseline_agreement,
        baseline=check.baseline,
        tolerance=check.tolerance,
        reference=check.reference,
        error=check.error,
    )


def _kernels(trials: list[Trial], group: OpGroup | None) -> KernelFigures | None:
    """The kernel families that ran (per-kernel counts, on a QEMU-emulated device) and XNNPACK's
    share of the graph (the tool's output), or None when neither is known."""
    output = next((t.raw_output for t in trials if t.status == "ok"), "")
    delegated = delegated_nodes(output)
    profile = kernel_instructions(group)
    if not profile and delegated is None:
        return None
    found = kernel_families(profile, delegated=delegated)
    return KernelFigures(
        families=found.families,
        precision=found.precision,
        sparse=found.sparse,
        delegated=delegated.text() if delegated is not None else None,
        counted=bool(profile),
        summary=found.summary(),
    )


def _row(
    summary: Summary, trials: list[Trial], check: OutputCheck | None = None, group: OpGroup | None = None
) -> ModelRow:
    model = trials[0].model
    accuracy, sparsity = manifest_facts(model.manifest, model.role)
    return ModelRow(
        model_name=summary.model_name,
        model_sha256=summary.model_sha256,
        role=summary.role,
        size_bytes=model.size_bytes,
        trials_ok=summary.trials_ok,
        trials_failed=summary.trials_failed,
        statistic=summary.statistic,
        latency_us=summary.latency_us,
        typical_us=summary.typical_us,
        tail_us=summary.tail_us,
        disturbed=summary.disturbed,
        min_us=summary.min_us,
        init_us=summary.init_us,
        peak_memory_mb=summary.peak_memory_mb,
        speedup=_speedup(summary.ratio),
        accuracy=accuracy,
        sparsity=sparsity,
        instructions=summary.instructions,
        errors=summary.errors,
        outputs=_outputs(check),
        kernels=_kernels(trials, group),
    )


def _sparse_line(row: ModelRow, baseline: ModelRow, groups: dict[str, OpGroup]) -> str | None:
    base, model = groups.get(baseline.model_sha256), groups.get(row.model_sha256)
    evidence = sparse_evidence(
        profile_names(base, "kernel"), profile_names(model, "kernel"), profile_names(base, "op"), profile_names(model, "op")
    )
    note = sparse_note(row.model_name, row.instructions, baseline.instructions, evidence)
    if note is not None and row.instructions and baseline.instructions and row.role in (None, "pruned"):
        note += f" (the guide's Pixel 4 took {GUIDE_PIXEL4_RATIO:.2f}× the dense time)"
    return note


def _section_notes(
    device: DeviceFacts, rows: list[ModelRow], baseline: ModelRow | None, groups: dict[str, OpGroup]
) -> list[str]:
    notes = device_notes(device)
    for row in rows:
        total = row.trials_ok + row.trials_failed
        if row.trials_failed:
            first = row.errors[0] if row.errors else "failed"
            notes.append(f"{row.model_name}: {row.trials_failed} of {total} trials failed ({first})")
        if 0 < row.trials_ok < MIN_TRIALS_FOR_CI:
            notes.append(f"{row.model_name}: only {row.trials_ok} successful trial(s): no confidence interval")
        if row.disturbed and device.emulation in (None, "native"):  # QEMU's own time is never a phone's anyway
            notes.append(
                f"{row.model_name}: {row.disturbed} of {row.trials_ok} trials disturbed (their average exceeds "
                f"their median invoke by more than {DISTURBED_RATIO - 1:.0%}: slow invokes from load or stalls); "
                "the p5 invoke is robust to them, the average is not"
            )
        if row.speedup is not None and row.speedup.contains(1.0) and row.trials_ok >= MIN_TRIALS_FOR_CI:
            notes.append(
                f"{row.model_name}: the speed-up's 95% CI ({row.speedup.low:.2f}–{row.speedup.high:.2f}×) "
                "includes 1 — not shown to differ from the baseline"
            )
        if row.outputs is not None and row.outputs.status != "ok":
            what = "" if row.outputs.status == "wrong" else "output check failed: "
            notes.append(f"{row.model_name}: {what}{row.outputs.error} ({row.outputs.tolerance}; {row.outputs.reference})")
        if baseline is not None and row is not baseline:
            sparse = _sparse_line(row, baseline, groups)
            if sparse is not None:
                notes.append(sparse)
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


def build_report(store: Store, run_id: int, *, history: bool = True) -> RunReport:
    """The dense-vs-pruned report of run ``run_id``. Raises NotFoundError for an unknown run.

    ``history=False`` leaves out the earlier runs of these models on these devices: a caller that
    shows history elsewhere (the results site) saves a query and a bootstrap per earlier run.
    """
    run = store.get_run(run_id)
    trials = store.load_trials(run_id)
    rows = _history(store, run.started_at, trials) if history else []
    return report_of(run, trials, store.op_groups([run.id]), rows, store.output_checks([run.id]))


def report_of(
    run: RunInfo,
    trials: list[Trial],
    op_groups: list[OpGroup],
    history: list[HistoryRow] | None = None,
    checks: Sequence[OutputCheck] = (),
) -> RunReport:
    """The report of ``run`` from its loaded trials, op profiles and output checks, without the
    store: the results site loads those of many runs in a few queries and builds each report from
    them. Rows follow the optimization matrix's order (the build's), then any other model."""
    baseline_sha = _baseline(trials)
    by_check = {(c.device.serial, c.model.sha256): c for c in checks if c.run_id == run.id}
    order = _matrix_order(trials)
    by_profile = {(g.device.serial, g.model_sha256): g for g in op_groups}
    by_group: dict[tuple[str, str, str], list[Trial]] = {}
    for trial in trials:
        by_group.setdefault((trial.device.serial, trial.model.sha256, trial.model.name), []).append(trial)
    sections: dict[str, list[ModelRow]] = {}
    devices: dict[str, DeviceFacts] = {}
    for summary in summarize(trials, baseline_sha):
        serial = summary.device.serial
        devices.setdefault(serial, summary.device)
        sections.setdefault(serial, []).append(
            _row(summary, by_group[(serial, summary.model_sha256, summary.model_name)],
                 by_check.get((serial, summary.model_sha256)), by_profile.get((serial, summary.model_sha256)))
        )
    reports = []
    for serial, rows in sections.items():
        rows.sort(key=lambda r: order.index(r.role) if r.role in order else len(order))
        baseline = next((r for r in rows if r.model_sha256 == baseline_sha), None)
        tops = []
        for group in (g for g in op_groups if g.device.serial == serial):
            unit, ops = top_ops(group)
            tops.append(TopOps(group.model_name, unit, ops))
        groups = {g.model_sha256: g for g in op_groups if g.device.serial == serial}
        notes = _section_notes(devices[serial], rows, baseline, groups)
        reports.append(DeviceReport(devices[serial], rows, notes, tops))
    baseline_name = next((t.model.name for t in trials if t.model.sha256 == baseline_sha), None)
    return RunReport(
        run=run,
        baseline_name=baseline_name,
        devices=reports,
        notes=_run_notes(run.status, trials),
        history=history or [],
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
