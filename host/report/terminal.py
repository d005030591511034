"""Rich tables for the terminal: the run report, history, comparisons and the check's verdict."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from host.report import _format as f
from host.figures import HEADLINE, label
from host.report._model import CheckResult, CheckRow, HistoryRow, RunComparison, RunReport
from host.report.ops import OpDiff, RunOpsComparison

__all__ = [
    "render_terminal",
    "render_history",
    "render_comparison",
    "render_op_comparison",
    "render_check",
    "stdout_console",
]

OP_ROWS = 25  # rows of an op diff shown; ops in one run only are always shown

_PIPE_WIDTH = 200  # a file or pipe has no width: do not wrap tables at rich's default of 80 columns


def stdout_console() -> Console:
    """The console for tables on stdout: the terminal's width, or wide enough for any table when redirected."""
    console = Console()
    return console if console.is_terminal else Console(width=_PIPE_WIDTH)

_VERDICT_STYLE = {"faster": "green", "slower": "red", "no change": "dim"}


def render_terminal(report: RunReport, console: Console) -> None:
    """The dense-vs-pruned tables of a run, one per device, with the notes under each."""
    run = report.run
    console.print(
        f"[bold]run {run.id}[/] ({run.kind}, {run.status}) started {f.when(run.started_at)} on {escape(run.host)}, "
        f"lab {run.lab_version}; {run.trials_ok} trials ok, {run.trials_failed} failed"
    )
    if report.baseline_name:
        console.print(
            f"latency = median over trials of each trial's {label(HEADLINE)}; "
            f"speed-up = latency({escape(report.baseline_name)}) / latency(model); 95% CIs in brackets"
        )
    for section in report.devices:
        show_instructions = f.counted(section.rows)
        is_mixed = f.mixed(section.rows)
        table = Table(title=escape(f.device_line(section.device)), title_justify="left")
        latency = f.latency_header(r.statistic for r in section.rows if r.latency_us is not None)
        columns = ("model", latency, "speed-up", "size", "accuracy", "sparsity", "trials", "init", "peak mem")
        for column in columns:
            table.add_column(column, justify="left" if column == "model" else "right")
        if show_instructions:
            table.add_column("instructions/inference", justify="right")
        show_outputs = f.with_outputs(section.rows)
        if show_outputs:
            table.add_column("outputs on device", justify="right")
        show_kernels = f.with_kernels(section.rows)
        if show_kernels:
            table.add_column("kernels that ran", justify="left")
        for row in section.rows:
            cells = [
                escape(f.model_cell(row.model_name, row.role)),
                f.latency_cell(row.latency_us, row.statistic, row.trials_ok, is_mixed),
                f.speedup_cell(row, report.baseline_name),
                f.size(row.size_bytes),
                f.percent(row.accuracy),
                f.percent(row.sparsity),
                f.trials_cell(row.trials_ok, row.trials_failed, row.disturbed),
                f.ms(row.init_us),
                f.mib(row.peak_memory_mb),
            ]
            if show_instructions:
                cells.append(f.number(row.instructions))
            if show_outputs:
                o = row.outputs
                cell = f.outputs_cell(o.status, o.inputs, o.top1_agreement) if o else f.DASH
                cells.append(f"[bold red]{cell}[/]" if o and o.status != "ok" else cell)
            if show_kernels:
                cells.append(escape(f.kernels_cell(row.kernels)))
            table.add_row(*cells)
        console.print(table)
        for note in section.notes:
            console.print(f"  [yellow]note:[/] {escape(note)}")
        for top in section.top_ops:
            console.print(f"  {escape(f.top_ops_title(top))}:")
            for kind, name, value, share in top.ops:
                share_text = f" ({f.percent(share / 100)})" if share is not None else ""
                console.print(f"    {f.op_value(value, top.unit)}{share_text}  {escape(kind)}  {escape(name)}")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")


