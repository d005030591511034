"""Sparse-path evidence from the kernels or ops that ran; a CI from too few trials shown as n/a."""

from __future__ import annotations

from host.bench.evidence import sparse_evidence, sparse_note
from host.bench.stats import Estimate
from host.report import _format as f

DENSE_KERNELS = {"xnn_f32_gemm_minmax_ukernel_4x8__aarch64_neonfma", "xnn_f32_dwconv_minmax_ukernel_9p4c__neon"}
PRUNED_KERNELS = {"xnn_f32_spmm_minmax_ukernel_32x1__neonfma_pipelined", "xnn_f32_dwconv2d_chw_ukernel_3x3p1__neon"}


def test_sparse_kernels_in_the_pruned_model_only_are_evidence() -> None:
    engaged, why = sparse_evidence(DENSE_KERNELS, PRUNED_KERNELS)
    assert engaged and "xnn_f32_spmm_minmax_ukernel_32x1__neonfma_pipelined" in why and "not in the baseline" in why
    note = sparse_note("pruned.tflite", 74_684, 121_308, (engaged, why))
    assert note is not None and "0.62×" in note and "sparse path engaged: yes — sparse kernels ran" in note


def test_no_sparse_kernel_says_no_even_when_instructions_dropped() -> None:
    engaged, why = sparse_evidence(DENSE_KERNELS, DENSE_KERNELS)
    assert not engaged and "no sparse kernels" in why
    note = sparse_note("pruned.tflite", 50_000, 121_308, (engaged, why))
    assert note is not None and "engaged: no" in note


def test_a_phone_op_profile_in_chw_layout_is_evidence() -> None:
    dense_ops = {"Convolution (NHWC, F32) IGEMM conv2d_1"}
    pruned_ops = {"Convolution (NCHW, F32) SpMM conv2d_1", "Convolution (NHWC, F32) IGEMM conv2d"}
    engaged, why = sparse_evidence(set(), set(), dense_ops, pruned_ops)
    assert engaged and "CHW" in why and "op profile" in why


def test_without_a_profile_the_ratio_is_used_and_labelled_as_inferred() -> None:
    assert sparse_evidence(DENSE_KERNELS, set()) is None
    note = sparse_note("pruned.tflite", 74_684, 121_308, None)
    assert note is not None and "inferred from the instruction ratio" in note and "engaged: yes" in note
    assert sparse_note("pruned.tflite", None, None, None) is None


def test_a_ci_from_fewer_than_three_trials_is_not_shown() -> None:
    est = Estimate(100.0, 100.0, 100.0)
    assert f.estimate_us(est, 1) == "100.0 µs [CI n/a: 1 trial]"
    assert f.ratio(Estimate(1.1, 1.0, 1.2), 2) == "1.100× [CI n/a: 2 trials]"
    assert f.estimate_us(Estimate(100.0, 99.0, 101.0), 5) == "100.0 [99.0–101.0] µs"
