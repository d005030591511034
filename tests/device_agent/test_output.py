"""benchmark_model's output format: the parser against real outputs of many versions, and the writer."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from device_agent.errors import OutputParseError
from device_agent.output import (
    BenchmarkResult,
    InstructionCounts,
    RunStats,
    format_inference_timings,
    format_instructions,
    format_instructions_unavailable,
    format_memory_delta,
    format_number,
    format_periodic_peak,
    format_running,
    format_runner,
    format_stats,
    format_timer_overhead,
    parse,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmark_model"


def load(name: str) -> str:
    """A fixture's text without its leading ``# source:`` line (provenance, not tool output)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    if not first.startswith("# source:"):
        raise ValueError(f"{name}: the first line should be '# source: …', got {first!r}")
    return rest


def stats(count: int, first: float, curr: float, mn: float, mx: float, avg: float, std: float, *pct: float) -> RunStats:
    p5, median, p95 = pct if pct else (None, None, None)
    return RunStats(count, curr, first, mn, mx, avg, std, p5, median, p95)


def one_run(value: float, *, pct: bool = False) -> RunStats:
    p = value if pct else None
    return RunStats(1, value, value, value, value, value, 0.0, p, p, p)


# Every real sample and what it says. Fields not named here must be None (or () for warnings).
EXPECTED: dict[str, dict[str, Any]] = {
    "01-ti-am57x-tflite1.12-nostats.txt": dict(
        runs=stats(50, 137789, 137254, 137079, 143416, 137722, 896),
        warmup=one_run(146161),
        init_us=4452, warmup_avg_us=146161, inference_avg_us=137722, num_threads=1,
    ),
    "02-ti-am62x-tflite2.18-cpu-info-prefix.txt": dict(
        runs=stats(50, 977738, 964908, 911877, 1112273, 971535, 39112),
        warmup=one_run(1041765),
        init_us=6418, first_inference_us=1041765, warmup_avg_us=1.04176e06, inference_avg_us=971535,
        memory_delta_init_mb=6.14844, memory_delta_overall_mb=109.848,
        num_threads=4, use_xnnpack=False, xnnpack_applied=False, model_size_mb=67.3128,
    ),
    "03-ti-am62x-tflite2.18-xnnpack-partial.txt": dict(
        runs=stats(50, 605745, 618849, 568228, 722188, 602943, 27690),
        warmup=one_run(633430),
        init_us=592232, first_inference_us=633430, warmup_avg_us=633430, inference_avg_us=602943,
        memory_delta_init_mb=133.086, memory_delta_overall_mb=149.531,
        num_threads=4, use_xnnpack=True, xnnpack_applied=True, model_size_mb=67.3128,
    ),
    "04-ti-am62x-tflite2.20-percentiles-sci.txt": dict(
        runs=stats(50, 1249964, 1240143, 1238588, 1252566, 1.24027e06, 2565, 1238753, 1239807, 1247415),
        warmup=one_run(1357602, pct=True),
        init_us=5579, first_inference_us=1357602, warmup_avg_us=1.3576e06, inference_avg_us=1.24027e06,
        memory_delta_init_mb=6.36328, memory_delta_overall_mb=109.832,
        use_xnnpack=False, xnnpack_applied=False, model_size_mb=67.3128,
    ),
    "05-meta-tflite-riscv64-op-profiling.txt": dict(
        # Not the op profiler's "Timings (microseconds): count=50 … avg=2.9499e+06" further down.
        runs=stats(50, 2990275, 2913402, 2727568, 3189954, 2.95034e06, 109798),
        warmup=one_run(3512391),
        init_us=17187, first_inference_us=3512391, warmup_avg_us=3.51239e06, inference_avg_us=2.95034e06,
        memory_delta_init_mb=4.21094, memory_delta_overall_mb=46.0859, num_threads=4, model_size_mb=16.9008,
    ),
    "06-tf-readme-op-profiling-old-avg-wording.txt": dict(
        # The README excerpt keeps only the op profile and the old summary line.
        runs=None, init_us=38467, warmup_avg_us=83235, inference_avg_us=79760.9,
    ),
    "09-tf42507-android-2020-peak-memory-op-profiling-start.txt": dict(
        runs=stats(50, 32891, 33978, 32641, 34005, 33209.4, 450),
        warmup=stats(15, 49060, 33682, 32825, 49060, 34825.1, 3930),
        init_us=855, first_inference_us=49060, warmup_avg_us=34825.1, inference_avg_us=33209.4,
        peak_memory_init_mb=0, peak_memory_overall_mb=12.8672, num_threads=4, model_size_mb=0.004448,
        warnings=("Duplicate flags: num_threads",),
    ),
    "19-tf61946-linux-x86-2023-info-prefix-memdelta.txt": dict(
        runs=stats(50, 121183, 115199, 111222, 121324, 116066, 1906),
        warmup=stats(5, 124020, 116061, 115177, 124020, 117225, 3412),
        init_us=530, first_inference_us=124020, warmup_avg_us=117225, inference_avg_us=116066,
        memory_delta_init_mb=3.75, memory_delta_overall_mb=12.1914, model_size_mb=4.27635,
    ),
    "24-ti-am62x-tflite2.20-xnnpack-partial-percentiles.txt": dict(
        runs=stats(50, 900416, 898333, 898007, 906121, 899641, 1549, 898333, 899281, 904305),
        warmup=one_run(905463, pct=True),
        init_us=614333, first_inference_us=905463, warmup_avg_us=905463, inference_avg_us=899641,
        memory_delta_init_mb=146.363, memory_delta_overall_mb=150.141,
        use_xnnpack=True, xnnpack_applied=True, model_size_mb=67.3128,
    ),
}  # fmt: skip


