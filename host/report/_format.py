"""How figures are written in every table, report and export (one place, so they all agree).

One unit per kind of figure, so a column never mixes units: durations of an invoke in µs
(``us``, ``estimate_us``), init times in ms (``ms``), sizes and memory in binary mebibytes
(``size`` from bytes, ``mib`` from benchmark_model's MB, which are MiB), fractions as percentages
(``percent``), counts as whole numbers (``number``), a device as ``device_line``. Every function
takes None and writes it as ``DASH``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from host.bench.stats import Estimate
from host.bench.summary import MIN_TRIALS_FOR_CI
from host.figures import HEADLINE, label
from host.records import DeviceFacts
from host.report._model import KernelFigures, ModelRow, TopOps

__all__ = [
    "us",
    "ms",
    "estimate_us",
    "latency_header",
    "latency_cell",
    "trials_cell",
    "mixed",
    "ratio",
    "speedup",
    "speedup_cell",
    "size",
    "mib",
    "percent",
    "number",
    "when",
    "device_line",
    "DASH",
    "op_value",
    "EXPORT_HEADER",
    "counted",
    "export_header",
    "export_cells",
    "top_ops_title",
    "outputs_cell",
    "with_outputs",
    "kernels_cell",
    "model_cell",
    "with_kernels",
]

DASH = "—"


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def us(value: float | None) -> str:
    """``109.9 µs``, ``93,826 µs``: always microseconds (one decimal below 1,000)."""
    return DASH if value is None else f"{_us(value)} µs"


def _no_ci(n: int | None) -> bool:
    return n is not None and n < MIN_TRIALS_FOR_CI


def _na(n: int) -> str:
    return f"[CI n/a: {n} trial{'s' if n != 1 else ''}]"


def ms(value: float | None) -> str:
    """A duration given in µs, written in milliseconds: ``111.3 ms`` (init times span µs to seconds)."""
    return DASH if value is None else f"{value / 1000:,.1f} ms"


def estimate_us(value: Estimate | None, n: int | None = None) -> str:
    """``109.9 [109.4–110.7] µs``: the median and its CI; from ``n`` < 3 trials, ``[CI n/a: n trials]``."""
    if value is None:
        return DASH
    if _no_ci(n):
        return f"{us(value.value)} {_na(n or 0)}"
    return f"{_us(value.value)} [{_us(value.low)}–{_us(value.high)}] µs"


def ratio(value: Estimate | None, n: int | None = None) -> str:
    if value is None:
        return DASH
    if _no_ci(n):
        return f"{value.value:.3f}× {_na(n or 0)}"
    return f"{value.value:.3f}× [{value.low:.3f}–{value.high:.3f}]"


def speedup(value: Estimate | None, n: int | None = None) -> str:
    if value is None:
        return DASH
    if _no_ci(n):
        return f"{value.value:.2f}× {_na(n or 0)}"
    return f"{value.value:.2f}× [{value.low:.2f}–{value.high:.2f}]"


def latency_header(statistics: Iterable[str]) -> str:
    """``latency (p5 invoke)``: the column names the per-trial statistic, or says rows differ."""
    names = set(statistics) or {HEADLINE}
    return f"latency ({label(names.pop())})" if len(names) == 1 else "latency (statistic per row)"


def latency_cell(value: Estimate | None, statistic: str, n: int, mixed: bool) -> str:
    """A latency with its CI; rows of a mixed table also name their statistic."""
    cell = estimate_us(value, n)
    return f"{cell} ({label(statistic)})" if mixed and value is not None else cell


def trials_cell(ok: int, failed: int, disturbed: int = 0) -> str:
    """``5``, ``5 (+1 failed)``, ``5 (2 disturbed)``."""
    notes = [f"+{failed} failed"] if failed else []
    if disturbed:
        notes.append(f"{disturbed} disturbed")
    return f"{ok}" + (f" ({', '.join(notes)})" if notes else "")


def speedup_cell(row: ModelRow, baseline_name: str | None) -> str:
    """A row's speed-up, or "baseline" for the model the others are relative to."""
    if row.speedup is not None:
        return speedup(row.speedup, row.trials_ok)
    return "baseline" if row.model_name == baseline_name else DASH


def size(value: int | None) -> str:
    """A size in bytes as binary mebibytes: ``0.11 MiB``, ``12.40 MiB``."""
    return DASH if value is None else f"{value / (1 << 20):,.2f} MiB"


def mib(value: float | None) -> str:
    """Memory that benchmark_model reports in "MB" (mebibytes): ``12.3 MiB``."""
    return DASH if value is None else f"{value:,.1f} MiB"


def percent(value: float | None) -> str:
    """A fraction as a percentage: ``0.712`` is ``71.2%``."""
    return DASH if value is None else f"{value:.1%}"


def number(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f}"


