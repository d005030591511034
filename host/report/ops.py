"""Per-op profiles diffed across runs: `lab compare --ops`, `lab check --ops`, the report's top ops.

Per model × device (paired as `lab compare` pairs them, and, when each run has one model on a
device, those two — dense against pruned), each op of run A is matched with one of run B:

- benchmark_model ops (times, ms): by run-order index, type and name; then, for what is left, by
  type and name without its trailing ``:node index`` (an op that moved); then by type alone in run
  order (the graph changed: ops were added, renamed or fused);
- emulated-device kernels (instructions): by library and function.

Unmatched ops are kept as rows with one side empty. Rows are sorted by their contribution to the
total change (|B − A|, an unmatched op counting in full). "Beyond noise": for times, the
Mann–Whitney U test over the trials with a change beyond ±5% (``stats.compare``); for instruction
counts, which are exact, the two runs' ranges do not overlap and differ by more than 0.1%.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from host.bench.stats import compare
from host.report._match import label, match_groups
from host.store import HistoryGroup, RunInfo, Store
from host.store.queries.ops import OpGroup, OpStat

__all__ = [
    "kernel_instructions",
    "OpDiff",
    "OpComparison",
    "RunOpsComparison",
    "compare_ops",
    "compare_op_groups",
    "top_ops",
    "pair_op_groups",
    "INSTRUCTION_TOLERANCE",
]

INSTRUCTION_TOLERANCE = 0.001  # as `lab check --metric instructions`
TIME_MIN_EFFECT = 0.05


@dataclass(frozen=True)
class OpDiff:
    """One op in both runs (or one). Values are medians over the trials, per inference.

    ``matched_by``: "index, type and name", "type and name", "type (graph changed)", "function",
    or "only in A" / "only in B".
    """

    node_type: str  # op type, or a kernel's library
    name: str  # op name, or a kernel's function
    index_a: int | None
    index_b: int | None
    a: float | None
    b: float | None
    matched_by: str
    beyond_noise: bool

    @property
    def delta(self) -> float:
        return (self.b or 0.0) - (self.a or 0.0)

    @property
    def ratio(self) -> float | None:
        if self.a is None or self.b is None or self.a == 0:
            return None
        return self.b / self.a


@dataclass(frozen=True)
class OpComparison:
    """The op diff of one model × device. ``unit``: "ms" (ops' times) or "instructions" (kernels)."""

    model_a: str
    model_b: str
    device_serial: str
    unit: str
    total_a: float
    total_b: float
    rows: list[OpDiff]  # by contribution to the total change, largest first
    trials_a: int
    trials_b: int

    @property
    def unmatched(self) -> list[OpDiff]:
        return [r for r in self.rows if r.a is None or r.b is None]


@dataclass(frozen=True)
class RunOpsComparison:
    run_a: RunInfo
    run_b: RunInfo
    groups: list[OpComparison]
    not_compared: list[str]  # model × device without a profile on one side, or unpaired


def _as_history(g: OpGroup) -> HistoryGroup:
    """An OpGroup in the shape `_match` pairs (only identity fields matter there)."""
    return HistoryGroup(
        run_id=g.run_id, run_status="ok", run_started_at=None,  # type: ignore[arg-type]
        model_sha256=g.model_sha256, model_name=g.model_name, role=g.role, device=g.device,
        trials_ok=len(g.trials), trials_failed=0,
    )  # fmt: skip


def pool_op_groups(groups: Sequence[OpGroup]) -> list[OpGroup]:
    """Groups of several runs merged by (model sha256, device serial): their trials pooled."""
    pooled: dict[tuple[str, str], OpGroup] = {}
    for g in groups:
        key = (g.model_sha256, g.device.serial)
        if key not in pooled:
            pooled[key] = OpGroup(g.run_id, g.model_sha256, g.model_name, g.role, g.device)
        pooled[key].trials.extend(g.trials)
    return list(pooled.values())


def pair_op_groups(base: Sequence[OpGroup], cand: Sequence[OpGroup]) -> tuple[list[tuple[OpGroup, OpGroup]], list[str]]:
    """Pairs as `lab compare` does; then, per device, the one model left on each side (dense vs pruned)."""
    histories_a = [_as_history(g) for g in base]
    histories_b = [_as_history(g) for g in cand]
    back = {id(h): g for h, g in zip([*histories_a, *histories_b], [*base, *cand])}
    pairs, _, _ = match_groups(histories_a, histories_b)
    result = [(back[id(a)], back[id(b)]) for a, b, _ in pairs]
    used = {id(g) for pair in result for g in pair}
    left_a = [g for g in base if id(g) not in used]
    left_b = [g for g in cand if id(g) not in used]
    for g in list(left_b):
        same_a = [o for o in left_a if o.device.serial == g.device.serial]
        same_b = [o for o in left_b if o.device.serial == g.device.serial]
        if len(same_a) == 1 and len(same_b) == 1 and same_a[0].device.emulation == g.device.emulation:
            result.append((same_a[0], g))
            left_a.remove(same_a[0])
            left_b.remove(g)
    missing = [f"{label(_as_history(g))}: no op profile in the other run" for g in [*left_a, *left_b]]
    return result, missing


def _per_trial(group: OpGroup, source: str) -> list[list[OpStat]]:
    return [trial.get(source, []) for trial in group.trials if trial.get(source)]


_NODE_INDEX = re.compile(r":\d+$")  # newer layouts end an op's name with ":<node index>"


def _key_op(op: OpStat) -> tuple[int, str, str]:
    return (op.index, op.node_type, op.name)


def _key_moved(op: OpStat) -> tuple[str, str]:
    return (op.node_type, _NODE_INDEX.sub("", op.name))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _values(trials: list[list[OpStat]], pick: Callable[[list[OpStat]], OpStat | None]) -> list[float]:
    found = []
    for ops in trials:
        op = pick(ops)
        if op is not None and op.value is not None:
            found.append(op.value)
    return found


def _beyond_noise(unit: str, a: list[float], b: list[float]) -> bool:
    if not a or not b:
        return True  # an op in one run only changed the total by all of itself
    if unit == "instructions":
        low, high = (a, b) if statistics.median(a) <= statistics.median(b) else (b, a)
        ma = statistics.median(a)
        return max(low) < min(high) and abs(statistics.median(b) - ma) > INSTRUCTION_TOLERANCE * max(ma, 1.0)
    if len(a) < 2 or len(b) < 2:
        return False  # one trial a side shows no noise to be beyond
    return compare(a, b, min_effect=TIME_MIN_EFFECT).verdict != "no change"


def _match(ops_a: list[OpStat], ops_b: list[OpStat], kernels: bool) -> list[tuple[OpStat | None, OpStat | None, str]]:
    """One trial's ops paired: exact keys first, then looser ones for what is left."""
    rules: list[tuple[str, Callable[[OpStat], object]]]
    if kernels:
        rules = [("function", lambda o: (o.node_type, o.name))]
    else:
        rules = [("index, type and name", _key_op), ("type and name", _key_moved)]
    left_a, left_b = list(ops_a), list(ops_b)
    pairs: list[tuple[OpStat | None, OpStat | None, str]] = []
    for how, key in rules:
        index: dict[object, list[OpStat]] = {}
        for op in left_b:
            index.setdefault(key(op), []).append(op)
        rest = []
        for op in left_a:
            hits = index.get(key(op))
            if hits:
                other = hits.pop(0)
                pairs.append((op, other, how))
                left_b.remove(other)
            else:
                rest.append(op)
        left_a = rest
    if not kernels:  # by type in run order: the k-th unmatched CONV_2D of A with the k-th of B
        rest = []
        for op in left_a:
            other = next((o for o in left_b if o.node_type == op.node_type), None)
            if other is None:
                rest.append(op)
            else:
                pairs.append((op, other, "type (graph changed)"))
                left_b.remove(other)
        left_a = rest
    pairs += [(op, None, "only in A") for op in left_a]
    pairs += [(None, op, "only in B") for op in left_b]
    return pairs


def compare_op_groups(base: OpGroup, cand: OpGroup) -> OpComparison | None:
    """The op diff of one paired model × device; None when they share no profile source."""
    common = [s for s in base.sources() if s in cand.sources()]
    if not common:
        return None
    source = common[0]  # kernels (exact) before times
    kernels = source == "kernel"
    unit = "instructions" if kernels else "ms"
    trials_a, trials_b = _per_trial(base, source), _per_trial(cand, source)
    # The pairing is decided on the first trial of each side; every trial is then read by key.
    pairs = _match(trials_a[0], trials_b[0], kernels)

    def picker(op: OpStat | None) -> Callable[[list[OpStat]], OpStat | None]:
        if op is None:
            return lambda ops: None
        if kernels:
            return lambda ops: next((o for o in ops if (o.node_type, o.name) == (op.node_type, op.name)), None)
        return lambda ops: next((o for o in ops if _key_op(o) == _key_op(op)), None)

    rows = []
    for op_a, op_b, how in pairs:
        va, vb = _values(trials_a, picker(op_a)), _values(trials_b, picker(op_b))
        shown = op_a or op_b
        if shown is None:
            continue
        rows.append(
            OpDiff(
                node_type=shown.node_type,
                name=shown.name if op_a is None or op_b is None or op_a.name == op_b.name else f"{op_a.name} → {op_b.name}",
                index_a=op_a.index if op_a else None,
                index_b=op_b.index if op_b else None,
                a=_median(va) if op_a else None,
                b=_median(vb) if op_b else None,
                matched_by=how,
                beyond_noise=_beyond_noise(unit, va if op_a else [], vb if op_b else []),
            )
        )
    rows.sort(key=lambda r: (-abs(r.delta), r.node_type, r.name))
    return OpComparison(
        model_a=base.model_name,
        model_b=cand.model_name,
        device_serial=cand.device.serial,
        unit=unit,
        total_a=sum(r.a or 0.0 for r in rows),
        total_b=sum(r.b or 0.0 for r in rows),
        rows=rows,
        trials_a=len(trials_a),
        trials_b=len(trials_b),
    )


def compare_ops(store: Store, run_a: int, run_b: int) -> RunOpsComparison:
    """Run B's op profiles against run A's. Raises NotFoundError for an unknown run."""
    info_a, info_b = store.get_run(run_a), store.get_run(run_b)
    pairs, not_compared = pair_op_groups(store.op_groups([run_a]), store.op_groups([run_b]))
    groups = []
    for base, cand in pairs:
        diff = compare_op_groups(base, cand)
        if diff is None:
            not_compared.append(f"{label(_as_history(cand))}: the runs profiled it differently (per-op times vs kernels)")
        else:
            groups.append(diff)
    if not pairs and not not_compared:
        not_compared.append("neither run has op profiles: benchmark with `lab bench --ops`")
    return RunOpsComparison(info_a, info_b, groups, not_compared)


def top_ops(group: OpGroup, n: int = 5) -> tuple[str, list[tuple[str, str, float, float | None]]]:
    """The ``n`` costliest ops of a group: (unit, [(type or library, name, median value, median %)])."""
    sources = group.sources()
    if not sources:
        return "", []
    source = sources[0]
    trials = _per_trial(group, source)
    by_key: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for ops in trials:
        for op in ops:
            values, shares = by_key.setdefault((op.node_type, op.name), ([], []))
            if op.value is not None:
                values.append(op.value)
            if op.percent is not None:
                shares.append(op.percent)
    ranked = sorted(
        ((t, name, statistics.median(v), _median(p)) for (t, name), (v, p) in by_key.items() if v),
        key=lambda row: -row[2],
    )
    return ("instructions" if source == "kernel" else "ms"), ranked[:n]



def kernel_instructions(group: OpGroup | None) -> dict[str, float | None]:
    """Each counted kernel function's instructions per inference, median over the group's trials."""
    if group is None:
        return {}
    values: dict[str, list[float]] = {}
    for ops in _per_trial(group, "kernel"):
        for op in ops:
            values.setdefault(op.name, [])
            if op.instructions is not None:
                values[op.name].append(op.instructions)
    return {name: (statistics.median(v) if v else None) for name, v in values.items()}


def profile_names(group: OpGroup | None, source: str) -> set[str]:
    """Every kernel function (``kernel``) or ``type name`` op (``op``) in a group's profiles."""
    if group is None:
        return set()
    return {f"{op.node_type} {op.name}" if source == "op" else op.name for ops in _per_trial(group, source) for op in ops}
