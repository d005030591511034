"""What ran, from the kernels or ops that ran — not guessed from timings.

Per-kernel instruction counts (the arm64 emulated device with ``--enable_op_profiling``) name the
functions that ran: XNNPACK's sparse GEMMs are ``xnn_f32_spmm_*`` / ``xnn_f16_spmm_*``. A phone's
benchmark_model op profile names XNNPACK's ops with their layout, and the sparse path switches the
graph to CHW. Only where neither profile exists is the instruction ratio used, and labelled as such.

``kernel_families`` sorts XNNPACK's microkernels into families (sparse f32, f16 GEMM, qs8 depthwise
conv …) and says which arithmetic the compute kernels used; ``delegated_nodes`` reads how many of
the graph's nodes XNNPACK took from the tool's output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "SPARSE_PATH_RATIO", "sparse_evidence", "sparse_note", "kernel_names", "KernelName", "parse_kernel_name",
    "kernel_family", "KernelFamilies", "kernel_families", "DelegatedNodes", "delegated_nodes", "TFLITE_KERNELS",
]

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


# ---------------------------------------------------------------------------------------------
# Kernel families. XNNPACK names every microkernel
#   xnn_<datatypes>_<op>[_<activation>][_<requantization>]_ukernel[_<tile>]__<isa>[_<variant>]
# e.g. xnn_f32_spmm_minmax_ukernel_32x1__neonfma_pipelined, xnn_qs8_qc8w_igemm_minmax_fp32_ukernel_
# 4x16c4__asm_aarch64_neondot_ld128, xnn_f16_dwconv2d_chw_ukernel_3x3p1__neonfp16arith_2x8 (XNNPACK's
# src/<datatypes>-<op>/ folders and its generated microkernel lists; the names above were recorded
# on the arm64 emulated device). The first datatype is the arithmetic's input type; the ones after it
# name weights (qc8w: per-channel int8), outputs or accumulators (f32acc); ``xx`` is any type.

_DATATYPE = re.compile(r"^(?:b?f\d+(?:acc)?|p?q[a-z]\d+[a-z]?|pf\d+|[sux]\d+|xx)$")  # xx: any type (pad, fill)
_MODIFIERS = frozenset({"minmax", "relu", "linear", "fp32", "rndnu", "rndnu16", "gemmlowp"})
_PRECISIONS = {"f32": "f32", "f16": "f16", "bf16": "bf16", "qs8": "int8", "qu8": "int8", "qd8": "int8"}
# Packed-input variants compute as their plain type: pf32/pf16 are f32/f16 with a packed left-hand
# side, pqs8 is qs8 so packed, and qp8 is KleidiAI's packed dynamically quantized int8 (qd8).
_ALIASES = {"pf32": "f32", "pf16": "f16", "pqs8": "qs8", "qp8": "qd8"}
_GEMM_OPS = frozenset({"gemm", "igemm", "gemminc", "ppmm"})

# XNNPACK also calls Arm's KleidiAI for some GEMMs (recorded: the dynamic-range model's
# kai_run_matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod). KleidiAI names them
# kai_run_[i]matmul_clamp_<dst>_<lhs>_<rhs>_<tile>_<isa>; the left-hand side is the arithmetic's
# input: qai8dx…/qsi8d32… are int8 quantized at run time (XNNPACK's qd8), qai8 static int8 (qs8).
_KLEIDIAI_GEMM = re.compile(r"^kai_run_i?matmul_clamp_[a-z0-9]+_(?P<lhs>[a-z0-9]+)_")
_KLEIDIAI_LHS = (("qai8dx", "qd8"), ("qsi8d32", "qd8"), ("qai8", "qs8"), ("bf16", "bf16"), ("f16", "f16"), ("f32", "f32"))
# TFLite's own kernels (mangled tflite::optimized_ops::, reference_ops::, tensor_utils::, …): what
# runs of the nodes XNNPACK did not take.
_TFLITE_KERNEL = re.compile(
    r"^_ZN6tflite(?:13optimized_ops|14reference_ops|12tensor_utils|21optimized_integer_ops|21reference_integer_ops"
    r"|3ops7builtin)"
)
TFLITE_KERNELS = "TFLite kernels"


@dataclass(frozen=True)
class KernelName:
    """An XNNPACK microkernel name, split: ``datatypes`` (``("qs8", "qc8w")``), ``op``
    (``"igemm"``, ``"dwconv2d_chw"``), ``tile`` (``"4x16c4"``, empty when none) and ``isa``
    (``"asm_aarch64_neondot_ld128"``)."""

    datatypes: tuple[str, ...]
    op: str
    tile: str
    isa: str

    @property
    def datatype(self) -> str:
        """The arithmetic's input type, packed variants named as their plain type (pf32 → f32)."""
        return _ALIASES.get(self.datatypes[0], self.datatypes[0])


