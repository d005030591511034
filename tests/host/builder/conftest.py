"""Shared fixtures: one real build on small synthetic data, and saved model files to check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from host.builder import BuildResult, BuildSpec, build

SMALL = {"dataset": "synthetic:600", "epochs": 1, "prune_epochs": 1, "fine_tune_epochs": 2, "batch_size": 64}
"""A spec small enough for tests: 540 training images, 9 steps per epoch, ~5 s of training."""


@pytest.fixture(scope="session")
def build_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LAB_HOME of the session's build (tests that need a fresh cache make their own)."""
    return tmp_path_factory.mktemp("lab_home")


@pytest.fixture(scope="session")
def small_spec() -> BuildSpec:
    return BuildSpec(**SMALL)


@pytest.fixture(scope="session")
def built(build_home: Path, small_spec: BuildSpec) -> BuildResult:
    """The real pipeline, run once for the session."""
    return build(small_spec, build_home)


def guide_model(keepdims: bool, flatten: bool = True) -> Any:
    """The guide's dense model as first written (keepdims=False unless asked)."""
    import tf_keras as keras

    layers = keras.layers
    stack = [
        layers.InputLayer(input_shape=(32, 32, 3)),
        layers.ZeroPadding2D(padding=1),
        layers.Conv2D(filters=8, kernel_size=(3, 3), strides=(2, 2), padding="valid"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.DepthwiseConv2D(kernel_size=(3, 3), padding="same"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Conv2D(filters=16, kernel_size=(1, 1)),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.ZeroPadding2D(padding=1),
        layers.DepthwiseConv2D(kernel_size=(3, 3), strides=(2, 2), padding="valid"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Conv2D(filters=32, kernel_size=(1, 1)),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.GlobalAveragePooling2D(keepdims=keepdims),
    ]
    if flatten:
        stack.append(layers.Flatten())
    stack.append(layers.Dense(10))
    return keras.Sequential(stack)


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved models: the guide's keepdims=False model (.keras, .h5), a Keras 3 one, a corrupt file."""
    folder = tmp_path_factory.mktemp("models")
    files = {
        "keepdims_false": folder / "guide_keepdims_false.keras",
        "keepdims_false_h5": folder / "guide_keepdims_false.h5",
        "keepdims_true": folder / "guide_keepdims_true.keras",
        "keras3": folder / "keras3.keras",
        "corrupt": folder / "corrupt.keras",
        "not_a_model": folder / "model.tflite",
    }
    guide_model(keepdims=False).save(files["keepdims_false"])
    guide_model(keepdims=False, flatten=False).save(files["keepdims_false_h5"])
    guide_model(keepdims=True).save(files["keepdims_true"])
    import keras as keras3

    keras3.Sequential([keras3.Input((32, 32, 3)), keras3.layers.GlobalAveragePooling2D(), keras3.layers.Dense(10)]).save(
        files["keras3"]
    )
    files["corrupt"].write_bytes(b"PK\x03\x04 this is not a zip archive")
    files["not_a_model"].write_bytes(b"\x00" * 64)
    return files
