"""What a .tflite file holds, read from its flatbuffer (LiteRT's schema; no TensorFlow needed).

For each file: the operators in execution order, their counts, the DENSIFY ops and which
operators consume their output, and, for every 1x1 CONV_2D, the fraction of zeros in its filter
and the type it is stored in (float32, float16 behind a DEQUANTIZE, int8).
A pruned model converted with ``Optimize.EXPERIMENTAL_SPARSITY`` stores each pruned filter as a
sparse constant (CSR-style ``SparsityParameters``) that a DENSIFY op expands before the conv;
XNNPACK recognises that pattern and runs the conv with its sparse kernels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from host.errors import BuildError

__all__ = ["TfliteInfo", "ConvSparsity", "DensifyUse", "inspect_tflite", "verify_densify"]

_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8, 7: np.int16}


@dataclass(frozen=True)
class DensifyUse:
    """A DENSIFY op: the sparse constant it expands and the ops that read its output."""

    op_index: int
    tensor: str
    consumers: tuple[str, ...]  # e.g. ("CONV_2D#4",)


@dataclass(frozen=True)
class ConvSparsity:
    """A 1x1 CONV_2D's filter: its shape (O, 1, 1, I), zeros, whether a DENSIFY feeds it (also
    through a DEQUANTIZE, as in float16 models) and the type its values are stored in."""

    op_index: int
    filter: str
    shape: tuple[int, ...]
    zeros: int
    size: int
    densified: bool
    dtype: str = "float32"

    @property
    def sparsity(self) -> float:
        return self.zeros / self.size if self.size else 0.0


@dataclass
class TfliteInfo:
    ops: list[str]
    densify: list[DensifyUse] = field(default_factory=list)
    conv1x1: list[ConvSparsity] = field(default_factory=list)

    @property
    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op] = counts.get(op, 0) + 1
        return dict(sorted(counts.items()))


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _op_names(schema: Any) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _op_name(model: Any, op: Any, names: dict[int, str]) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    # Codes above 127 live in BuiltinCode; older files only fill DeprecatedBuiltinCode.
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if names.get(builtin) == "CUSTOM":
        custom = code.CustomCode()
        return f"CUSTOM:{custom.decode() if custom else '?'}"
    return names.get(builtin, f"BUILTIN_{builtin}")


def _tensor_values(model: Any, tensor: Any, data: bytes) -> np.ndarray | None:
    """The stored values of a constant tensor (for a sparse tensor, only the stored elements)."""
    buffer = model.Buffers(tensor.Buffer())
    if buffer is None:
        return None
    if buffer.Offset() > 1:  # large models keep buffers after the flatbuffer (offset, size)
        raw = data[buffer.Offset() : buffer.Offset() + buffer.Size()]
    elif buffer.DataLength():
        raw = buffer.DataAsNumpy().tobytes()
    else:
        return None
    dtype = _DTYPES.get(tensor.Type())
    if dtype is None or len(raw) % np.dtype(dtype).itemsize:
        return None
    return np.frombuffer(raw, dtype=dtype)


def inspect_tflite(source: Path | bytes) -> TfliteInfo:
    """Ops, DENSIFY uses and 1x1-conv filter sparsity of the first subgraph of ``source``.

    Raises:
        BuildError: the bytes are not a TFLite flatbuffer.
    """
    data = source.read_bytes() if isinstance(source, Path) else bytes(source)
    schema = _schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise BuildError(f"{source if isinstance(source, Path) else 'data'} is not a TFLite model (no TFL3 identifier)")
    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    names = _op_names(schema)
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    op_names = [_op_name(model, op, names) for op in ops]

    producer: dict[int, int] = {}
    readers: dict[int, list[int]] = {}
    for index, op in enumerate(ops):
        for t in op.OutputsAsNumpy() if op.OutputsLength() else []:
            producer[int(t)] = index
        for t in op.InputsAsNumpy() if op.InputsLength() else []:
            if t >= 0:
                readers.setdefault(int(t), []).append(index)

    info = TfliteInfo(ops=op_names)
    for index, op in enumerate(ops):
        if op_names[index] == "DENSIFY":
            sparse = graph.Tensors(int(op.Inputs(0)))
            out = int(op.Outputs(0))
            info.densify.append(
                DensifyUse(
                    index, sparse.Name().decode(), tuple(f"{op_names[r]}#{r}" for r in readers.get(out, []))
                )
            )
        if op_names[index] != "CONV_2D" or op.InputsLength() < 2:
            continue
        filter_index = int(op.Inputs(1))
        weights = graph.Tensors(filter_index)
        shape = tuple(int(d) for d in weights.ShapeAsNumpy())
        if len(shape) != 4 or shape[1:3] != (1, 1):
            continue
        stored_index, densified = _stored_constant(filter_index, producer, ops, op_names)
        stored = graph.Tensors(stored_index)
        values = _tensor_values(model, stored, data)
        size = int(np.prod(shape))
        zeros = size - int(np.count_nonzero(values)) if values is not None else 0
        dtype = _DTYPES.get(stored.Type())
        info.conv1x1.append(ConvSparsity(index, weights.Name().decode(), shape, zeros, size, densified,
                                         np.dtype(dtype).name if dtype is not None else f"type {stored.Type()}"))
    return info


def _stored_constant(tensor: int, producer: dict[int, int], ops: list[Any], op_names: list[str]) -> tuple[int, bool]:
    """The constant a filter is computed from, through DENSIFY (sparse storage) and DEQUANTIZE
    (float16 storage) ops, and whether a DENSIFY was on the way."""
    densified = False
    while (source := producer.get(tensor)) is not None and op_names[source] in ("DENSIFY", "DEQUANTIZE"):
        densified = densified or op_names[source] == "DENSIFY"
        tensor = int(ops[source].Inputs(0))
    return tensor, densified


def verify_densify(info: TfliteInfo, name: str = "pruned.tflite") -> None:
    """Raises BuildError unless every 1x1 CONV_2D of ``info`` reads its filter through a DENSIFY op."""
    if not info.conv1x1:
        raise BuildError(f"{name} has no 1x1 CONV_2D: nothing for XNNPACK's sparse kernels to run")
    plain = [c.filter for c in info.conv1x1 if not c.densified]
    if plain:
        raise BuildError(
            f"{name}: the filters of {', '.join(plain)} are stored dense (no DENSIFY op feeds them); the converter "
            "stores a filter sparse only when it is sparse enough: check the pruning reached its target"
        )
