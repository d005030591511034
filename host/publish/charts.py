"""Charts drawn on the server as SVG geometry: no chart library, no script, nothing to download.

A chart is plain coordinates the templates turn into ``<svg>`` elements: each point is a circle with
a ``<title>`` (the browser's hover text) and a ``data-run`` attribute, so the chart can be read
from the DOM and its table is the same data as text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["ChartPoint", "Chart", "Dot", "line_chart", "sparkline"]

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28
TICKS = 4


@dataclass(frozen=True)
class ChartPoint:
    """One value over time; ``low``/``high`` draw the confidence band (equal to ``value`` when none)."""

    when: datetime
    value: float
    low: float
    high: float
    title: str  # hover text
    run_id: int
    href: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str
    run_id: int
    href: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    dots: list[Dot]
    line: str  # polyline points
    band: str  # polygon points of the CI band ("" without one)
    y_ticks: list[tuple[float, str]]  # (y, label)
    x_ticks: list[tuple[float, str]]  # (x, label)
    y_label: str


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> tuple[float, float]:
    """(factor, offset) mapping [lo, hi] onto [out_lo, out_hi]; a flat range maps to the middle."""
    if hi <= lo:
        return 0.0, (out_lo + out_hi) / 2
    factor = (out_hi - out_lo) / (hi - lo)
    return factor, out_lo - lo * factor


def _nice_ticks(lo: float, hi: float) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / TICKS))
    for multiple in (1, 2, 5, 10):
        if (hi - lo) / (step * multiple) <= TICKS:
            step *= multiple
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def line_chart(points: Sequence[ChartPoint], y_label: str, fmt: str = "{:,.1f}") -> Chart:
    """A chart of ``points`` (oldest first) over time, with their band and axes."""
    pts = sorted(points, key=lambda p: (p.when, p.run_id))
    times = [p.when.timestamp() for p in pts]
    lows = [min(p.low, p.value) for p in pts]
    highs = [max(p.high, p.value) for p in pts]
    y_lo, y_hi = (min(lows), max(highs)) if pts else (0.0, 1.0)
    pad = (y_hi - y_lo) * 0.08 or abs(y_hi) * 0.05 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    fx, ox = _scale(min(times, default=0.0), max(times, default=1.0), LEFT, WIDTH - RIGHT)
    fy, oy = _scale(y_lo, y_hi, HEIGHT - BOTTOM, TOP)

    def x(t: float) -> float:
        return round(t * fx + ox, 1)

    def y(v: float) -> float:
        return round(v * fy + oy, 1)

    dots = [Dot(x(t), y(p.value), p.title, p.run_id, p.href) for t, p in zip(times, pts)]
    line = " ".join(f"{d.x},{d.y}" for d in dots)
    band = ""
    if any(p.low != p.high for p in pts):
        upper = [f"{x(t)},{y(h)}" for t, h in zip(times, highs)]
        lower = [f"{x(t)},{y(lo)}" for t, lo in zip(reversed(times), reversed(lows))]
        band = " ".join(upper + lower)
    y_ticks = [(y(v), fmt.format(v)) for v in _nice_ticks(y_lo, y_hi)]
    x_ticks: list[tuple[float, str]] = []
    if pts:
        first, last = pts[0].when, pts[-1].when
        x_ticks = [(x(times[0]), first.strftime("%Y-%m-%d"))]
        if last.date() != first.date():
            x_ticks.append((x(times[-1]), last.strftime("%Y-%m-%d")))
    return Chart(WIDTH, HEIGHT, dots, line, band, y_ticks, x_ticks, y_label)


def sparkline(values: Sequence[float], width: int = 120, height: int = 28) -> str:
    """Polyline points of a small trend line (oldest first); "" with fewer than two values."""
    if len(values) < 2:
        return ""
    fx, ox = _scale(0, len(values) - 1, 2, width - 2)
    fy, oy = _scale(min(values), max(values), height - 2, 2)
    return " ".join(f"{round(i * fx + ox, 1)},{round(v * fy + oy, 1)}" for i, v in enumerate(values))
