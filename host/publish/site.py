"""`lab publish`: the whole site from the store, rewriting only what changed since the last publish.

Pages: ``index.html`` (devices × models), ``runs.html``, ``history/<model>--<device>-<hash>.html``,
``runs/<id>.html`` (the run: report, configuration, provenance, trials and raw outputs) and
``compare/<id>.html`` (the run against the previous run of each model × device, as `lab check`
sees it); ``assets/`` holds the one stylesheet and script every page links.

A run's page and comparison are computed only when the run changed, or (for the comparison) when
the previous run it is compared with changed; the index, the run list and the history pages are
rendered each time from the kept records, and written only when their bytes changed.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from host import __version__
from host.figures import HEADLINE, label
from host.publish.charts import ChartPoint, line_chart, sparkline
from host.publish.collect import RunDetails, points_of_runs, run_changes, run_details
from host.publish.model import Change, Point, RunEntry, fingerprint, pair_page
from host.publish.render import ASSETS, asset, render, templates_digest
from host.publish.writer import SiteWriter, WriteCounts
from host.records import DeviceState
from host.store import RunInfo, Store

__all__ = ["SiteFilter", "publish", "SPARK_POINTS"]

SPARK_POINTS = 30  # runs in an index cell's trend line


@dataclass(frozen=True)
class SiteFilter:
    """Which runs and which model × device the site shows (`--since`, `--model`, `--device`)."""

    since: datetime | None = None
    model: str | None = None
    device: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since.isoformat() if self.since else None, "model": self.model, "device": self.device}


@dataclass
class _Cell:
    latest: Point
    change: Change | None
    spark: str
    href: str


def _state_line(state: DeviceState | None) -> str:
    """A snapshot in one line: temperatures, battery, governors and frequencies."""
    if state is None:
        return "—"
    parts = [f"{name} {temp:.1f} °C" for name, temp in sorted(state.thermal_c.items())]
    if state.battery_level is not None:
        parts.append(f"battery {state.battery_level}%" + (" charging" if state.charging else ""))
    parts += [f"{cpu} {gov}" for cpu, gov in sorted(state.governors.items())]
    parts += [f"{cpu} {khz / 1e6:.2f} GHz" for cpu, khz in sorted(state.cur_freqs_khz.items())]
    return ", ".join(parts) or "—"


def _packed(texts: list[str]) -> str:
    """The raw outputs, gzip'd JSON in base64 (mtime 0: the same outputs give the same bytes)."""
    return base64.b64encode(gzip.compress(json.dumps(texts).encode(), mtime=0)).decode()


def _run_page(details: RunDetails, entry: RunEntry, has_compare: bool) -> str:
    trials = details.trials
    models = {t.model.sha256 + t.model.name: t.model for t in trials}
    tools = {t.tool.sha256: t.tool for t in trials if t.tool is not None}
    devices = {t.device.serial: t.device for t in trials}
    pairs = dict.fromkeys(p.pair for p in entry.points)
    history_links = [(pair_page(pair), pair.replace("\x00", " on ")) for pair in pairs]
    return render(
        "run.html",
        root="../",
        run=details.run,
        report=details.report,
        config=json.dumps(details.run.config, indent=2, sort_keys=True, ensure_ascii=False),
        models=list(models.values()),
        tools=list(tools.values()),
        devices=list(devices.values()),
        trials=trials,
        state=_state_line,
        raw_outputs=_packed([t.raw_output or "" for t in trials]),
        history_links=history_links,
        has_compare=has_compare,
    )


def _history_page(pair: str, points: list[Point], changes: dict[int, Change]) -> str:
    model, _, serial = pair.partition("\x00")

    def chart_point(p: Point, value: float, low: float, high: float) -> ChartPoint:
        tools = ", ".join(t[:12] for t in p.tools) or "—"
        title = (
            f"run {p.run_id}, {p.started_at[:16].replace('T', ' ')} UTC: {value:,.1f}; model {p.model_sha256[:12]}, "
            f"tool {tools}, lab {p.lab_version}"
        )
        when = datetime.fromisoformat(p.started_at)
        return ChartPoint(when, value, low, high, title, p.run_id, f"../runs/{p.run_id}.html")

    timed = [chart_point(p, *p.latency) for p in points if p.latency is not None]
    counted = [chart_point(p, p.instructions, p.instructions, p.instructions) for p in points if p.instructions]
    statistics = {p.statistic for p in points if p.latency is not None} or {HEADLINE}
    y_label = f"latency in µs ({label(statistics.pop()) if len(statistics) == 1 else 'statistic per run'})"
    return render(
        "history.html",
        root="../",
        model=model,
        serial=serial,
        device_line=points[-1].device_line,
        points=points,
        changes=changes,
        chart=line_chart(timed, y_label),
        instructions_chart=line_chart(counted, "instructions per inference", "{:,.0f}") if counted else None,
    )


