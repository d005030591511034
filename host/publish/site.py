"""`lab publish`: the whole site from the store, rewriting only what changed since the last publish.

Pages: ``index.html`` (devices × models), ``runs.html``, ``history/<model>--<device>-<hash>.html``,
``runs/<id>.html`` (the run: report, configuration, provenance, trials and raw outputs) and
``compare/<id>.html`` (the run against the previous run of each model × device, as `lab check`
sees it); ``assets/`` holds the one stylesheet and script every page links.

A run's page and comparison are computed only when the run changed, or (for the comparison) when
the previous run it is compared with changed, a hundred runs at a time from a few queries for all
of them (``collect``); the index, the run list and the history pages are rendered each time from
the kept records (a history row of a run is rendered once and kept with them), and written only
when their bytes changed.
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

from markupsafe import Markup

from host import __version__
from host.figures import HEADLINE, label
from host.publish.charts import ChartPoint, line_chart, sparkline
from host.publish.collect import (
    RunDetails,
    groups_of_runs,
    history_groups,
    points_of_runs,
    run_changes,
    run_details,
)
from host.publish.model import Change, Point, RunEntry, fingerprint, pair_page
from host.publish.render import ASSETS, asset, macro, render, templates_digest
from host.publish.writer import SiteWriter, WriteCounts
from host.records import DeviceState, OutputCheck
from host.store import HistoryGroup, RunInfo, Store

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


def _history_page(pair: str, points: list[Point], rows: Markup) -> str:
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
        rows=rows,
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


_BATCH = 100  # runs whose pages are computed together: a few queries for all, a bounded memory


@dataclass
class _Todo:
    """A shown run and what this publish must compute for it."""

    run: RunInfo
    entry: RunEntry
    previous: dict[str, RunInfo]  # pair → the latest earlier run that measured it
    page_key: str  # "" when the kept run page is still valid
    compare_key: str  # "" when the kept comparison is still valid (or there is none)


def publish(store: Store, out: Path, flt: SiteFilter = SiteFilter()) -> WriteCounts:
    """Writes (or updates) the site of ``store`` in ``out``; returns what was written, kept and removed.

    Raises:
        UsageError: ``out`` is a file, or cannot be created or written.
    """
    writer = SiteWriter(out, {"lab": __version__, "templates": templates_digest(), "filter": flt.to_json()})
    runs = sorted(store.list_runs(limit=None, since=flt.since), key=lambda r: (r.started_at, r.id))
    old = writer.runs
    fresh = [r for r in runs if r.id not in old or old[r.id].fingerprint != fingerprint(r)]
    filtered = flt.model is not None or flt.device is not None
    groups = history_groups(store, fresh, flt.model, flt.device)
    points = points_of_runs(fresh, groups)
    entries: dict[int, RunEntry] = {}
    for run in runs:
        entry = old.get(run.id)
        if entry is None or entry.fingerprint != fingerprint(run):
            entry = RunEntry(run.id, fingerprint(run), run.kind, run.status, run.started_at.isoformat(),
                             points.get(run.id, []))  # fmt: skip
            writer.changed_run(run.id)
        entries[run.id] = entry
    writer.runs = entries
    shown = [run for run in runs if entries[run.id].points or not filtered]
    todo = _plan(writer, shown, entries)
    for start in range(0, len(todo), _BATCH):
        _compute(store, writer, todo[start : start + _BATCH], entries, {} if filtered else groups)
    _write_summaries(writer, [entries[r.id] for r in shown], filtered or flt.since is not None, out)
    for name in ASSETS:
        writer.write(f"assets/{name}", asset(name))
    return writer.finish()


def _plan(writer: SiteWriter, shown: list[RunInfo], entries: dict[int, RunEntry]) -> list[_Todo]:
    """Keeps each run page and comparison whose inputs did not change; lists the ones to compute."""
    todo = []
    last_ok: dict[str, RunInfo] = {}  # pair → the latest run so far that measured it
    for run in shown:
        entry = entries[run.id]
        previous = {p.pair: last_ok[p.pair] for p in entry.points if p.pair in last_ok}
        compare_key = ";".join(f"{pair}={p.id}:{entries[p.id].fingerprint}" for pair, p in sorted(previous.items()))
        compare_key = f"{entry.fingerprint}#{compare_key}" if previous else ""
        page_key = f"{entry.fingerprint}#{bool(previous)}"
        run_path, compare_path = f"runs/{run.id}.html", f"compare/{run.id}.html"
        if entry.page_key == page_key and writer.has(run_path):
            writer.keep(run_path)
            page_key = ""
        if not compare_key:
            if entry.compare_key or entry.changes:
                entry.compare_key, entry.changes, entry.rows = "", [], {}
                writer.changed_run(run.id)
        elif entry.compare_key == compare_key and writer.has(compare_path):
            writer.keep(compare_path)
            compare_key = ""
        if page_key or compare_key:
            todo.append(_Todo(run, entry, previous, page_key, compare_key))
        for p in entry.points:
            if p.latency is not None:
                last_ok[p.pair] = run
    return todo


def _compute(
    store: Store,
    writer: SiteWriter,
    batch: list[_Todo],
    entries: dict[int, RunEntry],
    known: dict[int, list[HistoryGroup]],
) -> None:
    """The run pages and comparisons of ``batch`` (oldest first), from a few queries for all of them;
    ``known``: runs' groups already loaded (every group of each run: loaded without filters)."""
    details = run_details(store, [t.run for t in batch if t.page_key])
    for item in batch:
        if item.page_key:
            page = details[item.run.id]
            item.entry.has_ops = any(section.top_ops for section in page.report.devices)
            writer.write(f"runs/{item.run.id}.html", _run_page(page, item.entry, bool(item.previous)))
            item.entry.page_key = item.page_key
            writer.changed_run(item.run.id)
    compared = [t for t in batch if t.compare_key]
    ids = {t.run.id for t in compared} | {prev.id for t in compared for prev in t.previous.values()}
    missing = sorted(ids - known.keys())
    groups = {**known, **groups_of_runs(store, missing)} if missing else known
    checks: dict[int, list[OutputCheck]] = defaultdict(list)
    for check in store.output_checks([t.run.id for t in compared]) if compared else ():
        checks[check.run_id].append(check)
    for item in compared:
        run = item.run
        with_ops = {rid for rid in (run.id, *(p.id for p in item.previous.values())) if entries[rid].has_ops}
        item.entry.changes, op_diffs = run_changes(store, run, item.previous, groups, with_ops, checks[run.id])
        item.entry.rows = {}
        writer.write(f"compare/{run.id}.html", _compare_page(run, item.entry.changes, op_diffs))
        item.entry.compare_key = item.compare_key
        writer.changed_run(run.id)


def _write_summaries(writer: SiteWriter, shown: list[RunEntry], filtered: bool, out: Path) -> None:
    """The history pages, the index and the run list, from the runs' kept records (oldest first)."""
    by_pair: dict[str, list[Point]] = defaultdict(list)
    changes: dict[str, dict[int, Change]] = defaultdict(dict)
    rows: dict[str, list[str]] = defaultdict(list)
    for entry in shown:
        for p in entry.points:
            by_pair[p.pair].append(p)
            change = _headline_change(entry.changes, p.pair)
            if change is not None:
                changes[p.pair][entry.run_id] = change
            if p.pair not in entry.rows:
                entry.rows[p.pair] = str(macro("history_row", p, change))
                writer.changed_run(entry.run_id)
            rows[p.pair].append(entry.rows[p.pair])
    cells: dict[tuple[str, str], _Cell] = {}
    devices: dict[str, str] = {}
    for pair, points in by_pair.items():
        table = Markup("\n".join(reversed(rows[pair])))  # rendered by the macro: escaped there
        writer.write(pair_page(pair), _history_page(pair, points, table))
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
