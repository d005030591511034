"""TFLite conversion (TensorFlow) and accuracy of a .tflite file (LiteRT's interpreter only).

The dense model is converted plainly; the pruned one with ``Optimize.EXPERIMENTAL_SPARSITY``,
which stores its sparse 1x1 filters compressed behind DENSIFY ops, as the guide does.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from host.builder import _tf
from host.builder.train import normalised
from host.errors import BuildError

__all__ = ["to_tflite", "evaluate_tflite"]


def to_tflite(model: Any, *, sparse: bool) -> bytes:
    """Converts a tf_keras model; ``sparse`` adds ``Optimize.EXPERIMENTAL_SPARSITY``.

    Raises:
        BuildError: the converter failed (its first line of error is kept).
    """
    tf = _tf.tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if sparse:
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    try:
        # The converter prints its SavedModel export notes; stdout belongs to tables and --json.
        with contextlib.redirect_stdout(sys.stderr):
            return bytes(converter.convert())
    except Exception as exc:  # ConverterError, ValueError, tf.errors.*: anything the converter raises
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BuildError(f"TFLite conversion of {model.name!r} failed: {first}") from exc


def evaluate_tflite(path: Path, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
    """Top-1 accuracy of ``path`` on images ``x`` (uint8 or [0, 1] floats) and labels ``y``.

    Runs LiteRT's interpreter (with its default XNNPACK delegate) on fixed-size batches; the last
    batch is zero-padded and the padding ignored.
    """
    from ai_edge_litert.interpreter import Interpreter

    if len(y) == 0:
        raise BuildError("no test samples to evaluate on")
    interpreter = Interpreter(model_path=str(path))
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    batch = min(batch, len(y))
    interpreter.resize_tensor_input(inp["index"], [batch, *x.shape[1:]])
    interpreter.allocate_tensors()
    correct = 0
    for start in range(0, len(y), batch):
        chunk = normalised(x[start : start + batch])
        count = len(chunk)
        if count < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - count, *chunk.shape[1:]), np.float32)])
        interpreter.set_tensor(inp["index"], chunk)
        interpreter.invoke()
        predictions = interpreter.get_tensor(out["index"]).reshape(batch, -1).argmax(axis=1)[:count]
        correct += int((predictions == y[start : start + count]).sum())
    return correct / len(y)
