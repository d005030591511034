"""The XNNPACK sparse-inference check, run before any training, and the keepdims fix.

XNNPACK runs a model's 1x1 convolutions with sparse kernels only inside a subgraph that starts
with a 3x3 stride-2 Conv2D on 3 input channels (VALID padding after ZeroPadding2D(1)), holds only
layers its sparse path supports, and ends with GlobalAveragePooling2D keeping its dims
(https://github.com/tensorflow/tensorflow/blob/master/tensorflow/lite/delegates/xnnpack/README.md#sparse-inference).
tfmot's ``PruneForLatencyOnXNNPack`` checks the same shape but stops at the first problem and,
in tfmot 0.8.1, no longer rejects ``keepdims=False``; this check reports every rule broken, each
with what to change. The supported-layer list mirrors ``PruneForLatencyOnXNNPack._check_layer_support``.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from host.builder import _tf
from host.builder.recipes import keras3_message, load_model_file
from host.errors import ModelCheckError

__all__ = ["Rule", "ModelProblem", "CheckReport", "find_problems", "check_model", "fix_keepdims", "check_model_file"]

Rule = Literal[
    "not-a-model",
    "keras3",
    "subclassed",
    "unbuilt",
    "first-layer",
    "no-pooling",
    "keepdims",
    "unsupported-layer",
    "nothing-to-prune",
]

_SUPPORTED = (
    "Conv2D 1x1 (stride 1), DepthwiseConv2D 3x3/5x5, BatchNormalization, ReLU, LeakyReLU, ELU, "
    "Activation(relu|relu6|leaky_relu|elu|sigmoid), Add, Multiply, ZeroPadding2D, Dropout, UpSampling2D(bilinear)"
)
_ACTIVATIONS = ("relu", "relu6", "leaky_relu", "elu", "sigmoid")
_TF_OP_FUNCTIONS = ("identity", "add", "subtract", "multiply")


@dataclass(frozen=True)
class ModelProblem:
    """One broken rule: what is wrong and what to do, in ``message``."""

    rule: Rule
    message: str
    layer: str | None = None

    @property
    def fixable(self) -> bool:
        """``--fix`` repairs it (rebuild with keepdims=True, same weights)."""
        return self.rule == "keepdims"


@dataclass
class CheckReport:
    """The result of checking one model; ``fixed`` lists what ``--fix`` changed."""

    model: str
    problems: list[ModelProblem]
    fixed: list[str] = field(default_factory=list)
    problems_before_fix: list[ModelProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _raise_for(problems: list[ModelProblem], model_name: str) -> None:
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise ModelCheckError(
            f"model {model_name!r} cannot use XNNPACK's sparse inference ({count}): {problems[0].message}",
            problems=[p.message for p in problems],
        )


def check_model(model: Any) -> None:
    """Raises ModelCheckError, with one message per broken rule in ``.problems``, unless ``model`` passes."""
    _raise_for(find_problems(model), getattr(model, "name", type(model).__name__))


def find_problems(model: Any) -> list[ModelProblem]:
    """Every rule ``model`` breaks (empty when XNNPACK's sparse path can run its 1x1 convolutions)."""
    module = type(model).__module__.split(".")[0]
    if module == "keras":
        version = getattr(sys.modules.get("keras"), "__version__", "3")
        return [ModelProblem("keras3", keras3_message(f"model {getattr(model, 'name', '?')!r}", version))]
    keras = _tf.tf_keras()
    if not isinstance(model, keras.Model):
        return [ModelProblem("not-a-model", f"expected a tf_keras Model, got {type(model).__name__}")]
    if not getattr(model, "_is_graph_network", False) and not isinstance(model, keras.Sequential):
        return [
            ModelProblem(
                "subclassed",
                f"model {model.name!r} is a subclassed Model ({type(model).__name__}); its layer graph cannot be "
                "checked or pruned: rewrite it as keras.Sequential or with the functional API",
            )
        ]
    if not model.built or not getattr(model, "_is_graph_network", False):
        return [
            ModelProblem(
                "unbuilt",
                f"model {model.name!r} is not built (no input shape): start it with "
                "keras.layers.InputLayer(input_shape=(32, 32, 3)) or call model.build((None, 32, 32, 3))",
            )
        ]
    return _GraphCheck(model, keras).problems()


class _GraphCheck:
    """Walks a built graph network the way tfmot's policy does (through inbound/outbound nodes)."""

    def __init__(self, model: Any, keras: Any) -> None:
        self.model = model
        self.layers = keras.layers

    def producers(self, layer: Any) -> list[Any]:
        found: list[Any] = []
        for node in layer._inbound_nodes:
            inbound = node.inbound_layers
            for producer in inbound if isinstance(inbound, list) else [inbound]:
                if producer not in found:
                    found.append(producer)
        return found

    def consumers(self, layer: Any) -> list[Any]:
        found: list[Any] = []
        for node in layer._outbound_nodes:
            consumer = node.outbound_layer
            if consumer not in found:
                found.append(consumer)
        return found

    def walk(
        self, sources: Iterable[Any], stop: Callable[[Any], bool], step: Callable[[Any], list[Any]]
    ) -> tuple[list[Any], bool]:
        """Layers where ``stop`` holds, from ``sources`` along ``step``; False if a path ran out first."""
        to_visit = list(sources)
        seen = set(map(id, to_visit))
        found: list[Any] = []
        complete = True
        while to_visit:
            layer = to_visit.pop(0)
            if stop(layer):
                found.append(layer)
                continue
            following = step(layer)
            if not following:
                complete = False
            for nxt in following:
                if id(nxt) not in seen:
                    seen.add(id(nxt))
                    to_visit.append(nxt)
        return found, complete

    def is_compute(self, layer: Any) -> bool:
        """A layer that does the work: the first such layer must be the sparse path's first conv."""
        L = self.layers
        return hasattr(layer, "kernel") or hasattr(layer, "depthwise_kernel") or isinstance(
            layer,
            (L.Flatten, L.Reshape, L.GlobalAveragePooling2D, L.GlobalMaxPooling2D, L.MaxPooling2D, L.AveragePooling2D),
        )

    def problems(self) -> list[ModelProblem]:
        inputs = [t._keras_history.layer for t in self.model.inputs]
        outputs = [t._keras_history.layer for t in self.model.outputs]
        problems: list[ModelProblem] = []

        starts, _ = self.walk(inputs, self.is_compute, self.consumers)
        if not starts:
            problems.append(
                ModelProblem(
                    "first-layer",
                    "the model has no convolution: XNNPACK's sparse path starts with ZeroPadding2D(padding=1) then "
                    "Conv2D(filters, 3, strides=2, padding='valid') on 3 input channels",
                )
            )
        for start in starts:
            problem = self.first_layer_problem(start)
            if problem:
                problems.append(problem)

        ends, complete = self.walk(outputs, lambda l: isinstance(l, self.layers.GlobalAveragePooling2D), self.producers)
        if not ends or not complete:
            problems.append(
                ModelProblem(
                    "no-pooling",
                    "no GlobalAveragePooling2D between the convolutions and the output: XNNPACK's sparse path must "
                    "end with GlobalAveragePooling2D(keepdims=True), e.g. ... -> GlobalAveragePooling2D(keepdims=True) "
                    "-> Flatten() -> Dense(classes)",
                )
            )
        for end in ends:
            if not end.keepdims:
                problems.append(
                    ModelProblem(
                        "keepdims",
                        f"GlobalAveragePooling2D {end.name!r} has keepdims=False; XNNPACK's sparse path needs "
                        "keepdims=True (then Flatten before the classifier): set keepdims=True, or run with --fix to "
                        "rebuild the model that way with the same weights",
                        layer=end.name,
                    )
                )

        if starts and ends and complete:
            problems.extend(self.between_problems(starts, ends))
        return problems

    def first_layer_problem(self, layer: Any) -> ModelProblem | None:
        L = self.layers
        kind = type(layer).__name__
        if not isinstance(layer, L.Conv2D) or isinstance(layer, L.Conv2DTranspose):
            found = [f"it is a {kind}"]
        else:
            found = []
            if tuple(layer.kernel_size) != (3, 3):
                found.append(f"kernel {layer.kernel_size[0]}x{layer.kernel_size[1]}")
            if tuple(layer.strides) != (2, 2):
                found.append(f"strides {tuple(layer.strides)}")
            if layer.padding.lower() != "valid":
                found.append(f"padding={layer.padding!r}")
            if tuple(layer.dilation_rate) != (1, 1):
                found.append(f"dilation {tuple(layer.dilation_rate)}")
            channels = int(layer.kernel.shape[2])
            if channels != 3:
                found.append(f"{channels} input channel{'s' if channels != 1 else ''}")
            producers = self.producers(layer)
            if not (
                len(producers) == 1
                and isinstance(producers[0], L.ZeroPadding2D)
                and tuple(map(tuple, producers[0].padding)) == ((1, 1), (1, 1))
            ):
                found.append("no ZeroPadding2D(padding=1) directly before it")
        if not found:
            return None
        return ModelProblem(
            "first-layer",
            f"first layer {layer.name!r} must be a Conv2D with a 3x3 kernel, strides=2 and padding='valid' on 3 input "
            f"channels, directly after ZeroPadding2D(padding=1); found {', '.join(found)}",
            layer=layer.name,
        )

    def between_problems(self, starts: list[Any], ends: list[Any]) -> list[ModelProblem]:
        problems: list[ModelProblem] = []
        end_ids = {id(e) for e in ends}
        visited: list[Any] = []

        def visit(layer: Any) -> bool:
            if id(layer) in end_ids:
                return True
            visited.append(layer)
            return False

        self.walk([c for s in starts for c in self.consumers(s)], visit, self.consumers)
        prunable = 0
        for layer in visited:
            reason = self.unsupported(layer)
            if reason:
                problems.append(
                    ModelProblem(
                        "unsupported-layer",
                        f"layer {layer.name!r} ({type(layer).__name__}) between the first convolution and the pooling "
                        f"{reason}",
                        layer=layer.name,
                    )
                )
            elif isinstance(layer, self.layers.Conv2D):
                prunable += 1
        if not problems and prunable == 0:
            problems.append(
                ModelProblem(
                    "nothing-to-prune",
                    "no 1x1 Conv2D between the first convolution and the pooling: XNNPACK's sparse kernels speed up "
                    "only 1x1 convolutions, so pruning would change nothing",
                )
            )
        return problems

    def unsupported(self, layer: Any) -> str | None:
        """Why XNNPACK's sparse path cannot run ``layer``, or None when it can."""
        L = self.layers
        if isinstance(layer, (L.Add, L.Multiply, L.ZeroPadding2D, L.ReLU, L.LeakyReLU, L.ELU, L.Dropout)):
            return None
        if isinstance(layer, L.DepthwiseConv2D):
            return self.depthwise_reason(layer)
        if isinstance(layer, L.Conv2D) and not isinstance(layer, L.Conv2DTranspose):
            if (
                tuple(layer.kernel_size) == (1, 1)
                and tuple(layer.strides) == (1, 1)
                and tuple(layer.dilation_rate) == (1, 1)
                and layer.groups == 1
            ):
                return None
            return (
                f"is a {layer.kernel_size[0]}x{layer.kernel_size[1]} Conv2D with strides {tuple(layer.strides)}: only "
                "1x1 Conv2D with strides 1, no dilation and groups=1 is supported there"
            )
        if isinstance(layer, L.BatchNormalization):
            return None if list(layer.axis) == [3] else f"normalises axis {list(layer.axis)}: use axis=-1 (channels)"
        if isinstance(layer, L.UpSampling2D):
            return None if layer.interpolation == "bilinear" else "must use interpolation='bilinear'"
        if isinstance(layer, L.Activation):
            name = getattr(layer.activation, "__name__", "")
            return None if name in _ACTIVATIONS else f"uses activation {name!r}: use one of {', '.join(_ACTIVATIONS)}"
        if type(layer).__name__ == "TFOpLambda":
            name = getattr(layer.function, "__name__", "")
            return None if name in _TF_OP_FUNCTIONS else f"applies {name!r}: only identity, add, subtract, multiply"
        return f"is not supported by XNNPACK's sparse path: remove or replace it (supported there: {_SUPPORTED})"

    def depthwise_reason(self, layer: Any) -> str | None:
        kernel, strides, padding = tuple(layer.kernel_size), tuple(layer.strides), layer.padding.lower()
        producers = self.producers(layer)
        pad = None
        if len(producers) == 1 and isinstance(producers[0], self.layers.ZeroPadding2D):
            pad = tuple(map(tuple, producers[0].padding))
        ok = layer.depth_multiplier == 1 and tuple(layer.dilation_rate) == (1, 1)
        if kernel in ((3, 3), (5, 5)):
            half = kernel[0] // 2
            same_ok = strides == (1, 1) and padding == "same"
            valid_ok = strides in ((1, 1), (2, 2)) and padding == "valid" and pad == ((half, half), (half, half))
            ok = ok and (same_ok or valid_ok)
        else:
            ok = False
        if ok:
            return None
        return (
            f"is a {kernel[0]}x{kernel[1]} DepthwiseConv2D with strides {strides}, padding={padding!r}, "
            f"depth_multiplier={layer.depth_multiplier}: use 3x3 or 5x5, depth_multiplier=1, no dilation, and either "
            "strides 1 with padding='same' or strides 1 or 2 with padding='valid' after ZeroPadding2D(1) (3x3) "
            "or ZeroPadding2D(2) (5x5)"
        )


def fix_keepdims(model: Any) -> Any:
    """The same model with every GlobalAveragePooling2D keeping its dims, and the same weights.

    A Flatten goes after each pooling not already followed by Flatten or Reshape, so the classifier
    sees the same shape (what the guide does by hand before pruning).

    Raises:
        ModelCheckError: the model cannot be rebuilt from its config, or the rebuilt model's output
            shape differs.
    """
    keras = _tf.tf_keras()
    config = copy.deepcopy(model.get_config())
    try:
        if isinstance(model, keras.Sequential):
            config["layers"] = _fix_sequential_layers(config["layers"])
            fixed = keras.Sequential.from_config(config)
        else:
            config = _fix_functional_config(config)
            fixed = keras.Model.from_config(config)
        fixed.set_weights(model.get_weights())
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelCheckError(
            f"cannot rebuild {model.name!r} with keepdims=True ({exc}); set keepdims=True in your model code",
            problems=[f"automatic keepdims fix failed: {exc}"],
        ) from exc
    if fixed.output_shape != model.output_shape:
        message = (
            f"keepdims=True changes {model.name!r}'s output shape from {model.output_shape} to {fixed.output_shape}; "
            "set keepdims=True and add Flatten in your model code"
        )
        raise ModelCheckError(message, problems=[message])
    return fixed


def _flatten_config(name: str) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "Flatten",
        "config": {"name": name, "trainable": True, "dtype": "float32", "data_format": "channels_last"},
        "registered_name": None,
    }