def when(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


def device_line(d: DeviceFacts) -> str:
    """A device in one line: serial, kind, make, SoC, ABI, Android, cores and emulation, as known."""
    parts = [d.manufacturer, d.model, f"SoC {d.soc}" if d.soc else None, d.abi]
    if d.release or d.sdk:
        parts.append(f"Android {d.release or '?'} (SDK {d.sdk or '?'})")
    if d.cores:
        freqs = [f for f in d.max_freqs_khz if f]
        top = f", up to {max(freqs) / 1e6:.2f} GHz" if freqs else ""
        parts.append(f"{d.cores} cores{top}")
    if d.emulation:
        parts.append(d.emulation)
    return f"{d.serial} ({d.kind}): " + ", ".join(p for p in parts if p)


def op_value(value: float | None, unit: str) -> str:
    """An op's figure: instructions as a whole number, times in ms with three decimals."""
    if value is None:
        return DASH
    return f"{value:,.0f}" if unit == "instructions" else f"{value:.3f}"


def top_ops_title(top: TopOps) -> str:
    what = "kernels by instructions per inference" if top.unit == "instructions" else "ops by ms per inference"
    return f"top {what}, {top.model_name}"


EXPORT_HEADER = ("model", "latency [95% CI]", "speed-up [95% CI]", "size", "accuracy", "sparsity", "trials")
"""Columns of the run table in the Markdown and HTML reports (plain text cells, escaped by each);
``export_header`` names the latency's statistic."""


def counted(rows: list[ModelRow]) -> bool:
    """Whether any row has instructions per inference (the table then gets that column)."""
    return any(r.instructions is not None for r in rows)


def outputs_cell(status: str | None, inputs: int = 0, top1_agreement: float | None = None) -> str:
    """How a device's outputs compared with the host's (``host.bench.verify``): ``ok (16, top-1 100%)``,
    ``WRONG`` (wrong output on this device), ``check failed``, or a dash when not checked."""
    if status is None:
        return DASH
    if status == "ok":
        return f"ok ({inputs}" + (f", top-1 {top1_agreement:.0%})" if top1_agreement is not None else ")")
    return "WRONG" if status == "wrong" else "check failed"


def with_outputs(rows: Iterable[ModelRow]) -> bool:
    """Whether a table needs the "outputs on device" column (some model was checked)."""
    return any(r.outputs is not None for r in rows)


def kernels_cell(kernels: KernelFigures | None, limit: int = 2) -> str:
    """What ran: a sparse family when one ran, then the compute kernel families with the most
    instructions, with their share of all counted instructions — ``sparse f32 26%, f32 depthwise
    conv 36%`` — or, where no kernel was counted
    (phones, the x86 device), XNNPACK's share of the graph: ``XNNPACK 12 of 12 nodes``."""
    if kernels is None:
        return DASH
    if kernels.counted:
        total = sum(v for v in kernels.families.values() if v is not None)
        compute = sorted(((name, v) for name, v in kernels.families.items() if name != "other"),
                         key=lambda item: not item[0].startswith("sparse "))[:limit]  # the sparse path first
        return ", ".join(f"{name} {v / total:.0%}" if v is not None and total else name for name, v in compute) or (
            "no XNNPACK kernels")
    return f"XNNPACK {kernels.delegated}" if kernels.delegated is not None else DASH


def model_cell(name: str, role: str | None) -> str:
    """A model as its variant when lab built it (``pruned-fp16``), else its file name and role."""
    if role and name == f"{role}.tflite":
        return role
    return name + (f" ({role})" if role else "")


def with_kernels(rows: Iterable[ModelRow]) -> bool:
    """Whether a table needs the "kernels that ran" column."""
    return any(r.kernels is not None for r in rows)


def _row_outputs(row: ModelRow) -> str:
    o = row.outputs
    return outputs_cell(o.status, o.inputs, o.top1_agreement) if o is not None else DASH


def export_header(with_instructions: bool, rows: Iterable[ModelRow] = ()) -> list[str]:
    """The run table's columns; the latency column names its statistic."""
    rows = list(rows)
    latency = latency_header(r.statistic for r in rows if r.latency_us is not None) + " [95% CI]"
    return [EXPORT_HEADER[0], latency, *EXPORT_HEADER[2:], *(["instructions/inference"] if with_instructions else []),
            *(["outputs on device"] if with_outputs(rows) else []), *(["kernels that ran"] if with_kernels(rows) else [])]


def mixed(rows: Iterable[ModelRow]) -> bool:
    """Whether the rows' latencies come from different per-trial statistics."""
    return len({r.statistic for r in rows if r.latency_us is not None}) > 1


def export_cells(
    row: ModelRow,
    baseline_name: str | None,
    with_instructions: bool,
    is_mixed: bool = False,
    outputs: bool = False,
    kernels: bool = False,
) -> list[str]:
    """One model's cells of the run table, in ``export_header`` order (``outputs``, ``kernels``: the
    section has the "outputs on device" and "kernels that ran" columns)."""
    cells = [
        model_cell(row.model_name, row.role),
        latency_cell(row.latency_us, row.statistic, row.trials_ok, is_mixed),
        speedup_cell(row, baseline_name),
        size(row.size_bytes),
        percent(row.accuracy),
        percent(row.sparsity),
        trials_cell(row.trials_ok, row.trials_failed, row.disturbed),
    ]
    if with_instructions:
        cells.append(number(row.instructions))
    if outputs:
        cells.append(_row_outputs(row))
    if kernels:
        cells.append(kernels_cell(row.kernels))
    return cells
