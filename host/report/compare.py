"""`lab compare RUN_A RUN_B`: per model × device, both latencies, their ratio with a CI, and a verdict.

The figures and the verdict use the same per-trial statistic and the same test as `lab check`'s
latency test (the headline, ``host.figures``; a trimmed t-test on log values, Holm-adjusted over the rows, and
a change beyond the threshold), so the two commands never disagree.
"""

from __future__ import annotations

from host.bench.stats import decide, holm, median_ci, ratio_ci, trimmed_t
from host.report.check import DEFAULT_MAX_REGRESSION
from host.report._match import gate_values, label, match_groups
from host.report._model import ComparisonRow, RunComparison
from host.store import Store

__all__ = ["compare_runs", "MIN_EFFECT"]

MIN_EFFECT = DEFAULT_MAX_REGRESSION["time"]  # a ratio within it is "no change" however significant


def compare_runs(store: Store, run_a: int, run_b: int, min_effect: float = MIN_EFFECT) -> RunComparison:
    """Compares run B against run A (A is the baseline). Raises NotFoundError for an unknown run."""
    info_a, info_b = store.get_run(run_a), store.get_run(run_b)
    pairs, unmatched, only_a = match_groups(store.run_groups([run_a]), store.run_groups([run_b]))
    unmatched.extend(f"{label(g)}: only in run {run_a}" for g in only_a)
    tested = [(pair, *gate_values(pair[0], pair[1])) for pair in pairs]
    p_values = [trimmed_t(base_values, cand_values) for _, _, base_values, cand_values in tested]
    adjusted = iter(holm([p for p in p_values if p is not None]))
    rows = []
    for ((base, cand, how), statistic, base_values, cand_values), p in zip(tested, p_values):
        ratio = ratio_ci(base_values, cand_values)
        p_adjusted = next(adjusted) if p is not None else None
        result = decide(ratio, p_adjusted, len(base_values), len(cand_values), min_effect=min_effect)
        rows.append(
            ComparisonRow(
                model_name=cand.model_name,
                device_serial=cand.device.serial,
                device_kind=cand.device.kind,
                statistic=statistic,
                median_a_us=median_ci(base_values),
                median_b_us=median_ci(cand_values),
                ratio=result.ratio,
                p_value=result.p_value,
                verdict=result.verdict,
                reason=result.reason,
                matched_by=how,
            )
        )
    return RunComparison(info_a, info_b, rows, unmatched)