# Every real failed run and the line its error quotes: the first ERROR: line, else the first cause
# printed without a prefix (14 has both: its ERROR: line wins over "Failed to initialize the interpreter").
FAILURES: dict[str, str] = {
    "14-tf50641-linux-2021-FAIL-unsupported-op-version.txt": (
        "ERROR: Didn't find op for builtin opcode 'MUL' version '5'. An older version of this builtin might be "
        "supported. Are you using an old TFLite binary with a newer model?"
    ),
    "25-tf56166-android-2022-FAIL-xnnpack-delegate.txt": "Failed to apply XNNPACK delegate.",
    "26-armnn716-linux-2023-FAIL-external-delegate.txt": "Failed to apply EXTERNAL delegate.",
}


def test_every_fixture_has_expectations() -> None:
    names = {p.name for p in FIXTURES.glob("*.txt")}
    assert names == set(EXPECTED) | set(FAILURES)
    assert {name for name in names if "-FAIL-" in name} == set(FAILURES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_outputs(name: str) -> None:
    expected = BenchmarkResult(**{"runs": None, **EXPECTED[name]})
    assert parse(load(name)) == expected


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failed_run_quotes_its_error(name: str) -> None:
    with pytest.raises(OutputParseError, match="benchmark_model failed") as info:
        parse(load(name))
    assert info.value.text == FAILURES[name]


def test_source_line_is_harmless_to_parse() -> None:
    """The loader drops it; parse itself just sees an unknown line."""
    raw = (FIXTURES / "19-tf61946-linux-x86-2023-info-prefix-memdelta.txt").read_text(encoding="utf-8")
    assert parse(raw) == parse(load("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt"))


# ---- variants no fixture has: logcat prefixes, "(all same)", severity words, cut-off runs ----


def _lines(name: str) -> list[str]:
    return load(name).splitlines()


# Android Studio's Logcat window since 2022: date, time, pid-tid, tag, package (or "pid-N" when the
# process is gone), level, in padded columns; as pasted in tensorflow/tensorflow#78396.
STUDIO = "2024-01-15 10:23:45.123  4242-4242  tflite                  com.example.benchmark                {level}  "
LOGCAT_PREFIXES = {
    "threadtime": "11-25 15:02:33.123  4242  4242 {level} tflite  : ",
    "threadtime-year": "2024-11-25 15:02:33.123  4242  4242 {level} tflite  : ",
    "brief": "{level}/tflite  ( 4242): ",
    "tag": "{level}/tflite: ",
    "time": "11-25 15:02:33.123 {level}/tflite  ( 4242): ",
    "studio": STUDIO,
    "studio-pid": "2024-10-20 16:00:34.378 4242-4242 tflite                  pid-4242                             {level}  ",
    "studio-before-2022": "2019-09-15 11:38:39.830 4242-4242/com.example.benchmark {level}/tflite: ",
    "studio-before-2022-no-package": "02-25 06:23:37.531 4242-4242/? {level}/tflite: ",
}


@pytest.mark.parametrize("prefix", [*LOGCAT_PREFIXES.values(), "\t  "], ids=[*LOGCAT_PREFIXES, "indent"])
def test_logcat_prefixes_and_indentation(prefix: str) -> None:
    """Every line carries the prefix, blank ones too (an empty message after the prefix)."""
    name = "19-tf61946-linux-x86-2023-info-prefix-memdelta.txt"
    text = "\n".join(prefix.format(level="I") + line for line in _lines(name))
    assert parse(text) == parse(load(name))


@pytest.mark.parametrize(
    ("prefix", "level"),
    [("threadtime", "E"), ("threadtime", "F"), ("brief", "E"), ("studio", "E"), ("studio", "A"),
     ("studio-before-2022", "E")],
)
def test_logcat_error_level_marks_a_failure(prefix: str, level: str) -> None:
    text = load("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt").split("INFO: Running")[0]
    text += LOGCAT_PREFIXES[prefix].format(level=level) + "Failed to invoke the interpreter\n"
    with pytest.raises(OutputParseError, match="Failed to invoke the interpreter"):
        parse(text)


def test_studio_prefix_keeps_the_tools_own_severity() -> None:
    """Android Studio's I column under benchmark_model's own ERROR: an error; W over INFO: not a warning."""
    lines = _lines("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt")
    error = STUDIO.format(level="I") + "ERROR: Failed to apply XNNPACK delegate; falling back to the default kernels"
    lines[1:1] = [error, STUDIO.format(level="W") + "INFO: Loaded model ./mobilenet_v1_1.0_224_quant.tflite"]
    assert parse("\n".join(lines)).warnings == (error,)  # errors are quoted as printed


def test_all_same_short_form() -> None:
    text = (
        "Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.\n"
        "count=3 curr=120(all same)\n\n"
        "Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.\n"
        "count=50 curr=118 (all same) p5=118 median=118 p95=118\n"
    )
    result = parse(text)
    assert result.warmup == RunStats(3, 120, 120, 120, 120, 120, 0.0)
    assert result.runs == RunStats(50, 118, 118, 118, 118, 118, 0.0, 118, 118, 118)


def test_warnings_and_errors_of_a_successful_run_are_kept() -> None:
    lines = _lines("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt")
    lines.insert(1, "WARN: Unconsumed cmdline flags: --nosuchflag=1")
    lines.insert(2, "WARNING: Attempting to use a delegate that only supports static-sized tensors")
    lines.insert(3, "ERROR: Failed to apply XNNPACK delegate; falling back to the default kernels")
    result = parse("\n".join(lines))
    assert result.warnings == (
        "Unconsumed cmdline flags: --nosuchflag=1",
        "Attempting to use a delegate that only supports static-sized tensors",
        "ERROR: Failed to apply XNNPACK delegate; falling back to the default kernels",
    )
    assert result.runs is not None and result.runs.count == 50


@pytest.mark.parametrize(
    ("line", "applied"),
    [
        ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", True),
        ("INFO: Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate.", True),
        ("INFO: Though XNNPACK delegate is explicitly applied, the model graph will not be executed by the delegate.", False),
    ],
)
def test_xnnpack_lines(line: str, applied: bool) -> None:
    lines = _lines("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt")
    lines.insert(4, line)
    assert parse("\n".join(lines)).xnnpack_applied is applied


def test_not_executed_wins_over_created() -> None:
    lines = _lines("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt")
    lines[4:4] = [
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        "INFO: Though XNNPACK delegate is explicitly applied, the model graph will not be executed by the delegate.",
    ]
    assert parse("\n".join(lines)).xnnpack_applied is False


def test_nan_average_is_unknown_not_zero() -> None:
    text = load("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt").replace("Warmup (avg): 117225", "Warmup (avg): -nan")
    assert parse(text).warmup_avg_us is None


def test_runner_lines() -> None:
    text = load("04-ti-am62x-tflite2.20-percentiles-sci.txt")
    text += "INFO: Timer overhead per invoke (us): 0.061\nINFO: Runner: lab device_agent (LiteRT 2.3.0)\n"
    result = parse(text)
    assert result.timer_overhead_us == 0.061
    assert result.runner == "lab device_agent (LiteRT 2.3.0)"


# ---- output that must not parse ----


def test_empty_output() -> None:
    for text in ("", "\n\n  \n"):
        with pytest.raises(OutputParseError, match="empty"):
            parse(text)


def test_garbage_quotes_the_last_line() -> None:
    with pytest.raises(OutputParseError, match="no measured-run stats line") as info:
        parse("sh: benchmark_model: not found\nsomething else entirely\n")
    assert info.value.text == "something else entirely"


def test_run_cut_off_after_warmup() -> None:
    """Only the warm-up's count= line: never taken for the measured runs."""
    lines = _lines("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt")
    cut = "\n".join(lines[: lines.index("") + 2])  # through the second "Running benchmark" line
    with pytest.raises(OutputParseError, match="no measured-run stats line") as info:
        parse(cut)
    assert info.value.text.startswith("INFO: Running benchmark for at least 50 iterations")


def test_failure_after_the_measured_runs() -> None:
    """An invoke that failed during the runs: stats are printed, then the run is declared failed."""
    text = load("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt")
    text += "ERROR: Node number 3 (CONV_2D) failed to invoke.\nERROR: Benchmarking failed.\n"
    with pytest.raises(OutputParseError) as info:
        parse(text)
    assert info.value.text == "ERROR: Node number 3 (CONV_2D) failed to invoke."


def test_failure_without_error_lines_quotes_the_failure() -> None:
    with pytest.raises(OutputParseError) as info:
        parse("STARTING!\nGraph: [m.tflite]\nFailed to initialize the interpreter\nBenchmarking failed.\n")
    assert info.value.text == "Failed to initialize the interpreter"


@pytest.mark.parametrize(
    "bad",
    ["count=50 first=12x1183 curr=1 min=1 max=2 avg=1.5 std=0", "count=50", "count=0 curr=3", "count=50 curr=nan"],
)
def test_malformed_count_line_is_quoted(bad: str) -> None:
    text = load("19-tf61946-linux-x86-2023-info-prefix-memdelta.txt").replace(
        "count=50 first=121183 curr=115199 min=111222 max=121324 avg=116066 std=1906", bad
    )
    with pytest.raises(OutputParseError, match="malformed") as info:
        parse(text)
    assert info.value.text == f"INFO: {bad}"


def test_measured_count_zero() -> None:
    text = (
        "INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.\n"
        "INFO: count=1 curr=5\n"
        "INFO: Running benchmark for at least 0 iterations and at least 0 seconds but terminate if exceeding 150 seconds.\n"
        "INFO: count=0\n"
    )
    with pytest.raises(OutputParseError, match="measured no runs") as info:
        parse(text)
    assert info.value.text == "INFO: count=0"


# ---- several runs in one text: the first complete one, never a mix ----

RUN_19 = "19-tf61946-linux-x86-2023-info-prefix-memdelta.txt"


def _with_warnings(result: BenchmarkResult, *warnings: str) -> BenchmarkResult:
    return replace(result, warnings=(*warnings, *result.warnings))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("02-ti-am62x-tflite2.18-cpu-info-prefix.txt", "04-ti-am62x-tflite2.20-percentiles-sci.txt"),
        ("04-ti-am62x-tflite2.20-percentiles-sci.txt", "02-ti-am62x-tflite2.18-cpu-info-prefix.txt"),
        (RUN_19, "09-tf42507-android-2020-peak-memory-op-profiling-start.txt"),
        ("01-ti-am57x-tflite1.12-nostats.txt", "24-ti-am62x-tflite2.20-xnnpack-partial-percentiles.txt"),
        ("05-meta-tflite-riscv64-op-profiling.txt", "05-meta-tflite-riscv64-op-profiling.txt"),
        ("06-tf-readme-op-profiling-old-avg-wording.txt", "06-tf-readme-op-profiling-old-avg-wording.txt"),
    ],
)
def test_two_runs_give_the_first(first: str, second: str) -> None:
    """Two outputs pasted one after the other: all of the first, nothing of the second.

    The second run's warm-up once came out as the measured runs (its own Running line pair was
    counted as the first run's third and fourth).
    """
    result = parse(load(first) + load(second))
    assert result == _with_warnings(parse(load(first)), "2 runs in the output; the first is used")


