"""How a benchmark's outcome looks: the summary table, the lines under it and the ``--json`` document.

Shared by ``lab bench`` and ``lab run``. Figures are written by ``host.report._format``, as in
every other table and report; the JSON document is plain data (``json.dumps``-ready).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from host.bench.evidence import kernel_names, sparse_evidence, sparse_note
from host.bench.runner import BenchOutcome
from host.bench.summary import MIN_TRIALS_FOR_CI, Summary
from host.figures import DISTURBED_RATIO, HEADLINE, label
from host.records import DeviceFacts, OutputCheck, Trial, to_jsonable
from host.report import _format as f

__all__ = ["summary_table", "failure_lines", "note_lines", "outcome_json", "check_cell", "check_line", "JSON_VERSION"]

JSON_VERSION = 2  # 2: latency_us of the named statistic (was median_us of trial averages)


def _caption(facts: DeviceFacts) -> str:
    """The device's line, and what its figures measure when it is not a phone."""
    line = f.device_line(facts)
    if facts.kind == "emulated" and facts.emulation not in (None, "native"):
        return line + f" — emulated arm64 under QEMU ({facts.emulation}): instructions are exact, time is not a phone's"
    if facts.kind == "emulated":
        return line + " — emulated device: measures this host's CPU, not a phone's"
    return line


def check_cell(check: OutputCheck | None) -> str:
    """The table's "outputs" cell: how the device's outputs compare with the host's."""
    return f.outputs_cell(check.status, check.inputs, check.top1_agreement) if check else f.DASH


def check_line(check: OutputCheck) -> str:
    """One line on a check: its figures and rule, or why it failed."""
    where = f"{check.device.serial} {check.model.name}"
    if check.status == "failed":
        return f"{where}: output check failed: {check.error}"
    figures = [f"max |device − host| {_g(check.max_abs_error)} ({_g(check.max_rel_error)} × max |host|)"]
    if check.top1_agreement is not None:
        figures.append(f"top-1 agreement {check.top1_agreement:.1%}")
    if check.baseline_agreement is not None and check.baseline and check.baseline != check.model.name:
        figures.append(f"top-1 agreement with {check.baseline} on the host {check.baseline_agreement:.1%}")
    verdict = "outputs match the host's" if check.status == "ok" else "WRONG OUTPUT ON THIS DEVICE"
    why = f" — {check.error.removeprefix('wrong output on this device: ')}" if check.status == "wrong" and check.error else ""
    return (f"{where}: {verdict} on {check.inputs} inputs{why}: {', '.join(figures)} "
            f"[{check.precision}: {check.tolerance}; reference: {check.reference}]")


def _g(value: float | None) -> str:
    return f.DASH if value is None else f"{value:.2g}"


def summary_table(
    summaries: Sequence[Summary], title: str | None = None, checks: Sequence[OutputCheck] = ()
) -> Table:
    """One row per model × device: the median over trials of each trial's headline figure
    (``host.figures``, named in the header) with its 95% bootstrap CI, the median and p95 invoke,
    init time, peak memory and the ratio to the first model with its CI; trials count the failed
    and disturbed ones; with ``checks``, whether the device's outputs matched the host's. The
    devices' facts are the caption."""
    devices: dict[str, DeviceFacts] = {}
    models: list[str] = []
    for s in summaries:
        devices.setdefault(s.device.serial, s.device)
        if s.model_sha256 not in models:
            models.append(s.model_sha256)
    caption = "\n".join(escape(_caption(d)) for d in devices.values())
    table = Table(title=title, caption=caption, caption_justify="left")
    statistics = [s.statistic for s in summaries if s.latency_us is not None]
    mixed = len(set(statistics)) > 1
    counted = any(s.instructions is not None for s in summaries)
    by_check = {(c.device.serial, c.model.sha256): c for c in checks}
    columns = ["model", "trials", f.latency_header(statistics) + " [95% CI]", "median invoke", "p95 invoke", "init",
               "peak mem", *(["instructions/inference"] if counted else []), "ratio [95% CI]",
               *(["outputs"] if checks else [])]
    if len(devices) > 1:
        columns.insert(0, "device")
    for header in columns:
        left = header in ("device", "model")
        table.add_column(header, justify="left" if left else "right", no_wrap=left)
    for s in summaries:
        if s.ratio is not None:
            base_n = next((b.trials_ok for b in summaries if b.model_sha256 == s.baseline_sha256
                           and b.device.serial == s.device.serial), 0)
            ratio = f.ratio(s.ratio, min(s.trials_ok, base_n))
        else:
            ratio = "baseline" if len(models) > 1 and s.model_sha256 == models[0] else f.DASH
        row = [
            escape(f"{s.model_name} ({s.role})" if s.role else s.model_name),
            f.trials_cell(s.trials_ok, s.trials_failed, s.disturbed),
            f.latency_cell(s.latency_us, s.statistic, s.trials_ok, mixed),
            f.us(s.typical_us),
            f.us(s.tail_us),
            f.ms(s.init_us),
            f.mib(s.peak_memory_mb),
            *([f.number(s.instructions)] if counted else []),
            ratio,
            *([check_cell(by_check.get((s.device.serial, s.model_sha256)))] if checks else []),
        ]
        if len(devices) > 1:
            row.insert(0, escape(s.device.serial))
        table.add_row(*row)
    return table


