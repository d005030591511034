"""benchmark_model's per-op profile (``--enable_op_profiling=true``): a pure parser of its text.

Since mid-2020 benchmark_model prints two profiles, each a set of tables (TFLite 2.8, from
05-meta-tflite-riscv64-op-profiling.txt; columns are separated by tabs, shown here as spaces, and the
``Run Order`` rows are cut to three)::

    Profiling Info for Benchmark Initialization:
    ============================== Run Order ==============================
                 [node type]            [start]    [first]   [avg ms]       [%]    [cdf%]    [mem KB]  [times called]  [Name]
             AllocateTensors              0.000      1.356      1.356  100.000%  100.000%       0.000          1  AllocateTensors/0
    ...
    1 nodes observed

    Operator-wise Profiling Info for Regular Benchmark Runs:
    ============================== Run Order ==============================
                 [node type]            [start]    [first]   [avg ms]       [%]    [cdf%]    [mem KB]  [times called]  [Name]
                     CONV_2D              0.066     87.754     60.957    2.066%    2.066%       0.000          1  [MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0
           DEPTHWISE_CONV_2D             61.033     53.628     49.870    1.691%    3.757%       0.000          1  [MobilenetV1/MobilenetV1/Conv2d_1_depthwise/Relu6]:1
                     SOFTMAX           2950.011      0.230      0.233    0.008%  100.000%       0.000          1  [MobilenetV1/Predictions/Reshape_1]:30

    ============================== Top by Computation Time ==============================
                 [node type]            [start]    [first]   [avg ms]       [%]    [cdf%]    [mem KB]  [times called]  [Name]
                     CONV_2D            898.426    263.724    277.374    9.403%    9.403%       0.000          1  [MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10

    Number of nodes executed: 31
    ============================== Summary by node type ==============================
                 [Node type]    [count]    [avg ms]      [avg %]      [cdf %]    [mem KB]  [times called]
                     CONV_2D         15    2651.853      89.897%      89.897%       0.000         15

    Timings (microseconds): count=50 first=2989660 curr=2912978 min=2727203 max=3189476 avg=2.9499e+06 std=109770
    Memory (bytes): count=0
    31 nodes observed

The older layout (2019–2020, the TFLite README's example) prints only the tables of the regular runs,
with no heading line, and ``times called`` 0. From 2023 the first line of a log message carries
``INFO: ``; logcat puts its prefix on every line; copied output may be indented. Each table row is
``prefix`` + (tab + cell) per column, so whatever stands before a row's first tab is a prefix and is
dropped, and the cells are read by the header's column names, in whatever order they come.

A section is complete at its ``N nodes observed`` line. Text that ends before it (an excerpt, a
killed run) still parses: the rows read so far are kept and ``truncated`` says where it stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from device_agent.errors import OutputParseError

__all__ = ["OpRow", "TopOp", "NodeTypeRow", "ProfileTables", "OpProfile", "find_op_profile", "parse_op_profile"]


@dataclass(frozen=True)
class OpRow:
    """One row of the ``Run Order`` table: one op (node) of the graph, times in ms per inference.

    ``index`` is the row's position in run order (0-based). ``name`` is printed verbatim, e.g.
    ``[MobilenetV1/Predictions/Reshape_1]:30`` (the op's output tensors, then ``:`` node index, in
    newer layouts). ``start_ms`` is None where the layout has no ``[start]`` column. Percentages are
    of the total over all ops (NaN where benchmark_model printed ``nan``: a zero total).
    """

    index: int
    node_type: str
    name: str
    first_ms: float
    avg_ms: float
    percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int  # per run; the old layout prints 0
    start_ms: float | None = None


@dataclass(frozen=True)
class TopOp:
    """One row of ``Top by Computation Time``: ``index`` is its :class:`OpRow`'s, None when the
    ``Run Order`` table (cut short) has no such row."""

    index: int | None
    name: str


@dataclass(frozen=True)
class NodeTypeRow:
    """One row of ``Summary by node type``: all ops of one type, times in ms per inference."""

    node_type: str
    count: int
    avg_ms: float
    percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int


@dataclass(frozen=True)
class ProfileTables:
    """One profile's tables: the initialization's or the regular runs'.

    ``top_by_time`` keeps the order benchmark_model printed (slowest first). ``nodes_executed`` is
    the ``Number of nodes executed`` line, None when absent. ``truncated`` is True when the text ends
    before the profile's ``N nodes observed`` line; ``warnings`` say what was cut or left out.
    """

    ops: tuple[OpRow, ...] = ()
    top_by_time: tuple[TopOp, ...] = ()
    node_types: tuple[NodeTypeRow, ...] = ()
    nodes_executed: int | None = None
    truncated: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpProfile:
    """benchmark_model's op profile.

    ``runs`` ("Operator-wise Profiling Info for Regular Benchmark Runs", or the heading-less tables
    of the old layout) is None when the text holds only the initialization profile. ``init``
    ("Profiling Info for Benchmark Initialization") is None in the old layout. ``truncated`` and
    ``warnings`` gather both profiles' and say when the runs' profile is missing.
    """

    runs: ProfileTables | None
    init: ProfileTables | None = None
    truncated: bool = False
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------

_INIT_HEADING = re.compile(r"Profiling Info for Benchmark Initialization:\s*$")
_RUNS_HEADING = re.compile(r"Operator-wise Profiling Info for Regular Benchmark Runs:\s*$")
_TABLE_TITLE = re.compile(r"={5,} (?P<title>\S[^=]*?) ={5,}\s*$")
_NODES_EXECUTED = re.compile(r"(?:^|\s)Number of nodes executed: (?P<n>\d+)\s*$")
_NODES_OBSERVED = re.compile(r"(?:^|\s)(?P<n>\d+) nodes observed\s*$")

_RUN_ORDER, _TOP_BY_TIME, _BY_NODE_TYPE = "Run Order", "Top by Computation Time", "Summary by node type"
_INIT, _RUNS = "initialization", "regular runs"

# Header cell, lower-cased without brackets, spaces and underscores → field: "[avg ms]" → avg_ms,
# "[cdf%]" and "[cdf %]" → cdf_percent; the op tables' "[%]" is the node-type table's "[avg %]".
_COLUMNS = {
    "nodetype": "node_type",
    "start": "start_ms",
    "first": "first_ms",
    "avgms": "avg_ms",
    "%": "percent",
    "avg%": "percent",
    "cdf%": "cdf_percent",
    "memkb": "mem_kb",
    "timescalled": "times_called",
    "name": "name",
    "count": "count",
}
_OP_COLUMNS = ("node_type", "first_ms", "avg_ms", "percent", "cdf_percent", "mem_kb", "times_called", "name")
_TYPE_COLUMNS = ("node_type", "count", "avg_ms", "percent", "cdf_percent", "mem_kb", "times_called")
_REQUIRED = {_RUN_ORDER: _OP_COLUMNS, _TOP_BY_TIME: _OP_COLUMNS, _BY_NODE_TYPE: _TYPE_COLUMNS}
_OPTIONAL = {_RUN_ORDER: ("start_ms",), _TOP_BY_TIME: ("start_ms",), _BY_NODE_TYPE: ()}
_INT_FIELDS = frozenset({"times_called", "count"})
_TEXT_FIELDS = frozenset({"node_type", "name"})

_QUOTE_MAX = 300


def find_op_profile(text: str) -> OpProfile | None:
    """The op profile in benchmark_model's ``text``; None when it holds none.

    None means no profile heading and no profile table at all: a caller that asked for
    ``--enable_op_profiling=true`` reports the profile as absent. Text cut inside a table or
    before the regular runs' profile still gives an :class:`OpProfile` (see ``truncated``).

    Raises:
        OutputParseError: a table header with a column it cannot map or without a needed one
            (quoting the header), or a row, not the text's last, that does not fit its header.
    """
    return _Parser(text.splitlines()).parse()


def parse_op_profile(text: str) -> OpProfile:
    """The op profile in benchmark_model's ``text`` (see :func:`find_op_profile`).

    Raises:
        OutputParseError: as :func:`find_op_profile`, and when the text holds no op profile.
    """
    profile = find_op_profile(text)
    if profile is None:
        tail = text.strip()[-_QUOTE_MAX:]
        raise OutputParseError(
            "no op profile in benchmark_model's output (no 'Run Order' table); "
            "run it with --enable_op_profiling=true",
            tail,
        )
    return profile


# ---------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 1] + "…"


def _cells(line: str) -> list[str] | None:
    """A table line's cells (after the prefix before its first tab), or None for a line with no tab."""
    prefix, tab, rest = line.partition("\t")
    if not tab or not rest.strip():
        return None
    return rest.split("\t")