def test_three_runs() -> None:
    result = parse(load(RUN_19) * 3)
    assert result == _with_warnings(parse(load(RUN_19)), "3 runs in the output; the first is used")


def test_runs_without_starting_lines_split_at_the_next_runs_own_lines() -> None:
    """Without STARTING!, the second run begins at its parameters: its "Num threads: [4]" is not the first's."""
    names = (RUN_19, "02-ti-am62x-tflite2.18-cpu-info-prefix.txt")
    result = parse("".join(load(name).replace("INFO: STARTING!\n", "") for name in names))
    assert result == _with_warnings(parse(load(RUN_19)), "2 runs in the output; the first is used")
    assert result.num_threads is None and result.use_xnnpack is None


def test_excerpts_split_at_a_third_running_line_or_count_line() -> None:
    run = [
        "Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.",
        "count=3 curr=120(all same)",
        "Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.",
        "count=50 curr=118 (all same)",
    ]
    other = [line.replace("count=50 curr=118", "count=50 curr=99").replace("=3 curr=120", "=3 curr=101") for line in run]
    assert parse("\n".join(run + other)).runs == RunStats(50, 118, 118, 118, 118, 118, 0.0)
    counts = [line for line in run + other if line.startswith("count=")]  # no Running lines: two count= per run
    result = parse("\n".join(counts))
    assert result.warmup == RunStats(3, 120, 120, 120, 120, 120, 0.0)
    assert result.runs == RunStats(50, 118, 118, 118, 118, 118, 0.0)
    assert result.warnings == ("2 runs in the output; the first is used",)


