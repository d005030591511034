"""``--xnnpack_force_fp16``: benchmark_model's flag in the LiteRT runner (real LiteRT, real models).

By default XNNPACK computes float models in float32 (float16 weights are unpacked); the flag makes
it compute float operators in float16, through LiteRT's CompiledModel API — the only Python API
that passes XNNPACK's flags. On the arm64 emulated device the kernels that ran show it.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from device_agent.bench import main
from device_agent.flags import parse_flags, param_lines, usage
from device_agent.output import parse
from device_agent.qemu import Userland, default_dest, prepare
from host.bench.evidence import kernel_families

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
CONV, MIXED = MODELS / "conv.tflite", MODELS / "mixed_dtypes.tflite"
QUICK = ["--num_runs=2", "--warmup_runs=1", "--min_secs=0", "--warmup_min_secs=0"]
FORCE = "--xnnpack_force_fp16=true"


def bench(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(args), out=out), out.getvalue()


def test_the_flag_is_parsed_listed_and_logged_as_benchmark_model_does() -> None:
    parsed = parse_flags([f"--graph={CONV}", FORCE])
    assert parsed.flags.xnnpack_force_fp16 is True and not parsed.unconsumed
    lines = param_lines(parsed)
    assert lines[lines.index("Use xnnpack: [1]") + 1] == "xnnpack_force_fp16: [1]"
    assert "xnnpack_force_fp16: [" not in "\n".join(param_lines(parse_flags([f"--graph={CONV}"])))
    assert "\t--xnnpack_force_fp16=false\tbool\t" in usage()


def test_forcing_fp16_without_xnnpack_is_refused_in_one_line() -> None:
    status, text = bench(f"--graph={CONV}", FORCE, "--use_xnnpack=false", *QUICK)
    assert status == 1
    errors = [line for line in text.splitlines() if line.startswith("ERROR: ")]
    assert errors == [
        "ERROR: --xnnpack_force_fp16=true needs --use_xnnpack=true: without XNNPACK nothing runs in fp16",
        "ERROR: Benchmarking failed.",
    ]


def test_a_model_litert_cannot_compile_fails_with_its_cause_first() -> None:
    status, text = bench(f"--graph={MODELS / 'flex.tflite'}", FORCE, *QUICK)
    assert status == 1
    errors = [line for line in text.splitlines() if line.startswith("ERROR: ")]
    assert errors[0].startswith("ERROR: Select TensorFlow op(s), included in the given model, is(are) not supported")
    assert errors[-2:] == ["ERROR: Failed to initialize the interpreter", "ERROR: Benchmarking failed."]
    assert "WARNING" not in text and "Traceback" not in text


def _outputs(tmp_path: Path, name: str, *args: str) -> tuple[str, bytes]:
    out = tmp_path / f"{name}.bin"
    status, text = bench(*args, *QUICK, f"--output_filepath={out}")
    assert status == 0, text
    return text, out.read_bytes()


def test_forced_fp16_runs_the_given_inputs_in_float16(tmp_path: Path) -> None:
    """A batch of 4 given inputs (resized): fp16 outputs within fp16's error of the fp32 ones, not equal."""
    import numpy as np

    batch = np.random.default_rng(7).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    (tmp_path / "in.bin").write_bytes(batch.tobytes())
    given = [f"--graph={CONV}", "--input_layer=serving_default_x:0", "--input_layer_shape=4,16,16,3",
             f"--input_layer_value_files=serving_default_x::0:{tmp_path / 'in.bin'}"]  # fmt: skip
    text32, raw32 = _outputs(tmp_path, "fp32", *given)
    text16, raw16 = _outputs(tmp_path, "fp16", *given, FORCE)
    fp32, fp16 = (np.frombuffer(raw, np.float32).reshape(4, 8) for raw in (raw32, raw16))
    np.testing.assert_allclose(fp16, fp32, rtol=1e-2, atol=1e-2)
    assert not np.array_equal(fp16, fp32)  # float16 arithmetic rounds: the flag was honoured
    result = parse(text16)
    assert result.xnnpack_applied is True and result.runs is not None and result.runs.count == 2
    assert result.runner is not None and "CompiledModel API, XNNPACK flags 0x7" in result.runner
    assert "CompiledModel" not in (parse(text32).runner or "")


