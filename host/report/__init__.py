"""Reports: the dense-vs-pruned run report, history, comparisons and the CI check, with their renderers.

    report = build_report(store, run_id)
    render_terminal(report, console)                 # rich tables
    render_op_comparison(compare_ops(store, a, b), console)   # per-op diffs (lab bench --ops)
    write_report(report, "html", Path("r.html"))     # md | html | csv | json

The records load with the package; every function loads on first use (PEP 562), with the store,
numpy, rich or matplotlib behind it: ``from host.report import stdout_console`` must not import
SQLAlchemy, nor ``host.report.json`` the statistics.
"""

from __future__ import annotations

import importlib
import typing

from host.report._model import (
    CheckResult,
    CheckRow,
    ComparisonRow,
    DeviceReport,
    HistoryRow,
    ModelRow,
    RunComparison,
    RunReport,
)

if typing.TYPE_CHECKING:
    from host.report.build import build_report
    from host.report.check import check_run
    from host.report.compare import compare_runs
    from host.report.exporters import EXPORTERS, FORMATS, export_report, write_report
    from host.report.history import history_rows
    from host.report.ops import RunOpsComparison, compare_ops
    from host.report.plot import history_png, report_png
    from host.report.terminal import (
        render_check,
        render_comparison,
        render_history,
        render_op_comparison,
        render_terminal,
        stdout_console,
    )

__all__ = [
    "RunReport",
    "DeviceReport",
    "ModelRow",
    "HistoryRow",
    "ComparisonRow",
    "RunComparison",
    "CheckRow",
    "CheckResult",
    "build_report",
    "history_rows",
    "compare_runs",
    "compare_ops",
    "RunOpsComparison",
    "render_op_comparison",
    "check_run",
    "render_terminal",
    "render_history",
    "render_comparison",
    "render_check",
    "stdout_console",
    "EXPORTERS",
    "FORMATS",
    "export_report",
    "write_report",
    "history_png",
    "report_png",
]

_LAZY_EXPORTS = {
    "build_report": "build",
    "check_run": "check",
    "compare_runs": "compare",
    "EXPORTERS": "exporters",
    "FORMATS": "exporters",
    "export_report": "exporters",
    "write_report": "exporters",
    "history_rows": "history",
    "RunOpsComparison": "ops",
    "compare_ops": "ops",
    "history_png": "plot",
    "report_png": "plot",
    "render_check": "terminal",
    "render_comparison": "terminal",
    "render_history": "terminal",
    "render_op_comparison": "terminal",
    "render_terminal": "terminal",
    "stdout_console": "terminal",
}


def __getattr__(name: str) -> object:
    if name in _LAZY_EXPORTS:
        return getattr(importlib.import_module(f"host.report.{_LAZY_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_EXPORTS})
