"""Where the model comes from: a built-in recipe, or a user's tf_keras model file.

``xnnpack-cnn`` is the guide's CNN with the guide's fix already in: GlobalAveragePooling2D keeps
its dims, so XNNPACK's sparse path covers everything from the first convolution to the pooling.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from host.builder import _tf
from host.errors import BuildError, ModelCheckError
from host.hashing import update_with_file

__all__ = ["ModelFileError", "xnnpack_cnn", "build_recipe", "load_model_file", "model_identity", "keras3_message"]

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


class ModelFileError(BuildError):
    """The ``--model`` file is missing, of the wrong kind, or cannot be loaded."""

    exit_code = 2


def keras3_message(what: str, version: str) -> str:
    return (
        f"{what} is a Keras {version} model; tfmot 0.8.1 prunes only tf_keras (Keras 2) models: build it with "
        "`import tf_keras as keras` (pip install tf-keras) instead of `import keras`, then save it again"
    )


def xnnpack_cnn(num_classes: int = 10, input_shape: tuple[int, int, int] = (32, 32, 3)) -> Any:
    """The guide's baseline CNN (a ``tf_keras.Sequential``), with ``keepdims=True``."""
    keras = _tf.tf_keras()
    layers = keras.layers
    return keras.Sequential(
        [
            layers.InputLayer(input_shape=input_shape, name="input"),
            layers.ZeroPadding2D(padding=1, name="stem_pad"),
            layers.Conv2D(filters=8, kernel_size=(3, 3), strides=(2, 2), padding="valid", name="stem_conv"),
            layers.BatchNormalization(name="stem_bn"),
            layers.ReLU(name="stem_relu"),
            layers.DepthwiseConv2D(kernel_size=(3, 3), padding="same", name="dw1"),
            layers.BatchNormalization(name="dw1_bn"),
            layers.ReLU(name="dw1_relu"),
            layers.Conv2D(filters=16, kernel_size=(1, 1), name="pw1"),
            layers.BatchNormalization(name="pw1_bn"),
            layers.ReLU(name="pw1_relu"),
            layers.ZeroPadding2D(padding=1, name="dw2_pad"),
            layers.DepthwiseConv2D(kernel_size=(3, 3), strides=(2, 2), padding="valid", name="dw2"),
            layers.BatchNormalization(name="dw2_bn"),
            layers.ReLU(name="dw2_relu"),
            layers.Conv2D(filters=32, kernel_size=(1, 1), name="pw2"),
            layers.BatchNormalization(name="pw2_bn"),
            layers.ReLU(name="pw2_relu"),
            layers.GlobalAveragePooling2D(keepdims=True, name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(num_classes, name="logits"),
        ],
        name="xnnpack_cnn",
    )


def build_recipe(name: str, num_classes: int, input_shape: tuple[int, int, int]) -> Any:
    if name == "xnnpack-cnn":
        return xnnpack_cnn(num_classes, input_shape)
    raise BuildError(f"unknown recipe {name!r}")


def _check_path(path: Path) -> None:
    if not path.exists():
        raise ModelFileError(f"model not found: {path}")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ModelFileError(
                f"{path} is a folder without saved_model.pb: pass a .keras or .h5 file or a SavedModel"
            )
        if not (path / "keras_metadata.pb").is_file():
            raise ModelFileError(
                f"{path} is a SavedModel without Keras metadata (Keras 3's model.export() writes these): "
                "save the tf_keras model itself with model.save('model.keras')"
            )
    elif path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{path} is not a Keras model file: pass a tf_keras model saved as .keras, .h5 or a SavedModel folder"
        )


def _saved_keras_version(path: Path) -> str | None:
    """The ``keras_version`` a .keras or .h5 file records (None when unreadable or absent)."""
    suffix = path.suffix.lower()
    if suffix == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                return str(json.loads(archive.read("metadata.json"))["keras_version"])
        except (zipfile.BadZipFile, KeyError, ValueError, OSError):
            return None
    if suffix in (".h5", ".hdf5"):
        import h5py  # comes with tf_keras (the `build` extra)

        try:
            with h5py.File(path, "r") as f:
                version = f.attrs.get("keras_version")
        except OSError:
            return None
        if isinstance(version, bytes):
            version = version.decode()
        return str(version) if version is not None else None
    return None


def load_model_file(path: Path) -> Any:
    """Loads a user's tf_keras model (without its optimizer: the build compiles its own).

    Raises:
        ModelFileError: the file is missing, of another kind, or cannot be loaded.
        ModelCheckError: it is a Keras 3 model (tfmot prunes only tf_keras models).
    """
    _check_path(path)
    keras = _tf.tf_keras()
    version = None if path.is_dir() else _saved_keras_version(path)
    if version is not None and version.startswith("3."):
        message = keras3_message(f"{path.name}", version)
        raise ModelCheckError(message, problems=[message])
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # load_model raises OSError, ValueError, TypeError... for bad files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(f"cannot load model {path}: {first}") from exc
    if not isinstance(model, keras.Model):
        raise ModelFileError(f"{path} holds a {type(model).__name__}, not a tf_keras Model")
    return model


def model_identity(path: Path) -> dict[str, Any]:
    """The model's content hash (a SavedModel folder: every file's name and content).

    Raises:
        ModelFileError: the path does not exist or is not a model file or folder.
    """
    _check_path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(f"{file.relative_to(path)}\0".encode())
        update_with_file(digest, file)
    return {"name": path.name, "sha256": digest.hexdigest()}
