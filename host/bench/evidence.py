"""Whether XNNPACK's sparse path ran, from the kernels or ops that ran — not guessed from timings.

Per-kernel instruction counts (the arm64 emulated device with ``--enable_op_profiling``) name the
functions that ran: XNNPACK's sparse GEMMs are ``xnn_f32_spmm_*`` / ``xnn_f16_spmm_*``. A phone's
benchmark_model op profile names XNNPACK's ops with their layout, and the sparse path switches the
graph to CHW. Only where neither profile exists is the instruction ratio used, and labelled as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["SPARSE_PATH_RATIO", "sparse_evidence", "sparse_note", "kernel_names"]

SPARSE_PATH_RATIO = 0.9  # pruned/dense instructions below this suggest the sparse path (inference only)

_SPARSE_KERNEL = re.compile(r"spmm", re.IGNORECASE)
_CHW_OP = re.compile(r"\bN?CHW\b")


def kernel_names(kernels: Iterable[object]) -> set[str]:
    """The function names of ``KernelRow``s (``BenchmarkResult.kernels.rows``)."""
    return {str(getattr(k, "function", "")) for k in kernels}


def sparse_evidence(
    base_kernels: set[str], kernels: set[str], base_ops: set[str] = frozenset(), ops: set[str] = frozenset()
) -> tuple[bool, str] | None:
    """(engaged, evidence) for a model against its baseline; None when the model has no profile."""
    for base_found, found, pattern, what, where in (
        (base_kernels, kernels, _SPARSE_KERNEL, "sparse kernels", "per-kernel counts"),
        (base_ops, ops, _CHW_OP, "XNNPACK ops in the CHW layout", "op profile"),
    ):
        if not found:
            continue
        # the micro-kernels themselves (xnn_f32_spmm_minmax_ukernel_…) before their drivers (xnn_compute_spmm)
        hits = sorted((n for n in found if pattern.search(n)), key=lambda n: ("ukernel" not in n, n))
        if not hits:
            return False, f"no {what} in its {where}"
        more = f" and {len(hits) - 1} more" if len(hits) > 1 else ""
        also = " (the baseline ran them too)" if any(pattern.search(n) for n in base_found) else ", not in the baseline's"
        return True, f"{what} ran ({where}): {hits[0]}{more}{also}"
    return None


def sparse_note(
    name: str, instructions: float | None, base_instructions: float | None, evidence: tuple[bool, str] | None
) -> str | None:
    """One line: "sparse path engaged: yes — <evidence>", or inferred from instructions and labelled so."""
    ratio = instructions / base_instructions if instructions and base_instructions else None
    counts = f"{ratio:.2f}× the baseline's instructions per inference; " if ratio is not None else ""
    if evidence is not None:
        engaged, why = evidence
        return f"{name}: {counts}sparse path engaged: {'yes' if engaged else 'no'} — {why}"
    if ratio is not None:
        engaged_text = "yes" if ratio < SPARSE_PATH_RATIO else "no"
        return (
            f"{name}: {counts}sparse path engaged: {engaged_text} (inferred from the instruction ratio; "
            "no per-kernel counts stored — benchmark with --ops to record them)"
        )
    return None
