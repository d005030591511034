"""The host's reference outputs of a .tflite file: LiteRT's builtin kernels, no XNNPACK.

The on-device output check (``host.bench.verify``) compares what a device computed with these.
The builder makes them right after converting each variant (so a file altered after the build is
caught); ``lab bench --verify`` makes them on the spot for files it did not build. XNNPACK is left
out on purpose: the reference must not share the device's fast kernels, or a bug in them would
agree with itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from host.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TensorSpec", "ModelIO", "model_io", "reference_outputs", "random_inputs", "REFERENCE_INTERPRETER"]

REFERENCE_INTERPRETER = "LiteRT on the host, builtin kernels without XNNPACK"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: its name, dtype name, shape (batch first) and quantization."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float = 0.0  # 0: not quantized
    zero_point: int = 0


@dataclass(frozen=True)
class ModelIO:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def _interpreter(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        return Interpreter(
            model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"LiteRT cannot load {path.name} on the host: {str(exc).strip().splitlines()[0]}") from exc


def _specs(details: Sequence[dict[str, Any]]) -> tuple[TensorSpec, ...]:
    import numpy as np

    specs = []
    for d in details:
        scale, zero_point = d.get("quantization") or (0.0, 0)
        specs.append(TensorSpec(str(d["name"]), np.dtype(d["dtype"]).name, tuple(int(x) for x in d["shape"]),
                                float(scale), int(zero_point)))
    return tuple(specs)


def model_io(path: Path) -> ModelIO:
    """The model's input and output tensors as its file declares them.

    Raises:
        UsageError: LiteRT cannot load the file.
    """
    interpreter = _interpreter(path)
    return ModelIO(_specs(interpreter.get_input_details()), _specs(interpreter.get_output_details()))


def random_inputs(io: ModelIO, count: int, seed: int) -> list[np.ndarray]:
    """``count`` seeded inputs per input tensor, batched: images in [0, 1) for float inputs (what
    the lab's models take), the quantized range for integer ones.

    Raises:
        UsageError: an input of a type the check cannot fill (strings, booleans).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    batches = []
    for spec in io.inputs:
        shape = (count, *spec.shape[1:])
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            batches.append(rng.uniform(0.0, 1.0, shape).astype(dtype))
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            batches.append(rng.integers(max(info.min, -128), min(info.max, 255), shape, endpoint=True).astype(dtype))
        else:
            raise UsageError(f"input {spec.name!r} has type {spec.dtype}: the output check can only fill numbers")
    return batches


def reference_outputs(path: Path, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Every output of ``path`` for the batched ``inputs`` (one array per input tensor, batch
    first), computed on the host without XNNPACK.

    Raises:
        UsageError: the file cannot be loaded, or the inputs do not fit its inputs (count, shape, type).
    """
    import numpy as np

    interpreter = _interpreter(path)
    details = interpreter.get_input_details()
    if len(details) != len(inputs):
        raise UsageError(f"{path.name} has {len(details)} inputs, the check has values for {len(inputs)}")
    try:
        for detail, values in zip(details, inputs):
            if np.dtype(detail["dtype"]) != values.dtype:
                raise UsageError(
                    f"input {detail['name']!r} of {path.name} takes {np.dtype(detail['dtype']).name}, "
                    f"the check's values are {values.dtype.name}"
                )
            if tuple(detail["shape"][1:]) != values.shape[1:]:
                raise UsageError(
                    f"input {detail['name']!r} of {path.name} has shape {tuple(int(x) for x in detail['shape'])}, "
                    f"the check's values {values.shape[1:]} per input: they do not match"
                )
            interpreter.resize_tensor_input(detail["index"], list(values.shape))
        interpreter.allocate_tensors()
        for detail, values in zip(details, inputs):
            interpreter.set_tensor(detail["index"], values)
        interpreter.invoke()
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"LiteRT cannot run {path.name} on the host: {str(exc).strip().splitlines()[0]}") from exc
    return [np.array(interpreter.get_tensor(d["index"])) for d in interpreter.get_output_details()]
