"""Kernel families and the precision the kernels used, from per-kernel counts recorded on the arm64
emulated device (tests/fixtures/kernels: the device agent's runner under QEMU, neoverse-n1, LiteRT
2.3.0, every variant of ``lab build --quick --dataset synthetic --variants all``, with and without
``--xnnpack_force_fp16``, and benchmarks/variants_matrix.py's MobileNet dynamic-range variant);
XNNPACK-delegated nodes from the same outputs and a phone's."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_agent.output import parse
from host.bench.evidence import (
    DelegatedNodes,
    delegated_nodes,
    kernel_families,
    kernel_family,
    parse_kernel_name,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _recorded(name: str) -> tuple[dict[str, float], str]:
    text = (FIXTURES / "kernels" / f"arm64-{name}.txt").read_text()
    result = parse(text)
    assert result.kernels is not None
    return {row.function: row.instructions for row in result.kernels.rows}, text


@pytest.mark.parametrize(
    ("variant", "precision", "sparse", "families"),
    [
        ("dense", "f32", False, {"f32 GEMM", "f32 depthwise conv"}),
        ("pruned", "f32", True, {"sparse f32", "f32 depthwise conv", "f32 direct conv", "f32 GEMM"}),
        # float16 weights are unpacked to float32 by default: the same kernels as float32
        ("dense-fp16", "f32", False, {"f32 GEMM", "f32 depthwise conv"}),
        ("pruned-fp16", "f32", True, {"sparse f32", "f32 depthwise conv", "f32 direct conv", "f32 GEMM"}),
        # int8 runs XNNPACK's dense qs8 kernels, pruned or not
        ("dense-int8", "int8", False, {"qs8 GEMM", "qs8 depthwise conv"}),
        ("pruned-int8", "int8", False, {"qs8 GEMM", "qs8 depthwise conv"}),
        # the guide's filters are under the converter's 1,024-value threshold: they stay float32
        ("dense-dynamic", "f32", False, {"f32 GEMM", "f32 depthwise conv"}),
        # forced fp16: f16 kernels; the pruned model loses the sparse path (LiteRT 2.3.0's XNNPACK)
        ("dense-fp16-force-fp16", "f16", False, {"f16 GEMM", "f16 depthwise conv"}),
        ("pruned-fp16-force-fp16", "f16", False, {"f16 GEMM", "f16 depthwise conv"}),
        ("dense-int8-force-fp16", "int8", False, {"qs8 GEMM", "qs8 depthwise conv"}),
    ],
)
def test_recorded_kernels_give_families_and_precision(
    variant: str, precision: str, sparse: bool, families: set[str]
) -> None:
    counts, _ = _recorded(variant)
    found = kernel_families(counts)
    assert set(found.families) - {"other"} == families
    assert found.precision == precision
    assert found.precisions == (precision,)
    assert found.sparse is sparse
    assert all(value is not None and value > 0 for value in found.families.values())
    values = list(found.families.values())
    assert values == sorted(values, reverse=True)  # most instructions first


def test_a_dynamic_range_model_shows_kleidiai_gemms_and_tflites_own_kernels() -> None:
    """MobileNet v1 α=0.25 (benchmarks/variants_matrix.py), dynamic-range: XNNPACK takes 28 of its 35
    nodes and runs its int8-weight GEMMs through KleidiAI on int8 activations quantized at run time;
    the 7 depthwise convolutions it leaves run TFLite's own hybrid kernels."""
    counts, text = _recorded("mobilenet-a025-dense-dynamic")
    found = kernel_families(counts, delegated=delegated_nodes(text))
    assert {"qd8 GEMM", "f32 GEMM", "f32 depthwise conv", "TFLite kernels", "other"} == set(found.families)
    assert "kai_run_matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod" in found.kernels["qd8 GEMM"]
    assert "kai_run_lhs_quant_pack_qai8dxp_f32" in found.kernels["other"]
    assert all(name.startswith("_ZN6tflite") for name in found.kernels["TFLite kernels"])
    assert found.precisions == ("f32", "int8") and found.precision == "f32"
    assert found.delegated == DelegatedNodes(28, 35, 8, False)  # seven TFLite nodes split it in eight
    assert found.summary().endswith("— kernels: f32 + int8; XNNPACK: 28 of 35 nodes")


