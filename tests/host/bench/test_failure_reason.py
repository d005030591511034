"""Why a benchmark_model run that exited non-zero failed, in one line quoting its own cause."""

from __future__ import annotations

from pathlib import Path

from host.bench.trial import failure_reason

FIXTURES = Path(__file__).parents[2] / "fixtures" / "benchmark_model"


def test_a_cause_without_an_error_prefix_is_quoted() -> None:
    output = (FIXTURES / "25-tf56166-android-2022-FAIL-xnnpack-delegate.txt").read_text()
    assert failure_reason(output, 1) == "benchmark_model failed (exit 1): Failed to apply XNNPACK delegate."


def test_an_error_line_is_quoted_before_the_generic_last_line() -> None:
    output = "STARTING!\nERROR: Didn't find op for builtin opcode 'MUL' version '5'.\nBenchmarking failed.\n"
    assert failure_reason(output, 1).endswith("Didn't find op for builtin opcode 'MUL' version '5'.")


def test_exit_codes_name_what_happened() -> None:
    assert failure_reason("", 127) == "benchmark_model not found on the device (exit 127): no output"
    assert failure_reason("Segmentation fault\n", 139).startswith("benchmark_model crashed (SIGSEGV, exit 139)")
