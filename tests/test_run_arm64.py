"""``lab run --emulator arm64`` end to end: the sparse path shows as fewer instructions per inference,
a repeat counts the same, and ``lab check --metric instructions`` fails on a model that does more work."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

LabProcess = Callable[..., subprocess.CompletedProcess[str]]  # the lab_process fixture (tests/conftest.py)

pytestmark = [pytest.mark.tf, pytest.mark.qemu, pytest.mark.slow]

FIXTURES = Path(__file__).parent / "fixtures" / "models"
QUICK = ["--quick", "--dataset", "synthetic", "--trials", "2", "--runs", "20", "--warmup", "2"]



def _instructions(document: dict) -> dict[str, float]:
    return {
        row["role"]: row["instructions"]
        for device in document["report"]["devices"]
        for row in device["rows"]
    }


def test_pruned_needs_fewer_instructions_and_a_repeat_agrees(lab_process: LabProcess, adb_server: object, tmp_path: Path) -> None:
    first = lab_process(tmp_path, "run", *QUICK, "--emulator", "arm64", "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    counts = _instructions(json.loads(first.stdout))
    assert counts["pruned"] < 0.7 * counts["dense"], counts

    table = lab_process(tmp_path, "report")
    assert "sparse path engaged: yes" in table.stdout, table.stdout
    assert "arm64-v8a" in table.stdout and "qemu-user neoverse-n1" in table.stdout

    again = lab_process(tmp_path, "run", *QUICK, "--emulator", "arm64", "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    repeat = _instructions(json.loads(again.stdout))
    for role in ("dense", "pruned"):
        assert repeat[role] == pytest.approx(counts[role], rel=0.001)

    same = lab_process(tmp_path, "check", "--metric", "instructions")
    assert same.returncode == 0, same.stdout + same.stderr


def test_check_on_instructions_fails_on_a_model_doing_more_work(lab_process: LabProcess, adb_server: object, tmp_path: Path) -> None:
    serial = lab_process(tmp_path, "emulator", "start", "--arch", "arm64", "--json")
    assert serial.returncode == 0, serial.stderr
    device = json.loads(serial.stdout)["serial"]
    try:
        model = tmp_path / "model.tflite"
        shutil.copyfile(FIXTURES / "add.tflite", model)
        base = lab_process(tmp_path, "bench", str(model), "--device", device, "--trials", "2", "--runs", "20")
        assert base.returncode == 0, base.stderr[-2000:]
        shutil.copyfile(FIXTURES / "conv.tflite", model)  # same name, more work per inference
        slower = lab_process(tmp_path, "bench", str(model), "--device", device, "--trials", "2", "--runs", "20")
        assert slower.returncode == 0, slower.stderr[-2000:]
    finally:
        lab_process(tmp_path, "emulator", "stop", device)
    gate = lab_process(tmp_path, "check", "--metric", "instructions")
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "model.tflite" in gate.stdout


def test_the_whole_matrix_on_the_emulated_arm_core(lab_process: LabProcess, adb_server: object, tmp_path: Path) -> None:
    """The issue's "done when": every variant measured in instructions, its outputs checked on the
    device, and the kernels that ran named per variant."""
    result = lab_process(tmp_path, "run", "--quick", "--dataset", "synthetic", "--variants", "all", "--emulator", "arm64",
                         "--trials", "1", "--runs", "3", "--warmup", "1", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    (section,) = document["report"]["devices"]
    rows = {row["role"]: row for row in section["rows"]}
    assert list(rows) == ["dense", "pruned", "dense-fp16", "pruned-fp16", "dense-int8", "pruned-int8", "dense-dynamic"]
    assert all(row["instructions"] for row in rows.values()), rows
    assert {role: row["outputs"]["status"] for role, row in rows.items()} == dict.fromkeys(rows, "ok")
    assert rows["pruned"]["instructions"] < 0.7 * rows["dense"]["instructions"]
    assert rows["pruned-fp16"]["instructions"] < 0.7 * rows["dense-fp16"]["instructions"]
    kernels = {role: row["kernels"] for role, row in rows.items()}
    assert [role for role, k in kernels.items() if k["sparse"]] == ["pruned", "pruned-fp16"]  # int8 runs dense kernels
    assert kernels["dense-int8"]["precision"] == "int8" and kernels["pruned-int8"]["precision"] == "int8"
    assert kernels["dense-fp16"]["precision"] == "f32"  # XNNPACK unpacks fp16 weights unless forced
    assert all(k["delegated"] and k["counted"] for k in kernels.values()), kernels
    table = lab_process(tmp_path, "report", "--format", "md")
    assert "| outputs on device | kernels that ran |" in table.stdout and "WRONG" not in table.stdout
    assert "| pruned | " in table.stdout and "sparse f32 " in table.stdout