def render_history(rows: list[HistoryRow], console: Console) -> None:
    latency = f.latency_header(r.statistic for r in rows if r.latency_us is not None)
    is_mixed = len({r.statistic for r in rows if r.latency_us is not None}) > 1
    table = Table(
        title=f"history (newest first; {latency} = median over trials [95% CI])", title_justify="left"
    )
    for column in ("run", "when", "model", "device", latency, "trials", "threads", "xnnpack", "tool", "status"):
        table.add_column(column, justify="right" if column in ("run", "trials", "threads") else "left")
    for r in rows:
        xnnpack = "/".join("on" if x else "off" for x in r.xnnpack) or f.DASH
        trials = f.trials_cell(r.trials_ok, r.trials_failed)
        device = r.device_serial
        table.add_row(
            str(r.run_id),
            f.when(r.started_at),
            escape(r.model_name),
            escape(device),
            f.latency_cell(r.latency_us, r.statistic, r.trials_ok, is_mixed),
            trials,
            ",".join(map(str, r.threads)) or f.DASH,
            xnnpack,
            ", ".join(t[:10] for t in r.tools) or f.DASH,
            r.run_status,
        )
    console.print(table)


def render_comparison(cmp: RunComparison, console: Console) -> None:
    table = Table(
        title=f"run {cmp.run_b.id} against run {cmp.run_a.id} (ratio = B / A; > 1 is slower)", title_justify="left"
    )
    runs = (f"run {cmp.run_a.id}", f"run {cmp.run_b.id}")
    for column in ("model", "device", "per trial", *runs, "ratio [95% CI]", "p (Holm)", "verdict"):
        table.add_column(column)
    for r in cmp.rows:
        name = escape(r.model_name) + ("" if r.matched_by == "sha256" else f" [dim](by {r.matched_by})[/]")
        table.add_row(
            name,
            escape(r.device_serial),
            label(r.statistic),
            f.estimate_us(r.median_a_us),
            f.estimate_us(r.median_b_us),
            f.ratio(r.ratio),
            f"{r.p_value:.3g}" if r.p_value is not None else f.DASH,
            f"[{_VERDICT_STYLE[r.verdict]}]{r.verdict}[/]",
        )
    console.print(table)
    for r in cmp.rows:
        if r.verdict == "no change":
            console.print(f"  [dim]{escape(r.model_name)} on {escape(r.device_serial)}: {escape(r.reason)}[/]")
    for item in cmp.unmatched:
        console.print(f"  [yellow]not compared:[/] {escape(item)}")
    console.print(
        "[dim]medians over trials of each trial's figure (p5 invoke: the lab's headline statistic); "
        "no change = not shown to differ (trimmed t-test on log values, Holm-adjusted p < 0.05, and a change beyond ±3%)[/]"
    )


def _op_row(r: OpDiff, unit: str) -> tuple[str, ...]:
    index = r.index_a if r.index_a is not None else r.index_b
    ratio = r.ratio
    return (
        f.DASH if unit == "instructions" or index is None else str(index),
        escape(r.node_type),
        escape(r.name),
        f.op_value(r.a, unit),
        f.op_value(r.b, unit),
        f"{ratio:.3f}" if ratio is not None else f.DASH,
        ("+" if r.delta > 0 else "") + f.op_value(r.delta, unit),
        "[bold]yes[/]" if r.beyond_noise else "[dim]no[/]",
        r.matched_by if r.a is not None and r.b is not None else f"[yellow]{r.matched_by}[/]",
    )


