"""CSV exporter: one row per model × device (report) or per history row."""

from __future__ import annotations

import csv as _csv
import io
from collections.abc import Sequence
from typing import Any

from host.bench.stats import Estimate
from host.report._model import HistoryRow, RunReport

__all__ = ["render", "render_history", "report_records", "history_records"]


def _est(prefix: str, value: Estimate | None) -> dict[str, Any]:
    return {
        prefix: value.value if value else None,
        f"{prefix}_low": value.low if value else None,
        f"{prefix}_high": value.high if value else None,
    }


def report_records(report: RunReport) -> list[dict[str, Any]]:
    records = []
    for section in report.devices:
        d = section.device
        for r in section.rows:
            records.append(
                {
                    "run_id": report.run.id,
                    "device_serial": d.serial,
                    "device_kind": d.kind,
                    "device_model": d.model,
                    "device_soc": d.soc,
                    "abi": d.abi,
                    "model": r.model_name,
                    "role": r.role,
                    "sha256": r.model_sha256,
                    "size_bytes": r.size_bytes,
                    "trials_ok": r.trials_ok,
                    "trials_failed": r.trials_failed,
                    "statistic": r.statistic,
                    **_est("latency_us", r.latency_us),
                    **_est("speedup", r.speedup),
                    "median_invoke_us": r.typical_us,
                    "p95_us": r.tail_us,
                    "disturbed_trials": r.disturbed,
                    "min_us": r.min_us,
                    "init_us": r.init_us,
                    "peak_memory_mb": r.peak_memory_mb,
                    "accuracy": r.accuracy,
                    "sparsity": r.sparsity,
                    "instructions_per_inference": r.instructions,
                    "outputs_status": r.outputs.status if r.outputs else None,
                    "outputs_inputs": r.outputs.inputs if r.outputs else None,
                    "outputs_max_rel_error": r.outputs.max_rel_error if r.outputs else None,
                    "outputs_top1_agreement": r.outputs.top1_agreement if r.outputs else None,
                    "outputs_baseline_agreement": r.outputs.baseline_agreement if r.outputs else None,
                    "kernels_precision": r.kernels.precision if r.kernels else None,
                    "kernels_sparse": r.kernels.sparse if r.kernels else None,
                    "xnnpack_nodes": r.kernels.delegated if r.kernels else None,
                    "kernels": r.kernels.summary if r.kernels and r.kernels.counted else None,
                }
            )
    return records


def history_records(rows: Sequence[HistoryRow]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": r.run_id,
            "started_at": r.started_at.isoformat(),
            "run_status": r.run_status,
            "model": r.model_name,
            "sha256": r.model_sha256,
            "device_serial": r.device_serial,
            "device_model": r.device_model,
            "device_kind": r.device_kind,
            "statistic": r.statistic,
            **_est("latency_us", r.latency_us),
            "trials_ok": r.trials_ok,
            "trials_failed": r.trials_failed,
            "threads": ";".join(map(str, r.threads)),
            "xnnpack": ";".join("on" if x else "off" for x in r.xnnpack),
            "tools": ";".join(r.tools),
            "tool_versions": ";".join(r.tool_versions),
            "instructions_per_inference": r.instructions,
        }
        for r in rows
    ]


def _write(records: list[dict[str, Any]], header: list[str]) -> str:
    buffer = io.StringIO()
    writer = _csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def render(report: RunReport) -> str:
    records = report_records(report)
    header = list(records[0]) if records else ["run_id", "device_serial", "model", "statistic", "latency_us"]
    return _write(records, header)


def render_history(rows: Sequence[HistoryRow]) -> str:
    records = history_records(rows)
    header = list(records[0]) if records else ["run_id", "started_at", "model", "device_serial", "statistic", "latency_us"]
    return _write(records, header)
