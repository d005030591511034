"""TFLite conversion (TensorFlow) and accuracy of a .tflite file (LiteRT's interpreter only).

The dense model is converted plainly; the pruned one with ``Optimize.EXPERIMENTAL_SPARSITY``,
which stores its sparse 1x1 filters compressed behind DENSIFY ops, as the guide does; the other
variants add a precision (``host.builder.variants``).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from host.builder import _tf
from host.builder.train import normalised
from host.builder.variants import MIN_CALIBRATION_SAMPLES, Precision
from host.errors import BuildError, DatasetError

__all__ = ["to_tflite", "evaluate_tflite"]

_CALIBRATION_MAX = 200  # images the int8 calibration runs through the float model


def to_tflite(model: Any, *, sparse: bool, precision: Precision = "fp32", calibration: np.ndarray | None = None) -> bytes:
    """Converts a tf_keras model; ``sparse`` adds ``Optimize.EXPERIMENTAL_SPARSITY``, ``precision``
    the quantization of ``host.builder.variants`` (``int8`` calibrates on ``calibration``: images
    as the training takes them, at least ``MIN_CALIBRATION_SAMPLES``).

    Raises:
        BuildError: the converter failed (its first line of error is kept).
        DatasetError: int8 with fewer calibration images than the minimum.
    """
    tf = _tf.tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparse else []
    if precision != "fp32":
        optimizations.append(tf.lite.Optimize.DEFAULT)
    converter.optimizations = optimizations
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        images = _calibration_images(calibration)
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        # The converter prints its SavedModel export notes; stdout belongs to tables and --json.
        with contextlib.redirect_stdout(sys.stderr):
            return bytes(converter.convert())
    except Exception as exc:  # ConverterError, ValueError, tf.errors.*: anything the converter raises
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BuildError(f"TFLite conversion of {model.name!r} failed: {first}") from exc


def _calibration_images(calibration: np.ndarray | None) -> np.ndarray:
    count = 0 if calibration is None else len(calibration)
    if calibration is None or count < MIN_CALIBRATION_SAMPLES:
        raise DatasetError(
            f"int8 calibration needs at least {MIN_CALIBRATION_SAMPLES} training images, the dataset has {count}: "
            "use a larger dataset (or --subset), or leave the int8 variants out"
        )
    return normalised(calibration[:_CALIBRATION_MAX])


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