def test_forced_fp16_keeps_the_graphs_input_and_output_order(tmp_path: Path) -> None:
    """Three inputs of three dtypes and two outputs: the same bytes in, the same order out, as without the flag."""
    import numpy as np

    values = {"a": np.array([[1, -2, 3, -4]], np.int8), "b": np.array([[0.5, 0.25, -1.0, 2.0]], np.float32),
              "c": np.array([[7, -9]], np.int32)}  # fmt: skip
    for name, value in values.items():
        (tmp_path / f"{name}.bin").write_bytes(value.tobytes())
    order = ("c", "b", "a")  # the graph's input order (the signature's is a, b, c)
    names = [f"serving_default_{n}:0" for n in order]
    files = ",".join(f"serving_default_{n}::0:{tmp_path / n}.bin" for n in order)
    given = [f"--graph={MIXED}", f"--input_layer={','.join(names)}", "--input_layer_shape=1,2:1,4:1,4",
             f"--input_layer_value_files={files}"]  # fmt: skip
    _, default = _outputs(tmp_path, "default", *given)
    _, forced = _outputs(tmp_path, "forced", *given, FORCE)
    assert forced == default  # every value is exact in float16
    expected = np.array([[14, -18]], np.int32).tobytes() + np.array([[1.5, -1.75, 2.0, -2.0]], np.float32).tobytes()
    assert default == expected


# ---- the arm64 emulated device: which kernels ran ----


@pytest.fixture(scope="module")
def userland() -> Userland:
    return prepare(default_dest(), progress=lambda line: None)


def _kernels(userland: Userland, *args: str) -> dict[str, float]:
    flags = [f"--graph={CONV}", *QUICK, "--num_threads=1", "--enable_op_profiling=true", *args]
    argv, env = userland.bench_command(flags)
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = parse(done.stdout)
    assert result.kernels is not None, done.stdout
    return {row.function: row.instructions for row in result.kernels.rows}


@pytest.mark.qemu
def test_on_an_fp16_core_the_flag_runs_f16_kernels(userland: Userland) -> None:
    """neoverse-n1 has fp16 arithmetic: forced, the convolution runs XNNPACK's f16 kernels; by default f32."""
    default = kernel_families(_kernels(userland))
    forced = kernel_families(_kernels(userland, FORCE))
    assert default.precision == "f32" and "f16" not in default.precisions, default.summary()
    assert forced.precision == "f16" and "f32" not in forced.precisions, forced.summary()
    assert any(family.startswith("f16 ") for family in forced.families), forced.summary()


# ---- through adb: the x86 emulated device's benchmark_model is this runner, confined ----


def test_the_emulated_devices_benchmark_model_takes_the_flag(emulated_device) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    device = emulated_device.device
    device.sync.push(CONV, "/data/local/tmp/conv.tflite")
    outputs = {}
    for name, extra in (("fp32", []), ("fp16", [FORCE])):
        result = device.shell2(["benchmark_model", "--graph=/data/local/tmp/conv.tflite", *QUICK, *extra,
                                f"--output_filepath=/data/local/tmp/{name}.bin"], v2=True)  # fmt: skip
        assert result.returncode == 0, result.output
        parsed = parse(result.output)
        assert parsed.runs is not None and parsed.runs.count == 2 and parsed.warnings == (), result.output
        outputs[name] = np.frombuffer(device.sync.read_bytes(f"/data/local/tmp/{name}.bin"), np.float32)
    assert "xnnpack_force_fp16: [1]" in result.output and "CompiledModel API" in (parsed.runner or "")
    np.testing.assert_allclose(outputs["fp16"], outputs["fp32"], rtol=1e-2, atol=1e-2)
    assert not np.array_equal(outputs["fp16"], outputs["fp32"])
    refused = device.shell2(["benchmark_model", "--graph=/data/local/tmp/conv.tflite", FORCE, "--use_xnnpack=false"],
                            v2=True)  # fmt: skip
    assert refused.returncode == 1 and "ERROR: --xnnpack_force_fp16=true needs --use_xnnpack=true" in refused.output