def test_sparse_family_names_the_spmm_kernel_that_ran() -> None:
    counts, _ = _recorded("pruned")
    found = kernel_families(counts)
    assert found.kernels["sparse f32"] == ("xnn_f32_spmm_minmax_ukernel_32x1__neonfma_pipelined",)
    assert found.kernels["f32 direct conv"] == ("xnn_f32_conv_hwc2chw_ukernel_3x3s2p1c3x4__aarch64_neonfma_2x2",)
    assert "xnn_compute_spmm" not in {name for names in found.kernels.values() for name in names}


def test_names_only_give_families_without_figures_and_the_lowest_precision() -> None:
    counts, _ = _recorded("dense-int8-force-fp16")  # qs8 compute kernels, f16/f32 conversions at the edges
    found = kernel_families(set(counts))
    assert set(found.families) == {"qs8 GEMM", "qs8 depthwise conv", "other"}
    assert all(value is None for value in found.families.values())
    assert list(found.families)[-1] == "other"
    assert found.precision == "int8"
    assert "%" not in found.summary()


def test_the_summary_is_one_cell_with_shares_precision_and_delegation() -> None:
    counts, text = _recorded("pruned")
    summary = kernel_families(counts, delegated=delegated_nodes(text)).summary()
    assert summary.startswith("f32 depthwise conv 36%, f32 direct conv 33%, sparse f32 26%")
    assert summary.endswith("— kernels: f32; XNNPACK: 12 of 12 nodes")


def test_no_microkernel_gives_empty_families() -> None:
    found = kernel_families({"_ZN6tflite8Subgraph10InvokeImplEv": 604.0, "xnn_invoke_runtime": 551.0, "(unknown)": 80.0})
    assert found.families == {} and found.precision is None and found.precisions == () and not found.sparse
    assert found.summary() == "no XNNPACK microkernels — kernels: n/a"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        # names from XNNPACK's sources (src/configs, test and bench lists) not recorded in the fixtures
        ("xnn_f16_spmm_minmax_ukernel_32x1__neonfp16arith_pipelined", "sparse f16"),
        ("xnn_f16_dwconv2d_chw_ukernel_3x3p1__neonfp16arith_2x8", "f16 depthwise conv"),
        ("xnn_f16_conv_hwc2chw_ukernel_3x3s2p1c3x4__neonfp16arith_2x2", "f16 direct conv"),
        ("xnn_qd8_f32_qc8w_gemm_minmax_ukernel_4x16c4__asm_aarch64_neondot_cortex_a55", "qd8 GEMM"),
        ("xnn_qu8_gemm_minmax_rndnu_ukernel_4x16__asm_aarch64_neon_mlal_lane_cortex_a53", "qu8 GEMM"),
        ("xnn_qu8_igemm_minmax_rndnu_ukernel_4x16__asm_aarch64_neon_mlal_lane_cortex_a75", "qu8 GEMM"),
        ("xnn_pf32_gemm_minmax_ukernel_1x32__neonsme2", "f32 GEMM"),
        ("xnn_qp8_f32_qc4w_gemm_minmax_ukernel_1x4c16s2__aarch64_neondot", "qd8 GEMM"),
        # KleidiAI's, which XNNPACK calls (names from Arm's KleidiAI sources)
        ("kai_run_matmul_clamp_f16_f16_f16p16x1biasf16_6x16x8_neon_mla", "f16 GEMM"),
        ("kai_run_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa", "qs8 GEMM"),
        ("kai_run_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme2_mopa", "f32 GEMM"),
        # recorded
        ("kai_run_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod", "qd8 GEMM"),
        ("kai_run_lhs_quant_pack_qai8dxp_f32", "other"),
        ("_ZN6tflite3ops7builtin14depthwise_conv4EvalILNS2_10KernelTypeE2EEE12TfLiteStatusP13TfLiteContextP10TfLiteNode",
         "TFLite kernels"),
        ("xnn_f32_igemm_minmax_ukernel_6x8__asm_aarch64_neonfma_cortex_a75_prfm", "f32 GEMM"),
        ("xnn_f16_f32acc_rdsum_ukernel_7p7x__neonfp16arith_u16", "other"),
        ("xnn_f32_qs8_vcvt_ukernel__neonv8_u32", "other"),
        ("xnn_xx_pad_ukernel_p16__neon_u16", "other"),
        # no microkernels
        ("xnn_compute_spmm", None),
        ("xnn_run_operator_with_index", None),
        ("(unknown)", None),
        ("_ZN6tflite7xnnpack12_GLOBAL__N_114SubgraphInvokeEP13TfLiteContextP10TfLiteNode", None),
        ("_ZN6tflite8Subgraph10InvokeImplEv", None),
    ],
)
def test_kernel_family_follows_xnnpacks_name_grammar(name: str, family: str | None) -> None:
    assert kernel_family(name) == family


