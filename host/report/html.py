"""HTML exporter: one self-contained page (inline CSS, plots embedded as base64 PNG, no external links)."""

from __future__ import annotations

import base64
from html import escape

from host.report import _format as f
from host.report._model import RunReport
from host.report.plot import history_png, report_png

__all__ = ["render"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4em 0.8em; margin: 0.3em 0; }
.meta { color: #555; }
img { max-width: 100%; }
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _section(report: RunReport) -> list[str]:
    parts: list[str] = []
    for section in report.devices:
        with_instructions = f.counted(section.rows)
        header = f.export_header(with_instructions, section.rows)
        is_mixed = f.mixed(section.rows)
        parts.append(f"<h2>{escape(f.device_line(section.device))}</h2>")
        parts.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>")
        for r in section.rows:
            cells = f.export_cells(r, report.baseline_name, with_instructions, is_mixed)
            parts.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
        parts += [f'<p class="note">{escape(note)}</p>' for note in section.notes]
        for top in section.top_ops:
            parts.append(f"<h3>{escape(f.top_ops_title(top))}</h3>")
            parts.append("<table><tr><th>value</th><th>share</th><th>type</th><th>name</th></tr>")
            for kind, name, value, share in top.ops:
                share_text = f"{share:.1f}%" if share is not None else f.DASH
                cells = (f.op_value(value, top.unit), share_text, kind, name)
                parts.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
            parts.append("</table>")
    return parts


def render(report: RunReport) -> str:
    run = report.run
    body = [
        f"<h1>lab report: run {run.id}</h1>",
        f'<p class="meta">{escape(run.kind)} run, status <b>{escape(run.status)}</b>, started '
        f"{escape(f.when(run.started_at))} on {escape(run.host)}, lab {escape(run.lab_version)}; "
        f"{run.trials_ok} trials ok, {run.trials_failed} failed.</p>",
    ]
    if report.baseline_name:
        body.append(
            f"<p>Speed-up = latency({escape(report.baseline_name)}) / latency(model); latency = median over trials of each trial's p5 invoke (the statistic is named in each table). Brackets: 95% bootstrap CI.</p>"
        )
    body += _section(report)
    body += [f'<p class="note">{escape(note)}</p>' for note in report.notes]
    if any(r.latency_us for d in report.devices for r in d.rows):
        body.append(_img(report_png(report), "latency per device"))
    if len({h.run_id for h in report.history}) > 1:
        body += ["<h2>history</h2>", _img(history_png(report.history), "latency over time")]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>lab report: run {run.id}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
