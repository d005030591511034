"""The arm64 emulated core: the runner inside a real arm64 userland under real QEMU, with real counts.

Tests marked ``qemu`` use one prepared userland for the session, in ``$LAB_QEMU_CACHE`` (default
~/.cache/lab/qemu-arm64, so CI re-uses it; ``.ci/qemu.sh`` prepares it, else the first test does,
in about 20 s, as any user: Debian's packages from the mirror, LiteRT's wheel from PyPI, the plugin
built with the machine's C compiler). Preparing from nothing as a user without root is
tests/test_run_rootless.py; the steps against a mirror of our own are test_qemu_debian.py.
Tests marked ``tf`` too build the guide's CNN dense and pruned with TensorFlow + tfmot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from device_agent.output import BenchmarkResult, InstructionCounts, parse
from device_agent.qemu import (
    CPUS,
    MissingToolError,
    MissingUserlandError,
    QemuError,
    Userland,
    default_dest,
    find_userland,
    main,
    prepare,
    require_userland,
)
from device_agent.qemu.cpus import cpu_model, cpuinfo_text
from device_agent.qemu.userland import which

# tfmot's own import-time warning, not the lab's.
pytestmark = pytest.mark.filterwarnings("ignore:distutils Version classes are deprecated:DeprecationWarning")

RUN = ["--num_runs=10", "--min_secs=0", "--warmup_runs=1", "--warmup_min_secs=0"]
SPARSITIES = {"dense": 0.0, "pruned": 0.75, "pruned60": 0.6}


# ---- fixtures ----


@pytest.fixture(scope="session")
def userland() -> Userland:
    lines: list[str] = []
    found = prepare(default_dest(), progress=lines.append)
    sys.stderr.write("".join(f"qemu: {line}\n" for line in lines))
    return found


def _build_tflite(sparsity: float) -> bytes:
    """The guide's CNN, one short epoch on random data; pruned with PruneForLatencyOnXNNPack when sparsity > 0."""
    import numpy as np

    from host.builder import _tf
    from host.builder.convert import to_tflite
    from host.builder.recipes import xnnpack_cnn

    keras, tfmot = _tf.tf_keras(), _tf.tfmot()
    keras.utils.set_random_seed(0)
    model = xnnpack_cnn()
    callbacks = []
    if sparsity:
        sparse = tfmot.sparsity.keras
        model = sparse.prune_low_magnitude(
            model,
            pruning_schedule=sparse.ConstantSparsity(sparsity, begin_step=0, frequency=1),
            pruning_policy=sparse.PruneForLatencyOnXNNPack(),
        )
        callbacks = [sparse.UpdatePruningStep()]
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (64, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 64)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=callbacks)
    if sparsity:
        model = tfmot.sparsity.keras.strip_pruning(model)
    return to_tflite(model, sparse=bool(sparsity))


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("qemu-models")
    paths = {}
    for name, sparsity in SPARSITIES.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(_build_tflite(sparsity))
    return paths


def run_bench(userland: Userland, model: Path, *, count: bool = True, cpu: str = "neoverse-n1") -> tuple[BenchmarkResult, str]:
    argv, env = userland.bench_command([f"--graph={model}", *RUN], cpu=cpu, count_instructions=count)
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return parse(done.stdout), done.stdout


def counts(result: BenchmarkResult) -> InstructionCounts:
    assert result.instructions is not None, result.instructions_unavailable
    return result.instructions


@pytest.fixture(scope="session")
def measured(userland: Userland, models: dict[str, Path]) -> dict[str, InstructionCounts]:
    return {name: counts(run_bench(userland, path)[0]) for name, path in models.items()}


# ---- the guide's models on the emulated neoverse-n1 ----


@pytest.mark.qemu
@pytest.mark.tf
def test_pruned_model_takes_the_sparse_path(measured: dict[str, InstructionCounts]) -> None:
    dense, pruned = measured["dense"], measured["pruned"]
    assert pruned.median < 0.7 * dense.median, (dense, pruned)
    for found in (dense, pruned):
        assert found.label == "emulated, qemu-user neoverse-n1"
        assert found.count == 10 and found.min <= found.median <= found.first
        assert found.overhead is not None and 0 < found.overhead < 10_000  # the markers, subtracted


@pytest.mark.qemu
@pytest.mark.tf
def test_a_repeat_counts_the_same(userland: Userland, models: dict[str, Path], measured: dict[str, InstructionCounts]) -> None:
    again = counts(run_bench(userland, models["pruned"])[0])
    first = measured["pruned"]
    assert abs(again.median - first.median) <= 0.001 * first.median, (first, again)
    assert again.overhead == first.overhead


@pytest.mark.qemu
@pytest.mark.tf
def test_sixty_percent_zeros_run_dense(measured: dict[str, InstructionCounts]) -> None:
    """XNNPACK takes its sparse path only above 2/3 zeros: 60% costs what the dense model costs."""
    dense, pruned60 = measured["dense"], measured["pruned60"]
    assert abs(pruned60.median - dense.median) <= 0.01 * dense.median, (dense, pruned60)