def _number(text: str, as_int: bool) -> float | int:
    text = text.strip()
    if as_int:
        return int(text)
    return float(text[:-1] if text.endswith("%") else text)


@dataclass
class _Section:
    """A profile being read; ``done`` once its ``N nodes observed`` line is seen."""

    kind: str
    ops: list[OpRow] = field(default_factory=list)
    top: list[tuple[str, str, float, float]] = field(default_factory=list)
    node_types: list[NodeTypeRow] = field(default_factory=list)
    tables_seen: set[str] = field(default_factory=set)
    nodes_executed: int | None = None
    done: bool = False
    cut: str | None = None  # where the text ended inside this profile
    warnings: list[str] = field(default_factory=list)

    def finish(self) -> ProfileTables:
        warnings = list(self.warnings)
        cut = self.cut if self.cut is not None or self.done else f"after its {self._last_table()}"
        if cut is not None:
            warnings.insert(0, f"the {self.kind} profile is truncated: the output ends {cut}")
        elif self.nodes_executed is not None and self.nodes_executed != len(self.ops):
            warnings.append(
                f"the {self.kind} profile's Run Order table has {len(self.ops)} rows "
                f"but 'Number of nodes executed: {self.nodes_executed}'"
            )
        return ProfileTables(
            ops=tuple(self.ops),
            top_by_time=self._top_ops(),
            node_types=tuple(self.node_types),
            nodes_executed=self.nodes_executed,
            truncated=cut is not None,
            warnings=tuple(warnings),
        )

    def _last_table(self) -> str:
        for title in (_BY_NODE_TYPE, _TOP_BY_TIME, _RUN_ORDER):
            if title in self.tables_seen:
                return f"'{title}' table"
        return "heading, before any table"

    def _top_ops(self) -> tuple[TopOp, ...]:
        """Top rows → their Run Order index: same type, name, first and avg, first unused match."""
        unused: dict[tuple[str, str, float, float], list[int]] = {}
        for op in self.ops:
            unused.setdefault((op.node_type, op.name, op.first_ms, op.avg_ms), []).append(op.index)
        top = []
        for key in self.top:
            matches = unused.get(key)
            top.append(TopOp(index=matches.pop(0) if matches else None, name=key[1]))
        return tuple(top)


