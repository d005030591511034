"""Markdown exporter: the run's tables per device, with notes, ready for a PR comment or a wiki."""

from __future__ import annotations

from host.report import _format as f
from host.report._model import RunReport

__all__ = ["render", "table_lines"]

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_lines(report: RunReport) -> list[str]:
    lines: list[str] = []
    for section in report.devices:
        with_instructions = f.counted(section.rows)
        header = f.export_header(with_instructions, section.rows)
        is_mixed = f.mixed(section.rows)
        lines += [f"### {_cell(f.device_line(section.device))}", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in section.rows:
            cells = f.export_cells(r, report.baseline_name, with_instructions, is_mixed, f.with_outputs(section.rows),
                                   f.with_kernels(section.rows))
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
        lines += [f"> **Note:** {_cell(note)}" for note in section.notes]
        if section.notes:
            lines.append("")
        for top in section.top_ops:
            lines += [f"**{_cell(f.top_ops_title(top))}**", "", "| value | share | type | name |", "|---|---|---|---|"]
            for kind, name, value, share in top.ops:
                share_text = f.percent(share / 100 if share is not None else None)
                lines.append(f"| {f.op_value(value, top.unit)} | {share_text} | {_cell(kind)} | {_cell(name)} |")
            lines.append("")
    return lines


def render(report: RunReport) -> str:
    run = report.run
    lines = [
        f"# lab report: run {run.id}",
        "",
        f"{run.kind} run, status **{run.status}**, started {f.when(run.started_at)} on `{run.host}`, "
        f"lab {run.lab_version}; {run.trials_ok} trials ok, {run.trials_failed} failed.",
        "",
    ]
    if report.baseline_name:
        lines += [f"Speed-up = latency(`{report.baseline_name}`) / latency(model); latency = median over trials of each trial's p5 invoke (each table names its statistic). Brackets: 95% bootstrap CI.", ""]
    lines += table_lines(report)
    lines += [f"> **Note:** {_cell(note)}" for note in report.notes]
    return "\n".join(lines).rstrip() + "\n"
