"""HTML exporter: one self-contained page (the site's stylesheet inline, plots embedded as base64 PNG,
no external links), from the templates `lab publish` uses (``host.publish.render``)."""

from __future__ import annotations

import base64

from host.report._model import RunReport
from host.report.plot import history_png, report_png

__all__ = ["render"]


def _png(png: bytes) -> str:
    return base64.b64encode(png).decode()


def render(report: RunReport) -> str:
    from host.publish.render import render as render_page
    from host.publish.render import standalone_css

    images = []
    if any(r.latency_us for d in report.devices for r in d.rows):
        images.append(("latency per device", _png(report_png(report))))
    if len({h.run_id for h in report.history}) > 1:
        images.append(("latency over time", _png(history_png(report.history))))
    return render_page("report.html", report=report, images=images, inline_css=standalone_css())