class _Parser:
    """One pass over the lines: headings open profiles, table titles hand over to ``_table``."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.i = 0
        self.sections: dict[str, _Section] = {}
        self.current: _Section | None = None
        self.ignoring = False  # inside a repeated profile, left out
        self.warnings: list[str] = []
        self.seen_any = False

    def parse(self) -> OpProfile | None:
        while self.i < len(self.lines):
            line = self.lines[self.i]
            self.i += 1
            if _INIT_HEADING.search(line):
                self._open(_INIT)
            elif _RUNS_HEADING.search(line):
                self._open(_RUNS)
            elif title := _TABLE_TITLE.search(line):
                self._table(title.group("title"), line)
            elif self.current is not None and (executed := _NODES_EXECUTED.search(line)):
                self.current.nodes_executed = int(executed.group("n"))
            elif self.current is not None and _NODES_OBSERVED.search(line):
                self.current.done = True
                self.current = None
        if not self.seen_any:
            return None
        init = self.sections[_INIT].finish() if _INIT in self.sections else None
        runs = self.sections[_RUNS].finish() if _RUNS in self.sections else None
        warnings = [*(init.warnings if init else ()), *(runs.warnings if runs else ()), *self.warnings]
        if runs is None:
            warnings.append(
                "no 'Operator-wise Profiling Info for Regular Benchmark Runs' profile, only the initialization one"
            )
        truncated = bool((init and init.truncated) or (runs and runs.truncated))
        return OpProfile(runs=runs, init=init, truncated=truncated, warnings=tuple(warnings))

    def _open(self, kind: str) -> None:
        self.seen_any = True
        if kind in self.sections:
            # A second profile of one kind: benchmark_model prints one per subgraph; the first is the
            # primary graph's.
            self.warnings.append(f"a further {kind} profile (another subgraph?) was left out")
            self.current, self.ignoring = None, True
            return
        self.current = self.sections[kind] = _Section(kind)
        self.ignoring = False

    def _table(self, title: str, title_line: str) -> None:
        if title not in _REQUIRED:
            if self.current is not None:
                self.current.warnings.append(f"an unknown table '{title}' was left out")
                self._skip_rows()
            return
        self.seen_any = True
        if self.current is None and not self.ignoring and _RUNS not in self.sections:
            self._open(_RUNS)  # the old layout: the runs' tables with no heading
        section = self.current
        if section is None or title in section.tables_seen:
            if not self.ignoring:
                where = f"in the {section.kind} profile" if section else "after the profiles' end"
                self.warnings.append(f"a further '{title}' table {where} was left out")
            self._skip_rows()
            return
        section.tables_seen.add(title)
        if self.i >= len(self.lines):
            section.cut = f"at the '{title}' table's title"
            return
        header_line = self.lines[self.i]
        self.i += 1
        columns = self._columns(title, header_line, title_line)
        rows = 0
        while self.i < len(self.lines):
            line = self.lines[self.i]
            cells = _cells(line)
            if cells is None:
                return
            self.i += 1
            values = self._row(columns, cells, line)
            if values is None:
                section.cut = f"inside the '{title}' table's row {rows + 1}, cut short: {_quote(line)!r}"
                return
            self._add(section, title, values)
            rows += 1
        section.cut = f"in the '{title}' table after {rows} rows"

    def _skip_rows(self) -> None:
        if self.i < len(self.lines):
            self.i += 1  # its header
        while self.i < len(self.lines) and _cells(self.lines[self.i]) is not None:
            self.i += 1

    @staticmethod
    def _columns(title: str, header_line: str, title_line: str) -> list[str]:
        cells = _cells(header_line)
        if cells is None:
            raise OutputParseError(
                f"expected the tab-separated column header of the '{title}' table after {_quote(title_line)!r}",
                _quote(header_line),
            )
        columns = []
        for cell in cells:
            key = re.sub(r"[\s_\[\]]", "", cell).lower()
            column = _COLUMNS.get(key)
            allowed = _REQUIRED[title] + _OPTIONAL[title]
            if column not in allowed:
                raise OutputParseError(
                    f"cannot map column {cell.strip()!r} of the '{title}' table's header "
                    f"(known: {', '.join(allowed)}); is this benchmark_model's op-profiling output?",
                    _quote(header_line),
                )
            if column in columns:
                raise OutputParseError(f"column {cell.strip()!r} twice in the '{title}' table's header", _quote(header_line))
            columns.append(column)
        missing = [c for c in _REQUIRED[title] if c not in columns]
        if missing:
            raise OutputParseError(
                f"the '{title}' table's header lacks {', '.join(missing)}", _quote(header_line)
            )
        return columns

    def _row(self, columns: list[str], cells: list[str], line: str) -> dict[str, str | float | int] | None:
        """A row's values by column; None when the row is the text's last and cut short."""
        if columns[-1] == "name" and len(cells) > len(columns):
            # A tensor name may hold a tab: the rest of the line is the name.
            cells = cells[: len(columns) - 1] + ["\t".join(cells[len(columns) - 1 :])]
        try:
            if len(cells) != len(columns):
                raise ValueError(f"{len(cells)} cells for {len(columns)} columns")
            return {
                column: cell.strip() if column in _TEXT_FIELDS else _number(cell, column in _INT_FIELDS)
                for column, cell in zip(columns, cells)
            }
        except ValueError as exc:
            if all(not rest.strip() for rest in self.lines[self.i :]):
                return None
            raise OutputParseError(
                f"an op-profiling row does not fit its header ({exc}; columns: {', '.join(columns)})", _quote(line)
            ) from exc

    @staticmethod
    def _add(section: _Section, title: str, v: dict[str, str | float | int]) -> None:
        if title == _BY_NODE_TYPE:
            section.node_types.append(NodeTypeRow(**v))  # type: ignore[arg-type]
        elif title == _TOP_BY_TIME:
            section.top.append((str(v["node_type"]), str(v["name"]), float(v["first_ms"]), float(v["avg_ms"])))
        else:
            section.ops.append(OpRow(index=len(section.ops), **v))  # type: ignore[arg-type]