def test_runner_output_twice() -> None:
    assert parse(QEMU_PRUNED * 2) == _with_warnings(parse(QEMU_PRUNED), "2 runs in the output; the first is used")


def test_a_failed_run_before_a_complete_one_is_named() -> None:
    """A wrapper that retries without the delegate: the run that failed is left out, and said why."""
    result = parse(load("25-tf56166-android-2022-FAIL-xnnpack-delegate.txt") + load(RUN_19))
    assert result == _with_warnings(
        parse(load(RUN_19)),
        "2 runs in the output; run 2, the first complete one, is used "
        "(run 1: benchmark_model failed: 'Failed to apply XNNPACK delegate.')",
    )


def test_a_cut_off_run_before_a_complete_one_is_named() -> None:
    lines = _lines(RUN_19)
    cut = "\n".join(lines[: lines.index("") + 2]) + "\n"  # through the second "Running benchmark" line
    result = parse(cut + load("02-ti-am62x-tflite2.18-cpu-info-prefix.txt"))
    assert result.runs == stats(50, 977738, 964908, 911877, 1112273, 971535, 39112)
    assert result.warnings[0].startswith(
        "2 runs in the output; run 2, the first complete one, is used (run 1: benchmark_model output has no "
        "measured-run stats line; last line: 'INFO: Running benchmark for at least 50 iterations"
    )