@pytest.mark.qemu
@pytest.mark.tf
def test_a_plugin_that_does_not_load_still_gives_times(userland: Userland, models: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "libbroken.so"
    broken.write_text("not a shared library\n")
    result, text = run_bench(replace(userland, plugin=broken), models["pruned"])
    assert result.runs is not None and result.runs.count == 10 and result.inference_avg_us is not None
    assert result.instructions is None
    reason = result.instructions_unavailable
    assert reason is not None and reason.startswith("the QEMU counting plugin did not load: ") and str(broken) in reason
    assert "INFO: Instructions per inference (emulated, qemu-user neoverse-n1): unavailable (" in text

    missing = tmp_path / "absent.so"
    result, _ = run_bench(replace(userland, plugin=missing), models["dense"])
    assert result.runs is not None and result.instructions_unavailable is not None
    assert f"{missing}: No such file or directory" in result.instructions_unavailable


@pytest.mark.qemu
@pytest.mark.tf
def test_without_counting_no_plugin_and_no_line(userland: Userland, models: dict[str, Path]) -> None:
    argv, env = userland.bench_command([f"--graph={models['dense']}"], count_instructions=False)
    assert "-plugin" not in argv and "LAB_QEMU_COUNTING" not in env
    result, text = run_bench(userland, models["dense"], count=False)
    assert result.runs is not None and result.xnnpack_applied is True
    assert "Instructions per inference" not in text


# ---- the userland itself ----


@pytest.mark.qemu
def test_each_core_sees_its_own_cpuinfo(userland: Userland) -> None:
    script = "import platform; print(platform.machine()); print(open('/proc/cpuinfo').read())"
    for cpu in ("neoverse-n1", "cortex-a72"):
        argv, env = userland.python_command(["-c", script], cpu=cpu)
        done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=True)
        machine, _, cpuinfo = done.stdout.partition("\n")
        assert machine == "aarch64"
        assert f"CPU part\t: {cpu_model(cpu).part:#05x}" in cpuinfo


@pytest.mark.qemu
def test_prepare_again_is_cached(userland: Userland) -> None:
    lines: list[str] = []
    again = prepare(userland.root, progress=lines.append)
    assert again == userland
    assert lines == [f"arm64 userland ready (cached) in {userland.root}"]
    info = userland.info
    assert info["machine"] == "aarch64" and info["python"] == "3.11" and info["litert"].startswith("2.3")
    assert info["prepare_seconds"] > 0 and info["size_mb"] > 100


@pytest.mark.qemu
def test_command_line_info(userland: Userland, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(userland.root)]) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == "arm64"


# ---- bad input (no userland needed) ----


def test_missing_userland_names_the_prepare_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert find_userland(tmp_path) is None
    with pytest.raises(MissingUserlandError) as info:
        require_userland(tmp_path)
    message = str(info.value)
    assert f"no prepared arm64 userland in {tmp_path}" in message
    assert "`lab emulator prepare --arch arm64`" in message and f"`python -m device_agent qemu prepare {tmp_path}`" in message

    assert main(["bench", "--dir", str(tmp_path), "--", "--graph=m.tflite"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no prepared arm64 userland") and err.count("\n") == 1


def test_incomplete_or_foreign_userland_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "userland.json").write_text(json.dumps({"format": 99}))
    assert find_userland(tmp_path) is None
    with pytest.raises(MissingUserlandError, match="another format"):
        require_userland(tmp_path)
    (tmp_path / "userland.json").write_text("{half")
    with pytest.raises(MissingUserlandError, match="unreadable"):
        require_userland(tmp_path)
    (tmp_path / "userland.json").write_text(json.dumps({"format": 1, "python": "3.11"}))
    with pytest.raises(MissingUserlandError, match="python3.11 is missing"):
        require_userland(tmp_path)


def test_unknown_cpu_lists_the_known_ones(tmp_path: Path) -> None:
    userland = Userland(root=tmp_path, python="3.11", plugin=tmp_path / "p.so")
    with pytest.raises(QemuError, match="unknown emulated CPU 'max': use one of neoverse-n1, cortex-a76"):
        userland.bench_command(["--graph=m.tflite"], cpu="max")


def test_missing_tool_names_its_debian_package() -> None:
    with pytest.raises(MissingToolError) as info:
        which("qemu-nonexistent-arch", "running the userland")
    assert str(info.value) == (
        "running the userland needs qemu-nonexistent-arch (Debian package qemu-nonexistent-arch): "
        "install with `apt-get install -y qemu-nonexistent-arch`"
    )
    error = MissingToolError({"qemu-aarch64": "qemu-user", "qemu-aarch64-static": "qemu-user-static"}, "preparing")
    assert str(error).endswith("`apt-get install -y qemu-user qemu-user-static`")


def test_cpuinfo_describes_the_core() -> None:
    text = cpuinfo_text(CPUS["neoverse-n1"], 2)
    assert text.count("processor\t: ") == 2 and "processor\t: 1\n" in text
    assert "CPU implementer\t: 0x41\n" in text and "CPU part\t: 0xd0c\n" in text and "CPU variant\t: 0x4\n" in text
    assert " asimddp " in text
    assert "CPU part\t: 0xd03\n" in cpuinfo_text(CPUS["cortex-a53"], 0)  # at least one processor


def test_exports_and_a_light_guest_import() -> None:
    """Every exported name resolves; the runner's import of the counter leaves the rest of the package unloaded."""
    import device_agent.qemu as package

    assert all(getattr(package, name) is not None for name in package.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018
    code = (
        "import sys, device_agent.bench, device_agent.qemu.counter\n"
        "print(sorted(m for m in sys.modules if m.startswith('device_agent.qemu.') or m in ('argparse', 'subprocess')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "['device_agent.qemu.counter']"


@pytest.mark.parametrize("argv", [[], ["nope"], ["bench", "--cpu", "max", "--", "--graph=m.tflite"]])
def test_command_line_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: python -m device_agent qemu" in capsys.readouterr().err
