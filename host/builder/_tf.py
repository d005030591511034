"""The one place that imports TensorFlow, tf_keras and tfmot (the `build` extra).

Everything else in ``host.builder`` calls these functions inside the code that needs them, so that
``import host.builder`` works on a machine without TensorFlow.
"""

from __future__ import annotations

import os
from types import ModuleType

from host.errors import MissingExtraError

__all__ = ["tensorflow", "tf_keras", "tfmot"]


def _quiet() -> None:
    # TensorFlow's C++ INFO/WARNING lines (CPU features, cuInit) flood stderr under rich progress;
    # the user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tensorflow() -> ModuleType:
    """``import tensorflow``, or MissingExtraError naming the `build` extra."""
    _quiet()
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise MissingExtraError("tensorflow", "build") from exc
    return tf


def tf_keras() -> ModuleType:
    """The Keras 2 package (``tf_keras``): tfmot 0.8.1 prunes only its models, never Keras 3's."""
    tensorflow()
    try:
        import tf_keras as keras
    except ImportError as exc:
        raise MissingExtraError("tf-keras", "build") from exc
    return keras


def tfmot() -> ModuleType:
    """``tensorflow_model_optimization`` (it sets ``TF_USE_LEGACY_KERAS=1`` itself on import)."""
    tf_keras()
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as exc:
        raise MissingExtraError("tensorflow-model-optimization", "build") from exc
    return tfmot