def test_no_complete_run_raises_the_first_runs_error() -> None:
    text = load("25-tf56166-android-2022-FAIL-xnnpack-delegate.txt") + load(
        "14-tf50641-linux-2021-FAIL-unsupported-op-version.txt"
    )
    with pytest.raises(OutputParseError, match="benchmark_model failed") as info:
        parse(text)
    assert info.value.text == "Failed to apply XNNPACK delegate."


def test_stray_lines_before_starting_stay_with_the_run() -> None:
    """A shell's or the linker's lines before STARTING! are no run of their own."""
    text = "WARNING: linker: ./benchmark_model: unused DT entry: type 0x6ffffffe\n$ ./benchmark_model --graph=m.tflite\n"
    result = parse(text + load(RUN_19))
    assert result == _with_warnings(parse(load(RUN_19)), "linker: ./benchmark_model: unused DT entry: type 0x6ffffffe")


# ---- the measured runs' average must be the timings line's ----


@pytest.mark.parametrize(
    ("name", "printed", "changed"),
    [
        (RUN_19, "Inference (avg): 116066", "Inference (avg): 117225"),  # the warm-up's average
        ("04-ti-am62x-tflite2.20-percentiles-sci.txt", "Inference (avg): 1.24027e+06", "Inference (avg): 1.3576e+06"),
        ("04-ti-am62x-tflite2.20-percentiles-sci.txt", "Inference (avg): 1.24027e+06", "Inference (avg): 1.2404e+06"),
        ("01-ti-am57x-tflite1.12-nostats.txt", "no stats: 137722", "no stats: 146161"),
        ("09-tf42507-android-2020-peak-memory-op-profiling-start.txt", "avg=33209.4", "avg=34825.1"),
    ],
)
def test_average_contradicting_the_timings_line_is_quoted(name: str, printed: str, changed: str) -> None:
    text = load(name).replace(printed, changed)
    with pytest.raises(OutputParseError, match="measured-run average disagrees with its inference timings") as info:
        parse(text)
    lines = [line.strip() for line in text.splitlines()]
    runs_line = next(line for line in lines if "count=50 " in line)
    timings_line = next(line for line in lines if "nference timings in us: " in line)
    assert info.value.text == f"{runs_line}\n{timings_line}"


@pytest.mark.parametrize("printed", ["1240274", "1.24028e+06", "1240265.9"])
def test_average_agrees_within_printing_precision(printed: str) -> None:
    """Both lines print one double with 6 significant digits (or a version with more): no contradiction."""
    text = load("04-ti-am62x-tflite2.20-percentiles-sci.txt")
    text = text.replace("Inference (avg): 1.24027e+06", f"Inference (avg): {printed}")
    assert parse(text).inference_avg_us == float(printed)