def _fix_sequential_layers(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fixed: list[dict[str, Any]] = []
    for i, entry in enumerate(layers):
        entry = {k: v for k, v in entry.items() if k != "build_config"}
        fixed.append(entry)
        if entry["class_name"] == "GlobalAveragePooling2D" and not entry["config"].get("keepdims", False):
            entry["config"]["keepdims"] = True
            following = layers[i + 1]["class_name"] if i + 1 < len(layers) else None
            if following not in ("Flatten", "Reshape"):
                fixed.append(_flatten_config(f"{entry['config']['name']}_flatten"))
    return fixed


def _fix_functional_config(config: dict[str, Any]) -> dict[str, Any]:
    renames: dict[str, str] = {}
    layers: list[dict[str, Any]] = []
    consumers: dict[str, list[str]] = {}
    for entry in config["layers"]:
        for node in entry.get("inbound_nodes", []):
            for inbound in node:
                consumers.setdefault(inbound[0], []).append(entry["class_name"])
    for entry in config["layers"]:
        entry = {k: v for k, v in entry.items() if k != "build_config"}
        layers.append(entry)
        if entry["class_name"] == "GlobalAveragePooling2D" and not entry["config"].get("keepdims", False):
            entry["config"]["keepdims"] = True
            name = entry["name"]
            if any(kind not in ("Flatten", "Reshape") for kind in consumers.get(name, [])) or not consumers.get(name):
                flat = _flatten_config(f"{name}_flatten")
                flat["name"] = flat["config"]["name"]
                flat["inbound_nodes"] = [[[name, 0, 0, {}]]]
                layers.append(flat)
                renames[name] = flat["name"]
    for entry in layers:
        if entry["name"] in renames.values():
            continue
        entry["inbound_nodes"] = [
            [[renames.get(inbound[0], inbound[0]), *inbound[1:]] for inbound in node]
            for node in entry.get("inbound_nodes", [])
        ]
    config["layers"] = layers
    config["output_layers"] = [[renames.get(out[0], out[0]), *out[1:]] for out in config["output_layers"]]
    return config


def prepare_model(model: Any, *, fix: bool) -> tuple[Any, list[str]]:
    """Checks ``model``; with ``fix``, repairs keepdims first. Returns the model to prune and the fixes made.

    Raises:
        ModelCheckError: a rule is broken (and, with ``fix``, not only keepdims).
    """
    problems = find_problems(model)
    if fix and problems and all(p.fixable for p in problems):
        model = fix_keepdims(model)
        _raise_for(find_problems(model), model.name)
        return model, ["keepdims"]
    _raise_for(problems, getattr(model, "name", type(model).__name__))
    return model, []


def check_model_file(path: Path, *, fix: bool = False) -> CheckReport:
    """Loads ``path`` and checks it (``lab build --check-only``); with ``fix``, checks the fixed model too.

    Raises:
        ModelFileError: the file is missing or cannot be loaded.
        ModelCheckError: it holds a Keras 3 model.
    """
    model = load_model_file(path)
    problems = find_problems(model)
    if fix and problems and all(p.fixable for p in problems):
        return CheckReport(str(path), find_problems(fix_keepdims(model)), ["keepdims"], problems)
    return CheckReport(str(path), problems)
