"""The LiteRT runner (``python -m device_agent bench``): real LiteRT, real models, real processes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from device_agent.bench import main
from device_agent.errors import OutputParseError
from device_agent.failure import BenchmarkFailed
from device_agent.flags import BenchFlags, parse_flags
from device_agent.output import BenchmarkResult, parse
from device_agent.timing import summarize

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
ADD, CONV, MIXED, FLEX = (MODELS / f"{name}.tflite" for name in ("add", "conv", "mixed_dtypes", "flex"))
QUICK = ["--min_secs=0", "--warmup_min_secs=0"]  # exactly --num_runs / --warmup_runs runs
XNNPACK_CREATED = "Created TensorFlow Lite XNNPACK delegate for CPU."


def bench(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(args), out=out), out.getvalue()


def bench_process(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device_agent", "bench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), **(env or {})},
    )


def ok(*args: str) -> BenchmarkResult:
    status, text = bench(*args)
    assert status == 0, text
    return parse(text)


def close(a: float | None, b: float | None) -> bool:
    """Equal to the 6 significant digits the output keeps."""
    return a is not None and b is not None and abs(a - b) <= 5e-6 * max(abs(a), abs(b)) + 5e-4


# ---- flags ----


def test_defaults_are_benchmark_models() -> None:
    flags = parse_flags([]).flags
    assert (flags.num_runs, flags.min_secs, flags.max_secs, flags.warmup_runs, flags.warmup_min_secs) == (50, 1.0, 150.0, 1, 0.5)
    assert (flags.num_threads, flags.run_delay, flags.use_xnnpack, flags.report_peak_memory_footprint) == (-1, -1.0, True, False)


def test_flag_forms() -> None:
    parsed = parse_flags(
        ["--graph=a=b.tflite", "--num_threads=4", "--min_secs=0.25", "--use_xnnpack=0",
         "--report_peak_memory_footprint=true", "--num_threads=8", "--use_xnnpack", "-v", "--nope=1", "word"]
    )  # fmt: skip
    assert parsed.flags == BenchFlags(
        graph="a=b.tflite", num_threads=4, min_secs=0.25, use_xnnpack=False, report_peak_memory_footprint=True
    )
    assert parsed.duplicates == ("num_threads",)  # the first value wins
    assert parsed.unconsumed == ("--use_xnnpack", "-v", "--nope=1", "word")  # bare --flag is not a value
    assert parsed.explicit == {"graph", "num_threads", "min_secs", "use_xnnpack", "report_peak_memory_footprint"}


@pytest.mark.parametrize("arg", ["--count_instructions=on", "--num_runs=ten", "--num_runs=1.5", "--min_secs=fast", "--min_secs=nan", "--min_secs=1_0", "--use_xnnpack=yes"])
def test_bad_flag_values(arg: str) -> None:
    with pytest.raises(BenchmarkFailed, match=f"Failed to parse flag '.*' against argv '{arg}'"):
        parse_flags([arg])
    status, text = bench(arg, f"--graph={ADD}")
    assert status == 1 and text.endswith("ERROR: Benchmarking failed.\n")


# ---- runs ----


def test_round_trip_through_the_parser(tmp_path: Path) -> None:
    samples_path = tmp_path / "samples.txt"
    result = ok(f"--graph={ADD}", "--num_runs=25", "--warmup_runs=3", *QUICK, f"--samples_file={samples_path}")
    samples_us = [float(line) for line in samples_path.read_text().splitlines()]
    assert len(samples_us) == 25
    expected = summarize([round(us * 1000) for us in samples_us])
    runs = result.runs
    assert runs is not None and runs.count == 25 and result.warmup is not None and result.warmup.count == 3
    for field in ("first_us", "curr_us", "min_us", "max_us", "avg_us", "std_us", "p5_us", "median_us", "p95_us"):
        assert close(getattr(runs, field), getattr(expected, field)), field
    assert close(result.inference_avg_us, expected.avg_us)
    assert result.first_inference_us == result.warmup.first_us
    assert result.warmup_avg_us == result.warmup.avg_us
    assert result.init_us is not None and result.init_us > 0
    assert result.model_size_mb == round(ADD.stat().st_size / 1e6, 6)
    assert result.use_xnnpack is True and result.xnnpack_applied is True
    assert result.num_threads == -1
    assert result.memory_delta_overall_mb is not None and result.memory_delta_init_mb is not None
    assert result.timer_overhead_us is not None and result.timer_overhead_us > 0
    assert result.runner is not None and result.runner.startswith("lab device_agent (LiteRT 2.3")
    assert result.warnings == ()


def test_output_is_benchmark_models_layout() -> None:
    status, text = bench(f"--graph={CONV}", "--num_runs=4", "--num_threads=2", *QUICK)
    lines = text.splitlines()
    assert status == 0
    assert lines[0] == "INFO: STARTING!"
    assert f"INFO: Graph: [{CONV}]" in lines and "INFO: Num threads: [2]" in lines and "INFO: Min num runs: [4]" in lines
    running = [i for i, line in enumerate(lines) if line.startswith("INFO: Running benchmark for at least")]
    assert len(running) == 2
    assert lines[running[0]] == (
        "INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 150 seconds."
    )
    for i in running:  # stats, then an empty line, as benchmark_model's std::endl leaves
        assert lines[i + 1].startswith("INFO: count=") and lines[i + 2] == ""
    assert " p5=" in lines[running[1] + 1]
    assert any(line.startswith("INFO: Inference timings in us: Init: ") for line in lines)
    assert any(line.startswith("INFO: Memory footprint delta from the start of the tool (MB): init=") for line in lines)
    assert parse(text).num_threads == 2


def test_one_measured_run_when_max_secs_is_zero() -> None:
    """The loop stops once max_secs is exceeded, after at least one run: benchmark_model's short form."""
    status, text = bench(f"--graph={ADD}", "--num_runs=50", "--max_secs=0", *QUICK)
    assert status == 0
    result = parse(text)
    assert result.runs is not None and result.runs.count == 1
    assert f"INFO: count=1 curr={text.split('INFO: count=1 curr=')[-1].split()[0]} p5=" in text