def test_nan_inference_average_is_not_compared() -> None:
    text = load(RUN_19).replace("Inference (avg): 116066", "Inference (avg): -nan")
    result = parse(text)
    assert result.inference_avg_us is None and result.runs is not None and result.runs.avg_us == 116066


# ---- failure causes printed without "ERROR: " ----

# benchmark_model's own log lines had no severity before ~2023 (fixtures 14, 25), and TF 1.x's
# interpreter printed its errors without a prefix: the start of fixture 14, then such a binary's failure.
OLD_FAILURE_HEAD = load("14-tf50641-linux-2021-FAIL-unsupported-op-version.txt").split("ERROR: ")[0]
# The kernel's check and the node's failure on one line, as TF 1.x printed them (tensorflow/tensorflow#32110).
CONV_PREPARE = "tensorflow/lite/kernels/conv.cc:235 input->dims->size != 4 (1 != 4)Node number 0 (CONV_2D) failed to prepare."
MMAP = "Failed to mmap model model_float16.tflite"


@pytest.mark.parametrize(
    ("tail", "quoted"),
    [
        (["Node number 3 (CONV_2D) failed to prepare.", "", "Failed to allocate tensors!", "Benchmarking failed."],
         "Node number 3 (CONV_2D) failed to prepare."),
        ([CONV_PREPARE, "Failed to allocate tensors!", "Benchmarking failed."], CONV_PREPARE),
        (["Didn't find op for builtin opcode 'MUL' version '5'", "", "Registration failed.", "",
          "Failed to initialize the interpreter", "Benchmarking failed."],
         "Didn't find op for builtin opcode 'MUL' version '5'"),
        ([MMAP, "Benchmarking failed."], MMAP),
        (["Failed to initialize the interpreter"], "Failed to initialize the interpreter"),  # cut before its last line
        (["Benchmarking failed."], "Benchmarking failed."),  # no cause printed at all
    ],
)  # fmt: skip
def test_unprefixed_cause_is_quoted(tail: list[str], quoted: str) -> None:
    with pytest.raises(OutputParseError, match="benchmark_model failed") as info:
        parse(OLD_FAILURE_HEAD + "\n".join(tail) + "\n")
    assert info.value.text == quoted


def test_error_line_wins_over_an_earlier_unprefixed_cause() -> None:
    tail = ["Failed to allocate tensors!", "ERROR: Node number 3 (CONV_2D) failed to prepare.", "Benchmarking failed."]
    text = OLD_FAILURE_HEAD + "\n".join(tail) + "\n"
    with pytest.raises(OutputParseError) as info:
        parse(text)
    assert info.value.text == "ERROR: Node number 3 (CONV_2D) failed to prepare."


def test_cause_after_the_warmup_without_measured_runs_is_a_failure() -> None:
    """TF 1.x aborted on a failed invoke: warm-up stats, the cause, no measured runs, no "Benchmarking failed."."""
    lines = _lines(RUN_19)
    cut = "\n".join(lines[: lines.index("") + 2])  # through the second "Running benchmark" line
    with pytest.raises(OutputParseError, match="benchmark_model failed") as info:
        parse(cut + "\nNode number 3 (CONV_2D) failed to invoke.\nFailed to invoke!\n")
    assert info.value.text == "Node number 3 (CONV_2D) failed to invoke."


def test_cause_of_a_run_that_measured_is_a_warning() -> None:
    """As ERROR: lines are: the run measured and summarized, and did not say it failed."""
    result = parse(load(RUN_19) + "Node number 3 (CONV_2D) failed to invoke.\n")
    assert result.warnings == ("Node number 3 (CONV_2D) failed to invoke.",)
    assert result.runs is not None and result.runs.count == 50


def test_cause_words_under_a_severity_are_not_causes() -> None:
    lines = _lines(RUN_19)
    lines.insert(3, "INFO: Failed to find a cached kernel; compiling it")
    lines.insert(4, "WARN: Failed to apply a hint")
    assert parse("\n".join(lines)).warnings == ("Failed to apply a hint",)


