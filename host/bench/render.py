"""How a benchmark looks: the summary table, the ``--json`` document, and live progress.

Shared by ``lab bench`` and ``lab run``. Tables and progress are rich renderables; the JSON
document is plain data (``json.dumps``-ready).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from host.bench.runner import BenchOutcome
from host.bench.stats import Estimate
from host.bench.summary import MIN_TRIALS_FOR_CI, Summary
from host.bench.evidence import kernel_names, sparse_evidence, sparse_note
from host.figures import DISTURBED_RATIO, HEADLINE, label
from host.records import DeviceFacts, Trial, to_jsonable

__all__ = ["summary_table", "failure_lines", "note_lines", "outcome_json", "RichBenchProgress", "JSON_VERSION"]

JSON_VERSION = 2  # 2: latency_us of the named statistic (was median_us of trial averages)


def _us(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}" if value < 10_000 else f"{value:,.0f}"


def _estimate(est: Estimate | None, n: int, fmt: str = "us") -> str:
    """A figure with its CI; from fewer than MIN_TRIALS_FOR_CI trials the CI is "n/a (N trials)"."""
    if est is None:
        return "—"
    if fmt == "ratio":
        point = f"{est.value:.3f}"
        interval = f"[{est.low:.3f}, {est.high:.3f}]"
    else:
        point = _us(est.value)
        interval = f"[{_us(est.low)}, {_us(est.high)}]"
    if n < MIN_TRIALS_FOR_CI:
        return f"{point} [CI n/a: {n} trial{'s' if n != 1 else ''}]"
    return f"{point} {interval}"


def _device_label(facts: DeviceFacts) -> str:
    name = " ".join(x for x in (facts.manufacturer, facts.model) if x) or "unknown model"
    parts = [name, facts.soc or "", facts.abi]
    label = f"{facts.serial}: " + ", ".join(p for p in parts if p)
    if facts.kind == "emulated" and facts.emulation not in (None, "native"):
        label += f" — emulated arm64 under QEMU ({facts.emulation}): instructions are exact, time is not a phone's"
    elif facts.kind == "emulated":
        label += " — emulated device: measures this host's CPU, not a phone's"
    elif facts.kind == "emulator":
        label += " — Android emulator"
    return label


def _latency_header(summaries: Sequence[Summary]) -> str:
    names = {s.statistic for s in summaries if s.latency_us is not None} or {HEADLINE}
    which = label(names.pop()) if len(names) == 1 else "per-row statistic"
    return f"latency µs ({which}) [95% CI]"


def summary_table(summaries: Sequence[Summary], title: str | None = None) -> Table:
    """One row per model × device: the median over trials of each trial's headline figure
    (``host.figures``, named in the header) with its 95% bootstrap CI, the median and p95 invoke, trials
    flagged as disturbed, and the ratio to the first model with its CI. The devices' facts are
    the caption."""
    devices: dict[str, DeviceFacts] = {}
    models: list[str] = []
    for s in summaries:
        devices.setdefault(s.device.serial, s.device)
        if s.model_sha256 not in models:
            models.append(s.model_sha256)
    table = Table(title=title, caption="\n".join(escape(_device_label(d)) for d in devices.values()), caption_justify="left")
    mixed = len({s.statistic for s in summaries if s.latency_us is not None}) > 1
    columns = [("model", "left"), ("ok/fail", "right"), (_latency_header(summaries), "right"),
               ("median invoke µs", "right"), ("p95 invoke µs", "right"), ("disturbed", "right"), ("init ms", "right"), ("peak MB", "right"),
               ("ratio [95% CI]", "right")]
    counted = any(s.instructions is not None for s in summaries)
    if counted:
        columns.insert(-1, ("instructions/inference", "right"))
    if len(devices) > 1:
        columns.insert(0, ("device", "left"))
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=header in ("device", "model"))  # type: ignore[arg-type]
    for s in summaries:
        model = f"{s.model_name} ({s.role})" if s.role else s.model_name
        if s.ratio is not None:
            base_n = next((b.trials_ok for b in summaries if b.model_sha256 == s.baseline_sha256
                           and b.device.serial == s.device.serial), 0)
            ratio = _estimate(s.ratio, min(s.trials_ok, base_n), "ratio")
        else:
            ratio = "1 (baseline)" if len(models) > 1 and s.model_sha256 == models[0] else "—"
        latency = _estimate(s.latency_us, s.trials_ok)
        if mixed and s.latency_us is not None:
            latency += f" ({label(s.statistic)})"
        row = [
            escape(model),
            f"{s.trials_ok}/{s.trials_failed}",
            latency,
            _us(s.typical_us),
            _us(s.tail_us),
            f"{s.disturbed}/{s.trials_ok}" if s.trials_ok else "—",
            f"{s.init_us / 1000:.1f}" if s.init_us is not None else "—",
            f"{s.peak_memory_mb:.1f}" if s.peak_memory_mb is not None else "—",
            ratio,
        ]
        if counted:
            row.insert(-1, f"{s.instructions:,.0f}" if s.instructions is not None else "—")
        if len(devices) > 1:
            row.insert(0, escape(s.device.serial))
        table.add_row(*row)
    return table


def failure_lines(outcome: BenchOutcome) -> list[str]:
    """One line per device that could not run, and per model × device with failed trials."""
    lines = [f"{serial}: no trial could run: {error}" for serial, error in outcome.setup_errors.items()]
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
        "status": {0: "ok", 1: "partial", 2: "failed"}[outcome.exit_code],
        "trials": len(outcome.trials),
        "trials_ok": sum(t.status == "ok" for t in outcome.trials),
        "tools": tools,
        "statistic": {"name": HEADLINE, "label": label(HEADLINE), "latency": "median over ok trials, 95% bootstrap CI"},
        "results": [_summary_json(s) for s in outcome.summaries],
        "notes": note_lines(outcome),
        "failures": [_failure_json(t) for t in outcome.trials if t.status != "ok"],
        "setup_errors": outcome.setup_errors,
    }


class RichBenchProgress:
    """A progress bar across all trials, with device notes and failures printed above it.

    Use as a context manager around ``run_bench``; it draws on ``console`` (the CLI's stderr).
    """

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]bench[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task: Any = None
        self._failed = 0

    def __enter__(self) -> RichBenchProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, total_trials: int, devices: Sequence[DeviceFacts]) -> None:
        self._task = self._progress.add_task("bench", total=total_trials, failed=0)
        names = ", ".join(d.serial for d in devices)
        self._progress.console.print(f"{total_trials} trials on {len(devices)} device(s): {escape(names)}", highlight=False)

    def note(self, serial: str, message: str) -> None:
        self._progress.console.print(f"[dim]{escape(serial)}[/]: {escape(message)}", highlight=False)

    def trial_done(self, trial: Trial) -> None:
        if trial.status != "ok":
            self._failed += 1
            self._progress.console.print(
                f"[yellow]{escape(trial.device.serial)}[/] {escape(trial.model.name)} #{trial.index + 1}: "
                f"{trial.status}: {escape(trial.error or '')}",
                highlight=False,
            )
        if self._task is not None:
            self._progress.update(self._task, advance=1, failed=self._failed)
