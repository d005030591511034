"""The model under test in LiteRT: benchmark_model's ``Init`` (file checks, interpreter, input
shapes, XNNPACK) and its inputs: seeded random values, or the values of ``--input_layer_value_files``."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from device_agent.failure import BenchmarkFailed, message_lines
from device_agent.flags import BenchFlags, InputLayer, input_layers
from device_agent.output import format_number

__all__ = ["litert_version", "load_model", "random_inputs", "set_inputs", "write_outputs"]

INPUT_SEED = 0  # random inputs are the same on every run and every device
_TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier at bytes 4..8 of every .tflite


def random_inputs(interpreter: Any) -> None:
    """Fill every input with seeded random values of its dtype and shape (benchmark_model's ranges)."""
    import numpy as np

    rng = np.random.default_rng(INPUT_SEED)
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = tuple(int(x) for x in detail["shape"])
        if dtype.kind == "f":
            data = rng.uniform(-0.5, 0.5, shape).astype(dtype)
        elif dtype.kind == "b":
            data = rng.integers(0, 2, shape).astype(dtype)
        elif dtype.kind in "iu":
            low, high = {np.dtype(np.int8): (-127, 127), np.dtype(np.uint8): (0, 254)}.get(dtype, (0, 99))
            data = rng.integers(low, high, shape, endpoint=True).astype(dtype)
        elif dtype.kind == "c":
            data = (rng.uniform(-0.5, 0.5, shape) + 1j * rng.uniform(-0.5, 0.5, shape)).astype(dtype)
        else:
            raise BenchmarkFailed(f"Input '{detail['name']}' has type {dtype}, which the runner cannot fill with random data")
        interpreter.set_tensor(detail["index"], data)


def set_inputs(interpreter: Any, flags: BenchFlags) -> None:
    """Every input: the bytes of its ``--input_layer_value_files`` file, else seeded random values.

    Raises:
        BenchmarkFailed: a value file that cannot be read or whose size is not the tensor's.
    """
    import numpy as np

    random_inputs(interpreter)
    details = interpreter.get_input_details()
    for layer, detail in zip(input_layers(flags), details):
        if layer.value_file is None:
            continue
        dtype = np.dtype(detail["dtype"])
        shape = tuple(int(x) for x in detail["shape"])
        expected = int(np.prod(shape)) * dtype.itemsize
        try:
            with open(layer.value_file, "rb") as fh:
                data = fh.read(expected + 1)
        except OSError:
            raise BenchmarkFailed(f"Failed to read the input_layer_value_file:{layer.value_file}") from None
        if len(data) != expected:
            size = os.path.getsize(layer.value_file)
            raise BenchmarkFailed(f"The size of {layer.value_file} is {size} bytes. It should be {expected} bytes.")
        interpreter.set_tensor(detail["index"], np.frombuffer(data, dtype).reshape(shape))


def write_outputs(interpreter: Any, path: str) -> None:
    """``--output_filepath``: the raw bytes of every output tensor of the last run, in output order.

    Raises:
        BenchmarkFailed: the file cannot be written.
    """
    try:
        with open(path, "wb") as fh:
            for detail in interpreter.get_output_details():
                fh.write(interpreter.get_tensor(detail["index"]).tobytes())
    except OSError as exc:
        raise BenchmarkFailed(f"Failed to write the output file '{path}': {exc.strerror}") from exc


def _resize_inputs(interpreter: Any, layers: list[InputLayer]) -> None:
    """``--input_layer_shape``: each given input resized, in the model's input order."""
    details = interpreter.get_input_details()
    if layers and len(layers) != len(details):
        raise BenchmarkFailed(f"Inputs mismatch: Model inputs #:{len(layers)} expected: {len(details)}")
    for layer, detail in zip(layers, details):
        if len(layer.shape) != len(detail["shape"]):
            raise BenchmarkFailed(f"Input tensor #{detail['index']} should have {len(detail['shape'])} dimensions!")
        interpreter.resize_tensor_input(detail["index"], list(layer.shape))


def _xnnpack_message(interpreter: Any) -> str | None:
    """What benchmark_model says after applying XNNPACK, read from the graph the runtime built.

    LiteRT applies its default XNNPACK delegate inside ``allocate_tensors``; each delegated
    partition becomes a ``DELEGATE`` node whose inputs and outputs bound the nodes it replaced.
    None when the runtime does not list its nodes.
    """
    try:
        ops = interpreter._get_ops_details()  # LiteRT's "experimental" node listing
    except (AttributeError, RuntimeError, ValueError):
        return None
    kernels = [op for op in ops if op["op_name"] == "DELEGATE"]
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    if not kernels:
        return "Though XNNPACK delegate is explicitly applied, the model graph will not be executed by the delegate."
    producer = {int(t): op["index"] for op in original for t in op["outputs"]}
    covered: set[int] = set()
    for kernel in kernels:
        boundary = {int(t) for t in kernel["inputs"]}
        pending = [int(t) for t in kernel["outputs"]]
        while pending:
            tensor = pending.pop()
            node = producer.get(tensor)
            if tensor in boundary or node is None or node in covered:
                continue
            covered.add(node)
            pending.extend(int(t) for t in ops[node]["inputs"] if int(t) >= 0)
    if len(covered) >= len(original):
        return "Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate."
    return (
        "Explicitly applied XNNPACK delegate, and the model graph will be partially executed by the delegate "
        f"w/ {len(kernels)} delegate kernels."
    )


def litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"


def _check_model_file(graph: str) -> int:
    """The model file's size; the errors benchmark_model prints when it cannot load the file."""
    try:
        with open(graph, "rb") as fh:
            head = fh.read(8)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        raise BenchmarkFailed(f"Could not open '{graph}'.", f"Failed to mmap model {graph}") from None
    if len(head) < 8 or head[4:8] != _TFLITE_IDENTIFIER:
        found = "".join(c if c.isprintable() else "?" for c in head[4:8].decode("latin-1"))
        raise BenchmarkFailed(
            f"Model provided has model identifier '{found}', should be '{_TFLITE_IDENTIFIER.decode()}'",
            f"Failed to mmap model {graph}",
        )
    return size


def load_model(flags: BenchFlags, info: Callable[[str], None]) -> Any:
    """benchmark_model's ``Init``: load the model, build the interpreter, apply XNNPACK, allocate.

    ``info`` gets benchmark_model's lines as they happen (without ``INFO: ``), so a failure's
    ``ERROR:`` lines follow the steps that went well.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    size = _check_model_file(flags.graph)
    # BUILTIN_WITHOUT_DEFAULT_DELEGATES is the resolver that keeps LiteRT from applying XNNPACK.
    resolver = OpResolverType.AUTO if flags.use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = Interpreter(
            model_path=flags.graph,
            num_threads=flags.num_threads if flags.num_threads > 0 else None,
            experimental_op_resolver_type=resolver,
        )
    except (RuntimeError, ValueError) as exc:
        raise BenchmarkFailed(*message_lines(exc), "Failed to initialize the interpreter") from exc
    info(f"Loaded model {flags.graph}")
    _resize_inputs(interpreter, input_layers(flags))
    try:
        interpreter.allocate_tensors()  # LiteRT applies its default delegate (XNNPACK) here
    except (RuntimeError, ValueError) as exc:
        raise BenchmarkFailed(*message_lines(exc), "Failed to allocate tensors!") from exc
    if flags.use_xnnpack:
        message = _xnnpack_message(interpreter)
        if message:
            info(message)
    info(f"The input model file size (MB): {format_number(size / 1e6)}")
    return interpreter