def test_no_warmup() -> None:
    result = ok(f"--graph={ADD}", "--num_runs=2", "--warmup_runs=0", *QUICK)
    assert result.warmup is None and result.warmup_avg_us is None  # "count=0", "Warmup (avg): nan"
    assert result.runs is not None and result.first_inference_us == result.runs.first_us


def test_inputs_of_every_dtype_and_partial_delegation() -> None:
    status, text = bench(f"--graph={MIXED}", "--num_runs=3", *QUICK)
    assert status == 0, text
    assert (
        "INFO: Explicitly applied XNNPACK delegate, and the model graph will be partially executed by the delegate "
        "w/ 1 delegate kernels." in text
    )
    assert parse(text).xnnpack_applied is True


def test_peak_memory_footprint() -> None:
    result = ok(f"--graph={ADD}", "--num_runs=2", *QUICK, "--report_peak_memory_footprint=1")
    assert result.periodic_peak_memory_mb is not None and result.memory_delta_overall_mb is not None
    assert result.periodic_peak_memory_mb >= result.memory_delta_overall_mb  # absolute peak vs growth


def test_unknown_flags_are_reported_and_the_run_goes_on() -> None:
    status, text = bench(f"--graph={ADD}", "--num_runs=2", *QUICK, "--use_gpu=true", "extra")
    assert status == 0
    assert "WARN: Unconsumed cmdline flags: --use_gpu=true extra" in text
    assert parse(text).warnings == ("Unconsumed cmdline flags: --use_gpu=true extra",)


