"""Model files are checked before anything reaches a device: one line naming the file."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from host.bench import model_file
from host.errors import UsageError

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"


def test_a_real_model(tmp_path: Path) -> None:
    src = MODELS / "add.tflite"
    m = model_file(src, role="dense", build_id="b1")
    assert m.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert (m.name, m.size_bytes, m.role, m.build_id) == ("add.tflite", src.stat().st_size, "dense", "b1")
    assert m.path == str(src.resolve())


def test_a_name_with_spaces_and_quotes(tmp_path: Path) -> None:
    odd = tmp_path / "my \"dense\" model's v2.tflite"
    shutil.copyfile(MODELS / "add.tflite", odd)
    assert model_file(odd).name == "my \"dense\" model's v2.tflite"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"model file .*nope\.tflite does not exist") as info:
        model_file(tmp_path / "nope.tflite")
    assert info.value.exit_code == 2


def test_not_a_tflite_file(tmp_path: Path) -> None:
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"\x00" * 64)
    with pytest.raises(UsageError, match=r"fake\.tflite is not a TFLite model"):
        model_file(fake)
    short = tmp_path / "short.tflite"
    short.write_bytes(b"TFL3")
    with pytest.raises(UsageError, match="is not a TFLite model"):
        model_file(short)
    with pytest.raises(UsageError, match="is not a file"):
        model_file(tmp_path)