def parse_kernel_name(name: str) -> KernelName | None:
    """``name`` as an XNNPACK microkernel, or None when it is none (``xnn_compute_spmm``, a
    TFLite or Python function, ``(unknown)``)."""
    head, sep, rest = name.partition("_ukernel")
    if not sep or not head.startswith("xnn_") or "__" not in rest:
        return None
    tile, _, isa = ("", "", rest[2:]) if rest.startswith("__") else rest[1:].partition("__")
    tokens = head[len("xnn_"):].split("_")
    datatypes = []
    while tokens and _DATATYPE.match(tokens[0]):
        datatypes.append(tokens.pop(0))
    while tokens and tokens[-1] in _MODIFIERS:
        tokens.pop()
    if not datatypes or not tokens or not isa:
        return None
    return KernelName(tuple(datatypes), "_".join(tokens), tile, isa)


def kernel_family(name: str) -> str | None:
    """The family of one microkernel: ``sparse f32``, ``sparse f16``, ``f32 GEMM`` (GEMM and IGEMM
    alike: IGEMM is the convolution's GEMM through an indirection buffer), ``f16 GEMM``, ``qs8 GEMM``,
    ``qd8 GEMM``, ``qu8 GEMM``, ``f32 depthwise conv`` (HWC ``dwconv`` and the sparse path's CHW
    ``dwconv2d_chw``), ``f32 direct conv`` (``conv_hwc``/``conv_hwc2chw``: the sparse path's dense
    first convolution, HWC in, CHW out), … per datatype, or ``other`` (conversions, reductions,
    elementwise ops, KleidiAI's packing). KleidiAI's GEMMs, which XNNPACK calls, join the GEMM
    family of their datatype; TFLite's own kernels (nodes XNNPACK did not take) are ``TFLite
    kernels``. None for any other function (XNNPACK's drivers, TFLite's plumbing, Python).

    >>> kernel_family("xnn_f32_spmm_minmax_ukernel_32x1__neonfma_pipelined")
    'sparse f32'
    >>> kernel_family("xnn_qs8_qc8w_igemm_minmax_fp32_ukernel_4x16c4__asm_aarch64_neondot_ld128")
    'qs8 GEMM'
    """
    if _TFLITE_KERNEL.match(name):
        return TFLITE_KERNELS
    if name.startswith("kai_run_"):
        gemm = _KLEIDIAI_GEMM.match(name)
        lhs = gemm.group("lhs") if gemm else ""
        datatype = next((kind for prefix, kind in _KLEIDIAI_LHS if lhs.startswith(prefix)), None)
        return f"{datatype} GEMM" if datatype else "other"  # packing (kai_run_lhs_…, kai_run_rhs_…)
    parsed = parse_kernel_name(name)
    if parsed is None:
        return None
    if parsed.op == "spmm":
        return f"sparse {parsed.datatype}"
    if parsed.op in _GEMM_OPS:
        return f"{parsed.datatype} GEMM"
    if parsed.op.startswith("dwconv"):
        return f"{parsed.datatype} depthwise conv"
    if parsed.op.startswith("conv_hwc"):
        return f"{parsed.datatype} direct conv"
    return "other"


def _precision(family: str) -> str | None:
    """The arithmetic of a compute family (GEMM, sparse, depthwise, direct conv): f32, f16, bf16 or int8."""
    if family in ("other", TFLITE_KERNELS):
        return None
    datatype = family.split()[1] if family.startswith("sparse ") else family.split()[0]
    return _PRECISIONS.get(datatype, datatype)


@dataclass(frozen=True)
class DelegatedNodes:
    """How much of the graph XNNPACK took, as the tool printed it.

    ``delegated`` of ``total`` nodes (``Replacing N out of M node(s) with delegate
    (TfLiteXNNPackDelegate) node, yielding P partitions``; older TFLite prints no ``out of M``);
    ``complete`` from ``… will be completely/partially executed by the delegate``. Each is None
    when the output does not say.
    """

    delegated: int | None = None
    total: int | None = None
    partitions: int | None = None
    complete: bool | None = None

    def text(self) -> str:
        """``10 of 10 nodes`` / ``9 nodes, 2 partitions`` / ``the whole graph`` / ``part of the graph``."""
        if self.delegated is not None and self.total is not None:
            return f"{self.delegated} of {self.total} nodes"
        if self.delegated is not None:
            return f"{self.delegated} nodes" + (f", {self.partitions} partitions" if self.partitions else "")
        if self.complete is not None:
            return "the whole graph" if self.complete else "part of the graph"
        return "not reported"


_REPLACING = re.compile(
    r"Replacing (?P<n>\d+)(?: out of (?P<m>\d+))? node\(s\) with delegate \(TfLiteXNNPackDelegate\) node, "
    r"yielding (?P<p>\d+) partitions"
)
_EXECUTED = re.compile(r"the model graph will be (?P<how>completely|partially) executed by the delegate")
_NOT_EXECUTED = re.compile(r"the model graph will not be executed by the delegate")


