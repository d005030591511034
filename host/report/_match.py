"""Pairing one run's (model, device) groups with another's, for `lab compare` and `lab check`.

A device pairs by serial, else by hardware fingerprint (adb-over-TCP and emulated serials change
between runs); a model by sha256, else by build role, else by file name (a rebuilt model is a new
file with the old role). Groups only pair when device kind and emulation agree: an emulated
device measures the host's CPU and is never compared with a phone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from host.figures import HEADLINE_CHAIN, pick_common
from host.store import HistoryGroup

__all__ = ["Pair", "match_groups", "pool_groups", "label", "gate_values"]

Pair = tuple[HistoryGroup, HistoryGroup, str]  # (baseline, candidate, matched by)


def label(group: HistoryGroup) -> str:
    return f"{group.model_name} on {group.device.serial}"


def pool_groups(groups: list[HistoryGroup]) -> list[HistoryGroup]:
    """Merges groups of several runs by (model sha256 and name, device serial) into one sample per pair.

    ``figure_runs`` keeps which run each trial came from: the CI of a comparison against pooled
    runs resamples runs, not trials (``stats.ratio_ci``), since trials of one run share its day and load.
    """
    pooled: dict[tuple[str, str, str], HistoryGroup] = {}
    for g in groups:
        key = (g.model_sha256, g.model_name, g.device.serial)
        if key not in pooled:
            pooled[key] = HistoryGroup(
                run_id=g.run_id,
                run_status=g.run_status,
                run_started_at=g.run_started_at,
                model_sha256=g.model_sha256,
                model_name=g.model_name,
                role=g.role,
                device=g.device,
                trials_ok=0,
                trials_failed=0,
            )
        p = pooled[key]
        p.trials_ok += g.trials_ok
        p.trials_failed += g.trials_failed
        p.figures.extend(g.figures)
        p.figure_runs.extend(g.figure_runs)
        p.instructions.extend(g.instructions)
        for attr in ("threads", "use_xnnpack", "tools", "errors"):
            values = getattr(p, attr)
            values.extend(v for v in getattr(g, attr) if v not in values)
    return list(pooled.values())


def gate_values(
    baseline: HistoryGroup, candidate: HistoryGroup, chain: Sequence[str] = HEADLINE_CHAIN
) -> tuple[str, list[float], list[float]]:
    """The first statistic of ``chain`` that every ok trial on both sides has: (its name, baseline values, candidate values)."""
    return pick_common(baseline.figures, candidate.figures, chain)


def _device_candidates(g: HistoryGroup, others: list[HistoryGroup]) -> list[HistoryGroup]:
    same_serial = [o for o in others if o.device.serial == g.device.serial]
    if same_serial:
        return same_serial
    same_hardware = [o for o in others if o.device.fingerprint == g.device.fingerprint]
    if len({o.device.serial for o in same_hardware}) == 1:
        return same_hardware
    return []


def _model_match(g: HistoryGroup, candidates: list[HistoryGroup]) -> tuple[HistoryGroup | None, str]:
    rules: list[tuple[str, Callable[[HistoryGroup], bool]]] = [
        ("sha256", lambda o: o.model_sha256 == g.model_sha256 and o.model_name == g.model_name),
        ("sha256", lambda o: o.model_sha256 == g.model_sha256),
        ("role", lambda o: g.role is not None and o.role == g.role),
        ("name", lambda o: o.model_name == g.model_name),
    ]
    for how, rule in rules:
        hits = [o for o in candidates if rule(o)]
        if len(hits) == 1:
            return hits[0], how
        if len(hits) > 1:
            return None, f"several models match by {how}"
    return None, "not in the baseline"


def match_groups(
    baseline: list[HistoryGroup], candidate: list[HistoryGroup]
) -> tuple[list[Pair], list[str], list[HistoryGroup]]:
    """Pairs each candidate group with at most one baseline group.

    Returns the pairs, why candidate groups were left out, and the baseline groups nothing in the
    candidate matched (a gate treats those as missing; a comparison only lists them).
    """
    pairs: list[Pair] = []
    left_out: list[str] = []
    used: set[int] = set()
    for g in candidate:
        free = [o for o in baseline if id(o) not in used]
        match, how = _model_match(g, _device_candidates(g, free))
        if match is None:
            left_out.append(f"{label(g)}: {how}")
            continue
        if (match.device.kind, match.device.emulation) != (g.device.kind, g.device.emulation):
            left_out.append(
                f"{label(g)}: device kind {g.device.kind} is not comparable with {match.device.kind} "
                "(emulated results are compared only with emulated results)"
            )
            continue
        used.add(id(match))
        pairs.append((match, g, how))
    return pairs, left_out, [o for o in baseline if id(o) not in used]