def test_op_profiling_is_unavailable_in_one_line_and_the_run_goes_on() -> None:
    """LiteRT's Python API has no op profiler: one line says so; outside QEMU no kernels are counted either."""
    status, text = bench(f"--graph={ADD}", "--num_runs=2", *QUICK, "--enable_op_profiling=true")
    assert status == 0
    assert "INFO: Enable op profiling: [1]" in text
    assert sum(line.startswith("INFO: Op profiling unavailable: ") for line in text.splitlines()) == 1
    result = parse(text)
    assert result.runs is not None and result.runs.count == 2
    assert result.op_profiling_unavailable is not None and "no op profiler" in result.op_profiling_unavailable
    assert result.kernels is None
    assert result.kernels_unavailable is not None and "QEMU" in result.kernels_unavailable
    assert result.warnings == ()


def test_without_op_profiling_nothing_of_it_is_printed() -> None:
    status, text = bench(f"--graph={ADD}", "--num_runs=2", *QUICK)
    assert status == 0
    assert "Op profiling" not in text and "per kernel" not in text


@pytest.mark.parametrize(("flag", "created", "applied"), [("--use_xnnpack=true", True, True), ("--use_xnnpack=false", False, False)])
def test_use_xnnpack_really_switches_the_delegate(tmp_path: Path, flag: str, created: bool, applied: bool) -> None:
    """LiteRT itself logs the delegate's creation on stderr, in a fresh process: no log, no XNNPACK."""
    proc = bench_process(f"--graph={ADD}", "--num_runs=2", *QUICK, flag, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (XNNPACK_CREATED in proc.stderr) is created
    result = parse(proc.stdout)
    assert result.use_xnnpack is applied and result.xnnpack_applied is applied


def test_as_the_emulated_device_runs_it(tmp_path: Path) -> None:
    """``python -m device_agent bench`` with its cwd in a sandbox and paths relative to it."""
    (tmp_path / "m.tflite").write_bytes(CONV.read_bytes())
    proc = bench_process("--graph=m.tflite", "--num_runs=5", *QUICK, "--samples_file=s.txt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = parse(proc.stdout)
    assert result.runs is not None and result.runs.count == 5
    assert len((tmp_path / "s.txt").read_text().splitlines()) == 5


def test_help_lists_every_flag() -> None:
    status, text = bench("--help")
    assert status == 0
    for name in ("graph", "num_threads", "num_runs", "min_secs", "max_secs", "warmup_runs", "warmup_min_secs",
                 "run_delay", "use_xnnpack", "report_peak_memory_footprint", "samples_file", "count_instructions"):  # fmt: skip
        assert f"--{name}=" in text


def test_run_delay_is_accepted() -> None:
    result = ok(f"--graph={ADD}", "--num_runs=2", "--run_delay=0.001", *QUICK)
    assert result.runs is not None and result.runs.count == 2


# ---- failures: benchmark_model's ERROR lines, exit status 1, and a parse error quoting them ----


def _fails(text_status: tuple[int, str], first_error: str) -> None:
    status, text = text_status
    assert status == 1
    assert text.endswith("ERROR: Benchmarking failed.\n")
    with pytest.raises(OutputParseError) as info:
        parse(text)
    assert info.value.text.startswith(f"ERROR: {first_error}"), info.value.text


def test_missing_model(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tflite"
    _fails(bench(f"--graph={missing}"), f"Could not open '{missing}'.")
    _fails(bench(f"--graph={tmp_path}"), f"Could not open '{tmp_path}'.")  # a directory


def test_not_a_tflite_model(tmp_path: Path) -> None:
    text_file = tmp_path / "notes.tflite"
    text_file.write_text("this is not a model\n")
    _fails(bench(f"--graph={text_file}"), "Model provided has model identifier ' is ', should be 'TFL3'")
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    _fails(bench(f"--graph={empty}"), "Model provided has model identifier '', should be 'TFL3'")
    binary = tmp_path / "binary.tflite"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(64))
    _fails(bench(f"--graph={binary}"), "Model provided has model identifier '????', should be 'TFL3'")


def test_broken_flatbuffer(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(ADD.read_bytes()[:8] + bytes(range(256)) * 4)
    status, text = bench(f"--graph={broken}")
    _fails((status, text), "The model is not a valid Flatbuffer buffer")
    assert "ERROR: Failed to initialize the interpreter" in text


def test_model_the_runtime_rejects() -> None:
    status, text = bench(f"--graph={FLEX}", *QUICK)
    _fails((status, text), "Select TensorFlow op(s), included in the given model, is(are) not supported")
    assert "ERROR: Failed to allocate tensors!" in text


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((), "Please specify the name of your TF Lite input file with --graph"),
        ((f"--graph={ADD}", "--num_threads=0"), "Invalid --num_threads=0"),
        ((f"--graph={ADD}", "--num_runs=-1"), "Invalid --num_runs=-1: it must not be negative"),
        ((f"--graph={ADD}", "--num_runs=0", "--min_secs=0"), "--num_runs=0 with --min_secs=0 measures nothing"),
        ((f"--graph={ADD}", "--samples_file=/nonexistent-dir/s.txt"), "Failed to open the samples file"),
    ],
)
def test_bad_arguments(args: tuple[str, ...], error: str) -> None:
    _fails(bench(*args), error)


def test_stdlib_only_at_import_and_no_host() -> None:
    code = (
        "import sys, device_agent.bench, device_agent.output, device_agent.facts, device_agent.__main__, device_agent.qemu\n"
        "print(sorted(m for m in ('numpy', 'ai_edge_litert', 'host') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "[]"
    run = "import sys, io, device_agent.bench as b\nb.main(sys.argv[1:], io.StringIO())\nprint('host' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", run, f"--graph={ADD}", "--num_runs=1", *QUICK],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert proc.stdout.strip() == "False"


# ---- --count_instructions: guest instructions per inference under the lab's QEMU plugin ----
# The runs under QEMU itself are in test_qemu.py; here, the runner where no plugin answers.

INSTRUCTIONS = "INFO: Instructions per inference ("


def test_no_instruction_line_by_default() -> None:
    status, text = bench(f"--graph={ADD}", "--num_runs=2", *QUICK)
    assert status == 0 and INSTRUCTIONS not in text
    assert parse(text).instructions is None and parse(text).instructions_unavailable is None


def test_counting_without_qemu_gives_times_and_says_why_not() -> None:
    status, text = bench(f"--graph={ADD}", "--num_runs=3", *QUICK, "--count_instructions=true")
    assert status == 0 and "INFO: Count instructions: [1]" in text
    [line] = [line for line in text.splitlines() if line.startswith(INSTRUCTIONS)]
    assert line.startswith("INFO: Instructions per inference (not emulated): unavailable (no QEMU counting plugin answered")
    result = parse(text)
    assert result.instructions is None
    assert result.instructions_unavailable is not None and "lab's QEMU emulation" in result.instructions_unavailable
    assert result.runs is not None and result.runs.count == 3


def test_counting_is_the_default_under_the_command_builders_environment(tmp_path: Path) -> None:
    """The command builder's variables turn counting on; a plugin that did not load is reported, times still come."""
    env = {"LAB_EMULATION": "qemu-user neoverse-n1", "LAB_QEMU_COUNTING": "unavailable: plugin x.so (bad) did not load"}
    proc = bench_process(f"--graph={ADD}", "--num_runs=2", *QUICK, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout
    assert "INFO: Instructions per inference (emulated, qemu-user neoverse-n1): unavailable (plugin x.so (bad) did not load)\n" in proc.stdout
    result = parse(proc.stdout)
    assert result.instructions_unavailable == "plugin x.so (bad) did not load" and result.runs is not None

    env["LAB_QEMU_COUNTING"] = "plugin"  # said to be loaded, but nothing answers the markers
    proc = bench_process(f"--graph={ADD}", "--num_runs=2", *QUICK, cwd=tmp_path, env=env)
    assert parse(proc.stdout).instructions_unavailable is not None
    assert "no QEMU counting plugin answered" in parse(proc.stdout).instructions_unavailable

    proc = bench_process(f"--graph={ADD}", "--num_runs=2", *QUICK, "--count_instructions=0", cwd=tmp_path, env=env)
    assert proc.returncode == 0 and INSTRUCTIONS not in proc.stdout


# ---- given inputs and saved outputs (benchmark_model's --input_layer* and --output_filepath) ----


def test_value_files_and_output_file_give_the_models_outputs_for_those_inputs(tmp_path: Path) -> None:
    """A batch of 4 given inputs (the input resized by --input_layer_shape): the output file holds the
    model's outputs for exactly those inputs, as LiteRT without any delegate computes them."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    batch = np.random.default_rng(7).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    (tmp_path / "in.bin").write_bytes(batch.tobytes())
    reference = Interpreter(model_path=str(CONV),
                            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    inp = reference.get_input_details()[0]
    reference.resize_tensor_input(inp["index"], [4, 16, 16, 3])
    reference.allocate_tensors()
    reference.set_tensor(inp["index"], batch)
    reference.invoke()
    expected = reference.get_tensor(reference.get_output_details()[0]["index"])
    status, text = bench(f"--graph={CONV}", "--num_runs=2", "--warmup_runs=1", *QUICK,
                         "--input_layer=serving_default_x:0", "--input_layer_shape=4,16,16,3",
                         f"--input_layer_value_files=serving_default_x::0:{tmp_path / 'in.bin'}",
                         f"--output_filepath={tmp_path / 'out.bin'}")
    assert status == 0, text
    assert "INFO: Input shapes: [4,16,16,3]" in text and f"INFO: File path to export outputs layer to: [{tmp_path / 'out.bin'}]" in text
    got = np.fromfile(tmp_path / "out.bin", np.float32).reshape(expected.shape)
    assert got.shape == (4, 8)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (("--input_layer=a,b", "--input_layer_shape=1,8"), "The number of items in --input_layer_shape (1,8, with 1 items)"),
        (("--input_layer=a", "--input_layer_shape=1,x"), "Incorrect size string specified: 1,x"),
        (("--input_layer=a", "--input_layer_shape=-1,8"), "Any unknown sizes in the shapes (-1's) must be replaced"),
        (("--input_layer=a", "--input_layer_shape=1,8", "--input_layer_value_files=b:/tmp/v.bin"),
         "Cannot find the corresponding input_layer name(b) in --input_layer as a"),
        (("--input_layer=a", "--input_layer_shape=1,8", "--input_layer_value_files=nodelimiter"),
         "Wrong input value file item specified: nodelimiter"),
        (("--input_layer=a,b", "--input_layer_shape=1,8,1:1,8"), "Input tensor #"),
        (("--input_layer=a", "--input_layer_shape=1,8"), "Inputs mismatch: Model inputs #:1 expected: 2"),
    ],
)
def test_input_layer_mistakes_fail_with_benchmark_models_messages(extra: tuple[str, ...], error: str) -> None:
    _fails(bench(f"--graph={ADD}", "--num_runs=1", *QUICK, *extra), error)


def test_a_value_file_of_the_wrong_size_fails(tmp_path: Path) -> None:
    (tmp_path / "short.bin").write_bytes(b"\0" * 12)
    args = (f"--graph={CONV}", "--num_runs=1", *QUICK, "--input_layer=x", "--input_layer_shape=1,16,16,3")
    _fails(bench(*args, f"--input_layer_value_files=x:{tmp_path / 'short.bin'}"),
           f"The size of {tmp_path / 'short.bin'} is 12 bytes. It should be 3072 bytes.")
    _fails(bench(*args, f"--input_layer_value_files=x:{tmp_path / 'missing.bin'}"),
           f"Failed to read the input_layer_value_file:{tmp_path / 'missing.bin'}")