# ---- fewer measured runs than asked for ----


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        (RUN_19, ", 150 seconds"),
        ("01-ti-am57x-tflite1.12-nostats.txt", ""),  # "Running benchmark for 50 iterations": no max time printed
        ("24-ti-am62x-tflite2.20-xnnpack-partial-percentiles.txt", ", 150 seconds"),
    ],
)
def test_fewer_runs_than_asked_is_a_warning(name: str, limit: str) -> None:
    text = load(name).replace("count=50 ", "count=37 ")
    result = parse(text)
    assert result.runs is not None and result.runs.count == 37
    why = f"benchmark_model stops at its max time{limit}"
    assert result.warnings == (f"measured 37 runs, fewer than the 50 asked for ({why})",)


def test_fewer_runs_than_the_parameter_without_running_lines() -> None:
    """An excerpt without its Running lines: the runs asked for come from "Min num runs: [50]"."""
    text = "\n".join(line for line in QEMU_PRUNED.splitlines() if "Running benchmark" not in line)
    result = parse(text.replace("count=836 ", "count=12 "))
    assert result.warnings == ("measured 12 runs, fewer than the 50 asked for (benchmark_model stops at its max time)",)


def test_fewer_runs_written_by_the_runner() -> None:
    runs = stats(3, 210.0, 205.0, 201.0, 212.0, 206.0, 4.5)
    text = "\n".join(
        "INFO: " + line
        for line in (format_running(1, 0, 0.5), format_stats(one_run(250.0)), format_running(50, 0, 0.5),
                     format_stats(runs), format_inference_timings(1000.0, 250.0, 250.0, 206.0))
    )  # fmt: skip
    result = parse(text)
    assert result.runs == runs
    why = "benchmark_model stops at its max time, 0.5 seconds"
    assert result.warnings == (f"measured 3 runs, fewer than the 50 asked for ({why})",)


def test_as_many_runs_as_asked_or_more_is_no_warning() -> None:
    """The real outputs measured the 50 runs asked for (test_real_outputs); the runner here 836."""
    assert parse(QEMU_PRUNED).warnings == ()


# ---- the writer ----


@pytest.mark.parametrize(
    ("value", "text"),
    [(1240270.4, "1.24027e+06"), (34825.1, "34825.1"), (137722.0, "137722"), (0.0612, "0.0612"), (0.0, "0")],
)
def test_format_number_is_cpp_ostream(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("run", "text"),
    [
        (stats(50, 977738, 964908, 911877, 1112273, 971535, 39112), "count=50 first=977738 curr=964908 min=911877 max=1.11227e+06 avg=971535 std=39112"),
        (stats(50, 1249964, 1240143, 1238588, 1252566, 1240270, 2565, 1238753, 1239807, 1247415),
         "count=50 first=1.24996e+06 curr=1.24014e+06 min=1.23859e+06 max=1.25257e+06 avg=1.24027e+06 std=2565 "
         "p5=1.23875e+06 median=1.23981e+06 p95=1.24742e+06"),
        (one_run(146161), "count=1 curr=146161"),
        (one_run(2.5, pct=True), "count=1 curr=2.5 p5=2.5 median=2.5 p95=2.5"),
        (RunStats(4, 7.0, 7.0, 7.0, 7.0, 7.0, 0.0), "count=4 curr=7(all same)"),
        (RunStats(0, math.nan), "count=0"),
    ],
)  # fmt: skip
def test_format_stats(run: RunStats, text: str) -> None:
    assert format_stats(run) == text


def test_written_lines_parse_back() -> None:
    warmup = one_run(33.0, pct=True)
    runs = stats(40, 16.9, 2.24, 2.16, 42.4, 2.26, 0.566, 2.21, 2.24, 2.28)
    text = "\n".join(
        "INFO: " + line
        for line in (
            format_running(1, 0.5, 150),
            format_stats(warmup),
            format_running(40, 1, 150),
            format_stats(runs),
            format_inference_timings(1218.2, 33.0, 33.0, 2.26),
            format_memory_delta(3.28, 15.3),
            format_periodic_peak(50.1),
            format_timer_overhead(0.06),
            format_runner("lab device_agent (LiteRT 2.3.0)"),
        )
    )
    assert parse(text) == BenchmarkResult(
        runs=runs, warmup=warmup, init_us=1218.2, first_inference_us=33.0, warmup_avg_us=33.0,
        inference_avg_us=2.26, memory_delta_init_mb=3.28, memory_delta_overall_mb=15.3,
        periodic_peak_memory_mb=50.1, timer_overhead_us=0.06, runner="lab device_agent (LiteRT 2.3.0)",
    )  # fmt: skip


# ---- instructions per inference (the runner under the lab's QEMU plugin) ----