def failure_lines(outcome: BenchOutcome) -> list[str]:
    """One line per device that could not run, per model × device with failed trials, and per
    output check that failed or found wrong outputs."""
    lines = [f"{serial}: no trial could run: {error}" for serial, error in outcome.setup_errors.items()]
    lines += [check_line(c) for c in outcome.checks if c.status != "ok"]
    for s in outcome.summaries:
        if s.trials_failed and s.device.serial not in outcome.setup_errors:
            lines.append(f"{s.device.serial} {s.model_name}: {s.trials_failed} trial(s) failed: {'; '.join(s.errors)}")
    seen: set[tuple[str, str, str]] = set()
    for t in outcome.trials:  # what the output warned of (short counts, pasted runs, --ops), once per model × device
        for warning in t.result.warnings if t.result else ():
            key = (t.device.serial, t.model.name, warning)
            if key not in seen:
                seen.add(key)
                lines.append(f"{t.device.serial} {t.model.name}: warning: {warning}")
    return lines


def note_lines(outcome: BenchOutcome) -> list[str]:
    """What a reader must know under the table: the statistic, disturbed trials, and per model
    against the first whether XNNPACK's sparse path ran (from the kernels that ran, where profiled)."""
    lines = [f"latency = median over trials of each trial's {label(HEADLINE)}; ratio = latency(model) / latency(first)"]
    kernels: dict[tuple[str, str], set[str]] = {}
    for t in outcome.trials:
        if t.result is not None and t.result.kernels is not None:
            kernels.setdefault((t.device.serial, t.model.sha256), set()).update(kernel_names(t.result.kernels.rows))
    by_key = {(s.device.serial, s.model_sha256): s for s in outcome.summaries}
    for s in outcome.summaries:
        if s.disturbed and s.device.emulation in (None, "native"):  # QEMU's own time is never a phone's anyway
            lines.append(
                f"{s.device.serial} {s.model_name}: {s.disturbed} of {s.trials_ok} trials disturbed "
                f"(average > {DISTURBED_RATIO:.2f}× median invoke: slow invokes from load or stalls)"
            )
        base = by_key.get((s.device.serial, s.baseline_sha256 or ""))
        if base is None or base is s:
            continue
        evidence = sparse_evidence(
            kernels.get((s.device.serial, base.model_sha256), set()), kernels.get((s.device.serial, s.model_sha256), set())
        )
        note = sparse_note(s.model_name, s.instructions, base.instructions, evidence)
        if note is not None:
            lines.append(f"{s.device.serial} {note}")
    lines += [check_line(c) for c in outcome.checks if c.status == "ok"]
    return lines


def _summary_json(s: Summary) -> dict[str, Any]:
    return {
        "device": to_jsonable(s.device),
        "model": {"name": s.model_name, "sha256": s.model_sha256, "role": s.role},
        "trials_ok": s.trials_ok,
        "trials_failed": s.trials_failed,
        "statistic": s.statistic,
        "latency_us": to_jsonable(s.latency_us),
        "ci_trials": s.trials_ok,
        "ci_valid": s.trials_ok >= MIN_TRIALS_FOR_CI,
        "median_invoke_us": s.typical_us,
        "p95_us": s.tail_us,
        "min_us": s.min_us,
        "disturbed_trials": s.disturbed,
        "init_us": s.init_us,
        "peak_memory_mb": s.peak_memory_mb,
        "instructions_per_inference": s.instructions,
        "ratio": to_jsonable(s.ratio),
        "baseline_sha256": s.baseline_sha256,
        "values_us": s.values_us,
        "errors": s.errors,
    }


def _failure_json(t: Trial) -> dict[str, Any]:
    return {
        "device": t.device.serial,
        "model": t.model.name,
        "model_sha256": t.model.sha256,
        "trial": t.index,
        "position": t.position,
        "status": t.status,
        "error": t.error,
        "raw_output_tail": t.raw_output[-2000:],
    }


def outcome_json(outcome: BenchOutcome) -> dict[str, Any]:
    """The whole outcome as one JSON document: run id, per model × device statistics with CIs,
    ratios with CIs, the tools used and every failure."""
    tools = {t.device.serial: to_jsonable(t.tool) for t in outcome.trials if t.tool is not None}
    return {
        "version": JSON_VERSION,
        "run_id": outcome.run_id,
        "exit_code": outcome.exit_code,
        "status": _status(outcome),
        "trials": len(outcome.trials),
        "trials_ok": sum(t.status == "ok" for t in outcome.trials),
        "tools": tools,
        "statistic": {"name": HEADLINE, "label": label(HEADLINE), "latency": "median over ok trials, 95% bootstrap CI"},
        "results": [_summary_json(s) for s in outcome.summaries],
        "notes": note_lines(outcome),
        "failures": [_failure_json(t) for t in outcome.trials if t.status != "ok"],
        "setup_errors": outcome.setup_errors,
        "output_checks": [_check_json(c) for c in outcome.checks],
        "outputs_ok": all(c.status == "ok" for c in outcome.checks),
    }


def _status(outcome: BenchOutcome) -> str:
    """ok, partial (some trials failed), failed (none ran), or "wrong outputs" (every trial ran, but
    some model's outputs on a device were wrong or could not be checked)."""
    if outcome.exit_code == 1 and all(t.status == "ok" for t in outcome.trials):
        return "wrong outputs"
    return {0: "ok", 1: "partial", 2: "failed"}[outcome.exit_code]


def _check_json(c: OutputCheck) -> dict[str, Any]:
    document = to_jsonable(c)
    document["device"] = c.device.serial
    document["model"] = {"name": c.model.name, "sha256": c.model.sha256, "role": c.model.role}
    document["wrong_output_on_device"] = c.status == "wrong"
    return document
