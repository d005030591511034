"""The exporter registry: format name → function turning a RunReport into the file's text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from host.errors import UsageError
from host.report import csv, html, json, md
from host.report._model import RunReport

__all__ = ["EXPORTERS", "FORMATS", "export_report", "write_report"]

EXPORTERS: dict[str, Callable[[RunReport], str]] = {
    "md": md.render,
    "html": html.render,
    "csv": csv.render,
    "json": json.render,
}
FORMATS = tuple(EXPORTERS)


def export_report(report: RunReport, fmt: str) -> str:
    """The report as ``fmt`` (md, html, csv or json). Raises UsageError for another format."""
    try:
        exporter = EXPORTERS[fmt]
    except KeyError:
        raise UsageError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}") from None
    return exporter(report)


def write_report(report: RunReport, fmt: str, path: Path) -> Path:
    """Writes the report to ``path`` (its folder is created). Raises UsageError when it cannot be written."""
    text = export_report(report, fmt)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the report to {path}: {exc.strerror}") from exc
    return path