def test_a_name_splits_into_datatypes_op_tile_and_isa() -> None:
    parsed = parse_kernel_name("xnn_qs8_qc8w_igemm_minmax_fp32_ukernel_4x16c4__asm_aarch64_neondot_ld128")
    assert parsed is not None
    assert (parsed.datatypes, parsed.op, parsed.tile, parsed.isa) == (
        ("qs8", "qc8w"), "igemm", "4x16c4", "asm_aarch64_neondot_ld128"
    )
    rsum = parse_kernel_name("xnn_f32_rsum_ukernel__neon_u16_acc4")
    assert rsum is not None and (rsum.op, rsum.tile, rsum.isa) == ("rsum", "", "neon_u16_acc4")
    chw = parse_kernel_name("xnn_f32_dwconv2d_chw_ukernel_3x3s2p1__aarch64_neonfma_2x4_acc2")
    assert chw is not None and (chw.op, chw.tile) == ("dwconv2d_chw", "3x3s2p1")


@pytest.mark.parametrize(
    ("variant", "nodes"),
    [("dense", (10, 10)), ("pruned", (12, 12)), ("dense-fp16", (22, 22)), ("pruned-fp16", (24, 24)),
     ("pruned-int8", (14, 14))],
)  # fmt: skip
def test_the_runners_output_gives_delegated_nodes(variant: str, nodes: tuple[int, int]) -> None:
    _, text = _recorded(variant)
    found = delegated_nodes(text)
    assert found == DelegatedNodes(nodes[0], nodes[1], 1, True)
    assert found.text() == f"{nodes[0]} of {nodes[1]} nodes"


def test_forced_fp16_says_the_whole_graph_without_node_counts() -> None:
    _, text = _recorded("dense-fp16-force-fp16")  # CompiledModel lists no nodes
    assert delegated_nodes(text) == DelegatedNodes(complete=True)


def test_a_phones_partial_delegation_has_no_node_counts() -> None:
    text = (FIXTURES / "benchmark_model" / "03-ti-am62x-tflite2.18-xnnpack-partial.txt").read_text()
    found = delegated_nodes(text)
    assert found == DelegatedNodes(complete=False)
    assert found.text() == "part of the graph"


def test_older_tflite_wording_and_no_xnnpack() -> None:
    older = "INFO: Replacing 9 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 2 partitions.\n"
    assert delegated_nodes(older) == DelegatedNodes(9, None, 2, None)
    assert DelegatedNodes(9, None, 2, None).text() == "9 nodes, 2 partitions"
    flex = "INFO: Replacing 1 node(s) with delegate (TfLiteFlexDelegate) node, yielding 1 partitions.\n"
    assert delegated_nodes(flex) is None
    text = (FIXTURES / "benchmark_model" / "01-ti-am57x-tflite1.12-nostats.txt").read_text()
    assert delegated_nodes(text) is None