def _headline_change(changes: list[Change], pair: str) -> Change | None:
    """The change an index cell shows: a flagged row first, else the latency test's."""
    rows = [c for c in changes if c.pair == pair]
    return next((c for c in rows if c.flagged), next((c for c in rows if c.test == "latency"), None))


def _compare_page(run: RunInfo, changes: list[Change], op_diffs: list[Any]) -> str:
    flagged = sum(c.flagged for c in changes)
    return render("compare.html", root="../", run=run, changes=changes, op_diffs=op_diffs, flagged=flagged)


def publish(store: Store, out: Path, flt: SiteFilter = SiteFilter()) -> WriteCounts:
    """Writes (or updates) the site of ``store`` in ``out``; returns what was written, kept and removed.

    Raises:
        UsageError: ``out`` is a file, or cannot be created or written.
    """
    writer = SiteWriter(out, {"lab": __version__, "templates": templates_digest(), "filter": flt.to_json()})
    runs = sorted(store.list_runs(limit=None, since=flt.since), key=lambda r: (r.started_at, r.id))
    old = writer.runs
    fresh = [r for r in runs if r.id not in old or old[r.id].fingerprint != fingerprint(r)]
    points = points_of_runs(store, fresh, flt.model, flt.device)
    entries: dict[int, RunEntry] = {}
    for run in runs:
        entry = old.get(run.id)
        if entry is None or entry.fingerprint != fingerprint(run):
            entry = RunEntry(run.id, fingerprint(run), run.kind, run.status, run.started_at.isoformat(),
                             points.get(run.id, []))  # fmt: skip
        entries[run.id] = entry
    filtered = flt.model is not None or flt.device is not None
    shown = [run for run in runs if entries[run.id].points or not filtered]
    by_id = {run.id: run for run in runs}
    last_ok: dict[str, int] = {}  # pair → the latest run so far that measured it
    for run in shown:
        entry = entries[run.id]
        previous = {p.pair: last_ok[p.pair] for p in entry.points if p.pair in last_ok}
        compare_key = ";".join(f"{pair}={prev}:{entries[prev].fingerprint}" for pair, prev in sorted(previous.items()))
        compare_key = f"{entry.fingerprint}#{compare_key}" if previous else ""
        page_key = f"{entry.fingerprint}#{bool(previous)}"
        run_path = f"runs/{run.id}.html"
        if entry.page_key == page_key and writer.has(run_path):
            writer.keep(run_path)
        else:
            details = run_details(store, run)
            entry.has_ops = any(section.top_ops for section in details.report.devices)
            writer.write(run_path, _run_page(details, entry, bool(previous)))
            entry.page_key = page_key
        compare_path = f"compare/{run.id}.html"
        if not compare_key:
            entry.compare_key, entry.changes = "", []
        elif entry.compare_key == compare_key and writer.has(compare_path):
            writer.keep(compare_path)
        else:
            with_ops = {rid for rid in (run.id, *previous.values()) if entries[rid].has_ops}
            entry.changes, op_diffs = run_changes(store, run.id, previous, with_ops)
            writer.write(compare_path, _compare_page(by_id[run.id], entry.changes, op_diffs))
            entry.compare_key = compare_key
        for p in entry.points:
            if p.latency is not None:
                last_ok[p.pair] = run.id
    writer.runs = entries
    _write_summaries(writer, [entries[r.id] for r in shown], filtered or flt.since is not None, out)
    for name in ASSETS:
        writer.write(f"assets/{name}", asset(name))
    return writer.finish()


def _write_summaries(writer: SiteWriter, shown: list[RunEntry], filtered: bool, out: Path) -> None:
    """The history pages, the index and the run list, from the runs' kept records (oldest first)."""
    by_pair: dict[str, list[Point]] = defaultdict(list)
    changes: dict[str, dict[int, Change]] = defaultdict(dict)
    for entry in shown:
        for p in entry.points:
            by_pair[p.pair].append(p)
            change = _headline_change(entry.changes, p.pair)
            if change is not None:
                changes[p.pair][entry.run_id] = change
    cells: dict[tuple[str, str], _Cell] = {}
    devices: dict[str, str] = {}
    for pair, points in by_pair.items():
        writer.write(pair_page(pair), _history_page(pair, points, changes[pair]))
        measured = [p for p in points if p.latency is not None]
        latest = measured[-1] if measured else points[-1]
        trend = [p.latency[0] for p in measured[-SPARK_POINTS:] if p.latency is not None]
        model, _, serial = pair.partition("\x00")
        cells[(model, serial)] = _Cell(latest, changes[pair].get(latest.run_id), sparkline(trend), pair_page(pair))
        devices.setdefault(serial, latest.device_line)
    recent = list(reversed(shown))
    writer.write(
        "index.html",
        render(
            "index.html",
            devices=sorted(devices.items()),
            models=sorted({model for model, _ in cells}),
            cells=cells,
            recent=recent[:10],
            run_count=len(shown),
            filtered=filtered,
            out_name=out.name or str(out),
        ),
    )
    writer.write("runs.html", render("runs.html", entries=recent))