# The runner on the guide's pruned model in the arm64 userland under qemu-aarch64 -cpu neoverse-n1.
QEMU_PRUNED = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Min num runs: [50]
INFO: Num threads: [-1]
INFO: Graph: [pruned.tflite]
INFO: #threads used for CPU inference: [-1]
INFO: Use xnnpack: [1]
INFO: Loaded model pruned.tflite
INFO: Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate.
INFO: The input model file size (MB): 0.010904
INFO: Initialized session in 745.439ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=318 first=16483.1 curr=5118.98 min=943.237 max=16483.1 avg=1551.97 std=1590.86 p5=948.284 median=991.614 p95=5120.64

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=836 first=3091.5 curr=974.613 min=930.598 max=5716.06 avg=1187.66 std=857.378 p5=937.223 median=969.912 p95=2679.2

INFO: Inference timings in us: Init: 745439, First inference: 16483.1, Warmup (avg): 1551.97, Inference (avg): 1187.66
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=48.7266 overall=56.4766
INFO: Instructions per inference (emulated, qemu-user neoverse-n1): first=77300 min=74609 median=74662 count=836 overhead=2184
INFO: Timer overhead per invoke (us): 0.691
INFO: Runner: lab device_agent (LiteRT 2.3.0)
"""
UNAVAILABLE_REASON = "the QEMU counting plugin did not load: Could not load plugin /x/libinsn_count.so: invalid ELF header (ok?)"


def test_instructions_line_of_a_real_qemu_run() -> None:
    result = parse(QEMU_PRUNED)
    assert result.instructions == InstructionCounts(
        first=77300, min=74609, median=74662, count=836, label="emulated, qemu-user neoverse-n1", overhead=2184
    )
    assert result.instructions_unavailable is None
    assert result.runs is not None and result.runs.count == 836  # the times are there as always
    assert result.warnings == ()


def test_instructions_unavailable_keeps_the_reason_and_the_times() -> None:
    line = format_instructions_unavailable("emulated, qemu-user neoverse-n1", UNAVAILABLE_REASON)
    text = QEMU_PRUNED.replace(QEMU_PRUNED.splitlines()[-3], "INFO: " + line)
    result = parse(text)
    assert result.instructions is None
    assert result.instructions_unavailable == UNAVAILABLE_REASON  # parentheses inside the reason survive
    assert result.inference_avg_us == 1187.66


def test_outputs_without_the_line_have_no_instructions() -> None:
    result = parse(load("04-ti-am62x-tflite2.20-percentiles-sci.txt"))
    assert result.instructions is None and result.instructions_unavailable is None


def test_instructions_line_without_overhead_and_with_prefixes() -> None:
    line = "I/tflite  ( 1234): Instructions per inference (emulated, qemu-user cortex-a72): first=9 min=7 median=8 count=3"
    result = parse(load("04-ti-am62x-tflite2.20-percentiles-sci.txt") + line + "\n")
    assert result.instructions == InstructionCounts(9, 7, 8, 3, "emulated, qemu-user cortex-a72", None)


@pytest.mark.parametrize(
    "bad",
    [
        "Instructions per inference (emulated, qemu-user neoverse-n1): first=1 min=2",
        "Instructions per inference (emulated, qemu-user neoverse-n1): first=1 min=2 median=3 count=x",
        "Instructions per inference (emulated, qemu-user neoverse-n1): first=-1 min=2 median=3 count=4",
        "Instructions per inference (emulated, qemu-user neoverse-n1) first=1 min=2 median=3 count=4",
        "Instructions per inference (): first=1 min=2 median=3 count=4",
        "Instructions per inference (emulated): first=1 min=5 median=3 count=4",
        "Instructions per inference (emulated): first=1 min=1 median=1 count=0",
        "Instructions per inference (emulated): unavailable",
    ],
)
def test_malformed_instructions_line_is_quoted(bad: str) -> None:
    with pytest.raises(OutputParseError, match="instruction") as info:
        parse(QEMU_PRUNED.replace(QEMU_PRUNED.splitlines()[-3], "INFO: " + bad))
    assert info.value.text == "INFO: " + bad


def test_instructions_line_parses_back() -> None:
    counts = InstructionCounts(first=124093, min=121286, median=121290, count=50, label="emulated, qemu-user neoverse-n1", overhead=2184)
    text = load("04-ti-am62x-tflite2.20-percentiles-sci.txt") + "INFO: " + format_instructions(counts) + "\n"
    assert parse(text).instructions == counts
    assert parse(text.replace(" overhead=2184", "")).instructions == InstructionCounts(124093, 121286, 121290, 50, counts.label)
