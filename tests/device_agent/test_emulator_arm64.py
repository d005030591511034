"""The emulated device with ``--arch arm64``: same adb path, benchmark_model under QEMU, counted instructions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from device_agent.output import parse
from device_agent.qemu import default_dest

FIXTURES = Path(__file__).parent.parent / "fixtures" / "models"


@pytest.mark.qemu
def test_arm64_device_reports_arm_and_counts_instructions(emulated_device_factory) -> None:
    device = emulated_device_factory(extra_args=("--arch", "arm64", "--userland", str(default_dest())))
    adb = device.device
    assert adb.getprop("ro.product.cpu.abi") == "arm64-v8a"
    assert adb.getprop("ro.lab.emulated") == "1"
    assert adb.getprop("ro.lab.emulation") == "qemu-user neoverse-n1"
    assert adb.getprop("ro.soc.model") == "neoverse-n1"
    assert "CPU implementer" in adb.shell("cat /proc/cpuinfo")

    adb.sync.push(str(FIXTURES / "conv.tflite"), "/data/local/tmp/m.tflite")
    result = adb.shell2("benchmark_model --graph=/data/local/tmp/m.tflite --num_runs=10 --warmup_runs=1 --min_secs=0")
    assert result.returncode == 0, result.output
    parsed = parse(result.output)
    assert parsed.runs is not None and parsed.runs.count >= 10
    assert parsed.instructions is not None and parsed.instructions.median > 1000
    assert "neoverse-n1" in parsed.instructions.label


def test_arm64_without_a_userland_names_the_prepare_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "device_agent", "emulator", "--port", "0", "--arch", "arm64",
         "--userland", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "prepare" in result.stderr and "arm64" in result.stderr
    assert "listening" not in result.stdout


def test_cpu_applies_to_arm64_only() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "device_agent", "emulator", "--port", "0", "--cpu", "cortex-a72"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "--arch arm64 only" in result.stderr
