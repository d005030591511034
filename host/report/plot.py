"""PNG plots with matplotlib's headless Agg backend: latency over time, and a run's latencies per device."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from host.errors import UsageError
from host.figures import HEADLINE, label
from host.report._model import HistoryRow, RunReport

__all__ = ["history_png", "report_png", "write_png"]


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def history_png(rows: Sequence[HistoryRow]) -> bytes:
    """Median latency over time per model and device, with 95% CI bars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series: dict[tuple[str, str], list[HistoryRow]] = {}
    for row in sorted(rows, key=lambda r: (r.started_at, r.run_id)):
        if row.latency_us is not None:
            series.setdefault((row.model_name, row.device_serial), []).append(row)
    for (model, serial), points in series.items():
        x = [p.started_at for p in points]
        y = [p.latency_us.value for p in points if p.latency_us]
        low = [p.latency_us.value - p.latency_us.low for p in points if p.latency_us]
        high = [p.latency_us.high - p.latency_us.value for p in points if p.latency_us]
        ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=f"{model} on {serial}")
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_ylabel(f"latency (µs): median over trials of each trial's {label(HEADLINE)}")
    ax.set_title("latency over time (95% CI)")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize="small")
    return _png(fig)


def report_png(report: RunReport) -> bytes:
    """One group of bars per device, one bar per model, 95% CI as error bars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    models = list(dict.fromkeys(r.model_name for d in report.devices for r in d.rows))
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        xs, ys, lows, highs = [], [], [], []
        for j, section in enumerate(report.devices):
            row = next((r for r in section.rows if r.model_name == model and r.latency_us), None)
            if row is None or row.latency_us is None:
                continue
            xs.append(j + i * width)
            ys.append(row.latency_us.value)
            lows.append(row.latency_us.value - row.latency_us.low)
            highs.append(row.latency_us.high - row.latency_us.value)
        ax.bar(xs, ys, width, yerr=[lows, highs], capsize=3, label=model)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(report.devices))])
    ax.set_xticklabels([d.device.model or d.device.serial for d in report.devices])
    ax.set_ylabel(f"latency (µs): median over trials of each trial's {label(HEADLINE)}")
    ax.set_title(f"run {report.run.id}: latency per device (95% CI)")
    ax.legend(fontsize="small")
    return _png(fig)


def write_png(data: bytes, path: Path) -> Path:
    """Writes a PNG; the path must end in .png and its folder must exist (UsageError otherwise)."""
    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot {path}: the file name must end in .png")
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
    return path
