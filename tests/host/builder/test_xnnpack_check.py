"""The XNNPACK sparse-inference check on each rejected shape, and the keepdims fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from host.builder import ModelFileError, check_model, check_model_file, find_problems, fix_keepdims
from host.builder.recipes import xnnpack_cnn
from host.builder.xnnpack_check import prepare_model
from host.errors import ModelCheckError

from .conftest import guide_model

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def keras() -> Any:
    import tf_keras

    return tf_keras


def _rules(model: Any) -> list[str]:
    return [p.rule for p in find_problems(model)]


def _model(keras: Any, *, first: Any = None, between: Any = None, pooling: Any = None, pad: bool = True) -> Any:
    layers = keras.layers
    stack = [layers.InputLayer(input_shape=(32, 32, 3))]
    if pad:
        stack.append(layers.ZeroPadding2D(padding=1))
    stack += [first or layers.Conv2D(8, 3, strides=2, padding="valid"), layers.ReLU(), layers.Conv2D(16, 1)]
    if between is not None:
        stack.append(between)
    stack += [pooling or layers.GlobalAveragePooling2D(keepdims=True), layers.Flatten(), layers.Dense(10)]
    return keras.Sequential(stack)


def test_the_recipe_and_the_fixed_guide_model_pass() -> None:
    check_model(xnnpack_cnn())
    check_model(guide_model(keepdims=True))


def test_keepdims_false_is_caught_although_tfmot_accepts_it(keras: Any) -> None:
    import tensorflow_model_optimization as tfmot

    model = guide_model(keepdims=False)
    tfmot.sparsity.keras.prune_low_magnitude(
        model, pruning_policy=tfmot.sparsity.keras.PruneForLatencyOnXNNPack()
    )  # tfmot 0.8.1 no longer raises here
    with pytest.raises(ModelCheckError) as caught:
        check_model(guide_model(keepdims=False))
    assert len(caught.value.problems) == 1
    assert "keepdims=False" in caught.value.problems[0] and "--fix" in caught.value.problems[0]


@pytest.mark.parametrize(
    ("first", "pad", "found"),
    [
        (lambda L: L.Conv2D(8, 5, strides=2, padding="valid"), True, "kernel 5x5"),
        (lambda L: L.Conv2D(8, 3, strides=1, padding="valid"), True, "strides (1, 1)"),
        (lambda L: L.Conv2D(8, 3, strides=2, padding="same"), False, "padding='same', no ZeroPadding2D(padding=1) directly before it"),
        (lambda L: L.DepthwiseConv2D(3, strides=2), True, "it is a DepthwiseConv2D"),
    ],
    ids=["kernel", "strides", "padding", "depthwise"],
)
def test_a_wrong_first_layer_says_what_it_found(keras: Any, first: Any, pad: bool, found: str) -> None:
    problems = find_problems(_model(keras, first=first(keras.layers), pad=pad))
    assert [p.rule for p in problems] == ["first-layer"]
    assert problems[0].message.endswith(found)
    assert "3x3 kernel, strides=2 and padding='valid' on 3 input channels" in problems[0].message


def test_grey_images_break_the_three_channel_rule(keras: Any) -> None:
    layers = keras.layers
    model = keras.Sequential(
        [
            layers.InputLayer(input_shape=(32, 32, 1)),
            layers.ZeroPadding2D(1),
            layers.Conv2D(8, 3, strides=2),
            layers.Conv2D(16, 1),
            layers.GlobalAveragePooling2D(keepdims=True),
            layers.Flatten(),
            layers.Dense(10),
        ]
    )
    assert find_problems(model)[0].message.endswith("found 1 input channel")


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (lambda L: L.MaxPooling2D(pool_size=1), "is not supported by XNNPACK's sparse path"),
        (lambda L: L.Conv2D(16, 3, padding="same"), "is a 3x3 Conv2D with strides (1, 1): only 1x1 Conv2D"),
        (lambda L: L.DepthwiseConv2D(7, padding="same"), "is a 7x7 DepthwiseConv2D"),
        (lambda L: L.Activation("swish"), "uses activation 'swish'"),
        (lambda L: L.UpSampling2D(size=1), "interpolation='bilinear'"),
    ],
    ids=["max-pooling", "conv3x3", "depthwise7x7", "swish", "nearest-upsampling"],
)
def test_each_unsupported_layer_between_is_named(keras: Any, layer: Any, reason: str) -> None:
    problems = find_problems(_model(keras, between=layer(keras.layers)))
    assert [p.rule for p in problems] == ["unsupported-layer"]
    assert "between the first convolution and the pooling" in problems[0].message
    assert reason in problems[0].message


def test_supported_layers_between_pass(keras: Any) -> None:
    for layer in (keras.layers.Activation("relu6"), keras.layers.Dropout(0.1), keras.layers.LeakyReLU()):
        assert _rules(_model(keras, between=layer)) == []


def test_no_pooling_and_several_problems_at_once(keras: Any) -> None:
    layers = keras.layers
    model = keras.Sequential(
        [layers.InputLayer(input_shape=(32, 32, 3)), layers.Conv2D(8, 5), layers.Flatten(), layers.Dense(10)]
    )
    problems = find_problems(model)
    assert [p.rule for p in problems] == ["first-layer", "no-pooling"]
    with pytest.raises(ModelCheckError, match=r"\(2 problems\)") as caught:
        check_model(model)
    assert caught.value.problems == [p.message for p in problems]


def test_nothing_to_prune_without_a_1x1_conv(keras: Any) -> None:
    layers = keras.layers
    model = keras.Sequential(
        [
            layers.InputLayer(input_shape=(32, 32, 3)),
            layers.ZeroPadding2D(1),
            layers.Conv2D(8, 3, strides=2),
            layers.ReLU(),
            layers.GlobalAveragePooling2D(keepdims=True),
            layers.Flatten(),
            layers.Dense(10),
        ]
    )
    assert _rules(model) == ["nothing-to-prune"]


def test_subclassed_unbuilt_and_keras3_models_are_refused(keras: Any) -> None:
    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x: Any) -> Any:
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3), np.float32))
    [subclassed] = find_problems(net)
    assert subclassed.rule == "subclassed" and "keras.Sequential or with the functional API" in subclassed.message

    [unbuilt] = find_problems(keras.Sequential([keras.layers.Conv2D(8, 3)]))
    assert unbuilt.rule == "unbuilt" and "InputLayer(input_shape=(32, 32, 3))" in unbuilt.message

    import keras as keras3

    [k3] = find_problems(keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)]))
    assert k3.rule == "keras3" and "tf_keras" in k3.message and "import tf_keras as keras" in k3.message


@pytest.mark.parametrize("flatten", [True, False])
def test_fix_keepdims_keeps_weights_and_outputs(flatten: bool) -> None:
    model = guide_model(keepdims=False, flatten=flatten)
    fixed = fix_keepdims(model)
    assert find_problems(fixed) == []
    assert [type(l).__name__ for l in fixed.layers][-3:] == ["GlobalAveragePooling2D", "Flatten", "Dense"]
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(fixed(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_fix_keepdims_on_a_functional_model(keras: Any) -> None:
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = layers.ZeroPadding2D(1)(inputs)
    x = layers.Conv2D(8, 3, strides=2)(x)
    x = layers.Conv2D(16, 1)(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(10)(x))
    assert _rules(model) == ["keepdims"]
    fixed = fix_keepdims(model)
    assert _rules(fixed) == [] and fixed.output_shape == (None, 10)
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(fixed(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_fix_applies_only_when_keepdims_is_the_only_problem(keras: Any) -> None:
    fixed, fixes = prepare_model(guide_model(keepdims=False), fix=True)
    assert fixes == ["keepdims"] and _rules(fixed) == []
    broken = _model(keras, between=keras.layers.MaxPooling2D(1), pooling=keras.layers.GlobalAveragePooling2D())
    with pytest.raises(ModelCheckError) as caught:
        prepare_model(broken, fix=True)
    assert len(caught.value.problems) == 2
    with pytest.raises(ModelCheckError):
        prepare_model(guide_model(keepdims=False), fix=False)


def test_check_model_file(model_files: dict[str, Path]) -> None:
    report = check_model_file(model_files["keepdims_false"])
    assert not report.ok and [p.rule for p in report.problems] == ["keepdims"]
    fixed = check_model_file(model_files["keepdims_false_h5"], fix=True)
    assert fixed.ok and fixed.fixed == ["keepdims"] and [p.rule for p in fixed.problems_before_fix] == ["keepdims"]
    assert check_model_file(model_files["keepdims_true"]).ok


def test_bad_model_files(model_files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="model not found"):
        check_model_file(tmp_path / "missing.keras")
    with pytest.raises(ModelFileError, match=r"cannot load model .*corrupt.keras"):
        check_model_file(model_files["corrupt"])
    with pytest.raises(ModelFileError, match=r"not a Keras model file: pass a tf_keras model saved as .keras, .h5"):
        check_model_file(model_files["not_a_model"])
    with pytest.raises(ModelFileError, match="folder without saved_model.pb"):
        check_model_file(tmp_path)
    with pytest.raises(ModelCheckError, match=r"keras3.keras is a Keras 3\.\d+\.\d+ model; .*tf_keras"):
        check_model_file(model_files["keras3"])
