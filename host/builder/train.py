"""Training helpers shared by the dense and the pruning phase: tf.data input, compile, fit, evaluate.

The input pipeline is the guide's ``prepare_dataset``: normalise uint8 to [0, 1], cache, shuffle
the training split over its full length, batch, prefetch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from host.builder import _tf
from host.builder.datasets import Dataset
from host.builder.progress import BuildProgress, Stage

__all__ = ["Inputs", "make_inputs", "uses_logits", "compile_model", "fit", "evaluate_keras", "normalised"]


@dataclass
class Inputs:
    """Batched tf.data datasets and the number of steps in one training epoch."""

    train: Any
    val: Any
    test: Any
    steps_per_epoch: int


def normalised(x: np.ndarray) -> np.ndarray:
    """Images as float32 in [0, 1] (uint8 divided by 255, as ``tf.image.convert_image_dtype`` does)."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32, copy=False)


def make_inputs(data: Dataset, batch_size: int, seed: int) -> Inputs:
    tf = _tf.tensorflow()
    autotune = tf.data.AUTOTUNE

    def normalise(image: Any, label: Any) -> tuple[Any, Any]:
        return tf.image.convert_image_dtype(image, tf.float32), label

    def prepare(x: np.ndarray, y: np.ndarray, shuffle: bool) -> Any:
        ds = tf.data.Dataset.from_tensor_slices((x, y)).map(normalise, num_parallel_calls=autotune).cache()
        if shuffle:
            ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(autotune)

    return Inputs(
        train=prepare(data.x_train, data.y_train, True),
        val=prepare(data.x_val, data.y_val, False),
        test=prepare(data.x_test, data.y_test, False),
        steps_per_epoch=-(-len(data.y_train) // batch_size),
    )


def uses_logits(model: Any) -> bool:
    """False when the model ends in softmax (a user's model may); the recipe outputs logits."""
    keras = _tf.tf_keras()
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return False
    return getattr(getattr(last, "activation", None), "__name__", "") != "softmax"


def compile_model(model: Any, from_logits: bool) -> None:
    """The guide's compile: Adam, sparse categorical cross-entropy, accuracy."""
    keras = _tf.tf_keras()
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        optimizer="adam",
        metrics=["accuracy"],
    )


def _epoch_callback(stage: Stage, epochs: int, progress: BuildProgress) -> Any:
    keras = _tf.tf_keras()

    class EpochProgress(keras.callbacks.Callback):
        # Only the epoch hook: defining batch hooks would make Keras sync metrics every step.
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            metrics = {k: float(v) for k, v in (logs or {}).items()}
            progress.epoch_finished(stage, epoch + 1, epochs, metrics)

    return EpochProgress()


def fit(
    model: Any,
    inputs: Inputs,
    epochs: int,
    stage: Stage,
    progress: BuildProgress,
    callbacks: Sequence[Any] = (),
) -> dict[str, list[float]]:
    """Trains for ``epochs`` with validation, reporting each epoch; returns Keras' history."""
    if epochs == 0:
        return {}
    history = model.fit(
        inputs.train,
        epochs=epochs,
        validation_data=inputs.val,
        callbacks=[*callbacks, _epoch_callback(stage, epochs, progress)],
        verbose=0,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def evaluate_keras(model: Any, inputs: Inputs) -> float:
    """Test accuracy of a compiled Keras model."""
    return float(model.evaluate(inputs.test, verbose=0, return_dict=True)["accuracy"])
