"""Reading .tflite flatbuffers: ops, DENSIFY uses, 1x1 filter sparsity (no TensorFlow needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.builder import BuildResult
from host.builder.tflite_inspect import inspect_tflite, verify_densify
from host.errors import BuildError

pytestmark = pytest.mark.tf  # the files come from the session's build


def test_dense_file(built: BuildResult) -> None:
    info = inspect_tflite(built.dense)
    assert info.ops[:2] == ["PAD", "CONV_2D"] and info.ops[-1] == "FULLY_CONNECTED"
    assert info.densify == []
    assert [(c.shape, c.densified) for c in info.conv1x1] == [((16, 1, 1, 8), False), ((32, 1, 1, 16), False)]
    assert inspect_tflite(built.dense.read_bytes()).ops == info.ops
    with pytest.raises(BuildError, match=r"filters of .*pw1.* are stored dense \(no DENSIFY op feeds them\)"):
        verify_densify(info, "dense.tflite")


def test_pruned_file(built: BuildResult) -> None:
    info = inspect_tflite(built.pruned)
    assert info.op_counts["DENSIFY"] == 2 and info.op_counts["CONV_2D"] == 3
    assert [d.consumers for d in info.densify] == [("CONV_2D#4",), ("CONV_2D#8",)]
    assert all(c.densified and c.sparsity >= 0.74 for c in info.conv1x1)
    assert [c.zeros for c in info.conv1x1] == [row["zeros"] for row in built.manifest["sparsity"]["layers"]]
    verify_densify(info)


def test_not_a_tflite_file(tmp_path: Path) -> None:
    bogus = tmp_path / "x.tflite"
    bogus.write_bytes(b"\x00" * 32)
    with pytest.raises(BuildError, match="is not a TFLite model"):
        inspect_tflite(bogus)