def delegated_nodes(output: str) -> DelegatedNodes | None:
    """XNNPACK's share of the graph from a benchmark_model output (a phone's or the device agent
    runner's); None when the output has no XNNPACK delegation line at all.

    The real outputs the lab keeps (TFLite 2.18–2.20: ``Explicitly applied XNNPACK delegate, and
    the model graph will be partially executed by the delegate w/ 1 delegate kernels.``) say only
    whether all of it was; node counts come from TFLite's own ``Replacing N out of M node(s) with
    delegate (TfLiteXNNPackDelegate) node, yielding P partitions …`` line (core/subgraph.cc), which
    the device agent's runner prints and none of those phone outputs has. The first XNNPACK line of
    each kind is used (a later one would be another run's).
    """
    replacing = _REPLACING.search(output)
    executed = _EXECUTED.search(output)
    complete: bool | None = None
    if executed is not None:
        complete = executed.group("how") == "completely"
    elif _NOT_EXECUTED.search(output):
        complete = False
    if replacing is None and complete is None:
        return None
    if replacing is None:
        return DelegatedNodes(delegated=0 if executed is None else None, complete=complete)
    n, m = int(replacing.group("n")), replacing.group("m")
    total = int(m) if m is not None else None
    if complete is None and total is not None:
        complete = n == total
    return DelegatedNodes(n, total, int(replacing.group("p")), complete)


@dataclass(frozen=True)
class KernelFamilies:
    """The XNNPACK microkernels of one model's profile, by family, and the arithmetic they used.

    ``families``: family → instructions per inference (None when only names were given), most
    first; ``kernels``: family → its microkernel names. ``precision`` is the arithmetic of the
    compute kernels (GEMM, sparse, depthwise, direct conv) with the most instructions — with names
    only, the lowest precision among them, since a quantized or fp16 model may keep f32 kernels at
    its edges (float logits) but never the reverse — and ``precisions`` all of them.
    ``sparse``: a sparse (SPMM) kernel ran. ``delegated``: what the caller passed.
    """

    families: dict[str, float | None]
    kernels: dict[str, tuple[str, ...]]
    precision: str | None
    precisions: tuple[str, ...]
    sparse: bool
    delegated: DelegatedNodes | None = None

    def summary(self) -> str:
        """One cell: ``f32 depthwise conv 36%, … sparse f32 26%, … — kernels: f32; XNNPACK: 12 of 12 nodes``."""
        known = [v for v in self.families.values() if v is not None]
        total = sum(known)
        parts = []
        for family, value in self.families.items():
            share = f" {value / total:.0%}" if value is not None and total > 0 else ""
            parts.append(f"{family}{share}")
        text = ", ".join(parts) if parts else "no XNNPACK microkernels"
        text += f" — kernels: {' + '.join(self.precisions) if self.precisions else 'n/a'}"
        if self.delegated is not None:
            text += f"; XNNPACK: {self.delegated.text()}"
        return text


_PRECISION_ORDER = ("int8", "f16", "bf16", "f32")  # lowest first: what a names-only profile reports


def kernel_families(
    kernels: Mapping[str, float | None] | Iterable[str], *, delegated: DelegatedNodes | None = None
) -> KernelFamilies:
    """Sort the functions of a per-kernel profile into XNNPACK microkernel families.

    Args:
        kernels: function names (``profile_names(group, "kernel")``), or a mapping of function
            name → instructions per inference (``{k.function: k.instructions for k in rows}``,
            ``OpStat.name`` → ``OpStat.instructions``). Functions of no family (XNNPACK's drivers
            such as ``xnn_compute_gemm``, TFLite's plumbing, Python) are left out, so the shares in
            ``summary`` are of the kernels' instructions.
        delegated: ``delegated_nodes(raw_output)``, carried into the result and its summary.

    Returns:
        ``KernelFamilies``; with no microkernel among ``kernels`` (XNNPACK off, or a profile cut to
        other functions), empty families and no precision.
    """
    counted = dict(kernels) if isinstance(kernels, Mapping) else dict.fromkeys(kernels)
    values: dict[str, float | None] = {}
    names: dict[str, list[str]] = {}
    for name, instructions in counted.items():
        family = kernel_family(name)
        if family is None:
            continue
        names.setdefault(family, []).append(name)
        previous = values.get(family, 0.0)
        values[family] = None if previous is None or instructions is None else previous + instructions
    weighed = all(v is not None for v in values.values())
    order = sorted(values, key=lambda f: (-(values[f] or 0.0), f) if weighed else (f == "other", f))
    by_precision: dict[str, float] = {}
    for family in order:
        precision = _precision(family)
        if precision is not None:
            by_precision[precision] = by_precision.get(precision, 0.0) + (values[family] or 0.0)
    if weighed:
        precisions = tuple(sorted(by_precision, key=lambda p: -by_precision[p]))
    else:
        rank = {p: i for i, p in enumerate(_PRECISION_ORDER)}
        precisions = tuple(sorted(by_precision, key=lambda p: rank.get(p, len(rank))))
    return KernelFamilies(
        families={f: values[f] for f in order},
        kernels={f: tuple(sorted(names[f])) for f in order},
        precision=precisions[0] if precisions else None,
        precisions=precisions,
        sparse=any(f.startswith("sparse ") for f in order),
        delegated=delegated,
    )