def render_op_comparison(cmp: RunOpsComparison, console: Console, limit: int = OP_ROWS) -> None:
    """Per model × device: the ops sorted by their part in the total change; unmatched ops always listed."""
    for g in cmp.groups:
        models = g.model_b if g.model_a == g.model_b else f"{g.model_a} → {g.model_b}"
        what = "instructions per inference, per kernel" if g.unit == "instructions" else "ms per inference, per op"
        table = Table(
            title=f"{escape(models)} on {escape(g.device_serial)}: {what}, run {cmp.run_b.id} (B) against run {cmp.run_a.id} (A)",
            title_justify="left",
        )
        is_kernels = g.unit == "instructions"
        for column in ("#", "library" if is_kernels else "type", "function" if is_kernels else "name"):
            table.add_column(column)
        for column in ("A", "B", "B/A", "B − A", "beyond noise", "matched by"):
            table.add_column(column, justify="right" if column in ("A", "B", "B/A", "B − A") else "left")
        shown = [r for i, r in enumerate(g.rows) if i < limit or r.a is None or r.b is None]
        for r in shown:
            table.add_row(*_op_row(r, g.unit))
        console.print(table)
        total_ratio = f" (×{g.total_b / g.total_a:.3f})" if g.total_a else ""
        console.print(
            f"  total {f.op_value(g.total_a, g.unit)} → {f.op_value(g.total_b, g.unit)}{total_ratio}; "
            f"{len(g.unmatched)} op(s) in one run only; medians over {g.trials_a} and {g.trials_b} trials"
        )
        if len(shown) < len(g.rows):
            console.print(f"  [dim]{len(g.rows) - len(shown)} more matched op(s) with smaller changes[/]")
    for item in cmp.not_compared:
        console.print(f"  [yellow]not compared:[/] {escape(item)}")


def _check_value(r: CheckRow, value: float | None) -> str:
    if r.test == "memory":
        return f.mib(value)
    return f.us(value) if r.metric == "time" else f.number(value)


_OUTCOME_CELL = {"ok": "[green]ok[/]", "regression": "[red]REGRESSION[/]", "missing": "[red]MISSING[/]", "failed": "[red]FAILED[/]"}


def render_check(result: CheckResult, console: Console) -> None:
    """The verdict first (what a CI log reader looks for), then the table and the reasons."""
    if result.candidate is None or not result.rows:
        console.print("[yellow]nothing to compare[/]: " + escape("; ".join(result.reasons) or "no data"))
        return
    bases = ", ".join(str(b.id) for b in result.baselines)
    failing = result.regressions
    pairs = len({(r.model_name, r.device_serial) for r in result.rows})
    if failing:
        kinds = sorted({r.outcome for r in failing})
        console.print(
            f"[red bold]gate failed[/] ({', '.join(kinds)}): {len(failing)} of {len(result.rows)} test(s) over "
            f"{pairs} model × device pair(s) of run {result.candidate.id} against run(s) {bases}; "
            f"latency threshold {f.percent(result.max_regression)} ({result.metric})"
        )
    else:
        console.print(
            f"[green bold]no regression[/]: run {result.candidate.id} against run(s) {bases}, "
            f"{pairs} pair(s), {len(result.rows)} test(s), latency threshold {f.percent(result.max_regression)} ({result.metric})"
        )
    table = Table()
    for column in ("model", "device", "test", "per trial", "baseline", "candidate", "ratio", "p (Holm)", "result", "why"):
        table.add_column(column)
    for r in result.rows:
        p = f"{r.p_adjusted:.3g}" if r.p_adjusted is not None else f.DASH
        table.add_row(
            escape(r.model_name),
            escape(r.device_serial),
            r.test,
            label(r.statistic),
            _check_value(r, r.baseline),
            _check_value(r, r.candidate),
            f.ratio(r.ratio, min(r.trials) if r.metric == "time" else None),
            p,
            _OUTCOME_CELL[r.outcome],
            escape(r.reason),
        )
    console.print(table)
    if result.family:
        console.print(f"  [dim]{escape(result.family)}[/]")
    for r in result.rows:
        for line in r.ops:
            console.print(f"  {escape(r.model_name)} on {escape(r.device_serial)}: {escape(line)}")
    for reason in result.reasons:
        console.print(f"  [yellow]not compared:[/] {escape(reason)}")
