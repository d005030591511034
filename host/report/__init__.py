"""Reports: the dense-vs-pruned run report, history, comparisons and the CI check, with their renderers.

    report = build_report(store, run_id)
    render_terminal(report, console)                 # rich tables
    render_op_comparison(compare_ops(store, a, b), console)   # per-op diffs (lab bench --ops)
    write_report(report, "html", Path("r.html"))     # md | html | csv | json
"""

from __future__ import annotations

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
from host.report.build import build_report
from host.report.check import check_run
from host.report.compare import compare_runs
from host.report.exporters import EXPORTERS, FORMATS, export_report, write_report
from host.report.history import history_rows
from host.report.plot import history_png, report_png
from host.report.ops import RunOpsComparison, compare_ops
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
