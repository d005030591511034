"""The model under test in LiteRT: benchmark_model's ``Init`` (file checks, interpreter, input
shapes, XNNPACK) and its inputs: seeded random values, or the values of ``--input_layer_value_files``.

``--xnnpack_force_fp16``: LiteRT's ``Interpreter`` applies XNNPACK with its default options and
offers no way to set the delegate's flags (its wheel ships no loadable XNNPACK delegate library
either), and by default XNNPACK unpacks float16 weights to float32 and computes in float32. Only
LiteRT's ``CompiledModel`` API takes XNNPACK's flags (``CpuOptions.xnnpack_flags``), so with that
flag the model runs through it, behind the few interpreter calls the runner makes
(``CompiledInterpreter``). Where the installed LiteRT has no such API the run fails in one line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from device_agent.failure import BenchmarkFailed, message_lines
from device_agent.flags import BenchFlags, InputLayer, input_layers
from device_agent.output import format_number

__all__ = [
    "CompiledInterpreter", "XNNPACK_FORCE_FP16_FLAGS", "litert_version", "load_model", "random_inputs", "set_inputs",
    "write_outputs",
]

INPUT_SEED = 0  # random inputs are the same on every run and every device
_TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier at bytes 4..8 of every .tflite

# TFLITE_XNNPACK_DELEGATE_FLAG_* (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h). Flags given
# to LiteRT replace the delegate's defaults, which in LiteRT's builds enable signed and unsigned
# quantized inference (TfLiteXNNPackDelegateOptionsDefault with XNNPACK_DELEGATE_ENABLE_QS8/QU8;
# the default run of an int8 model here takes XNNPACK's qs8 kernels): they are kept, so that only
# the precision of float operators changes, as benchmark_model's --xnnpack_force_fp16 does
# (tensorflow/lite/tools/delegates/xnnpack_delegate_provider.cc: opts.flags |= FORCE_FP16).
_FLAG_QS8, _FLAG_QU8, _FLAG_FORCE_FP16 = 0x1, 0x2, 0x4
XNNPACK_FORCE_FP16_FLAGS = _FLAG_QS8 | _FLAG_QU8 | _FLAG_FORCE_FP16
NO_COMPILED_MODEL = (
    "--xnnpack_force_fp16 needs LiteRT's CompiledModel API with CPU options (ai-edge-litert 2.x); "
    "LiteRT {version} has none, and its Interpreter cannot pass XNNPACK flags"
)


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


def _xnnpack_messages(interpreter: Any) -> list[str]:
    """What TFLite and benchmark_model say after applying XNNPACK, read from the graph the runtime built.

    LiteRT applies its default XNNPACK delegate inside ``allocate_tensors``; each delegated
    partition becomes a ``DELEGATE`` node whose inputs and outputs bound the nodes it replaced.
    TFLite's own ``Replacing N out of M node(s) …`` line (tensorflow/lite/core/subgraph.cc, which
    LiteRT's Python API does not let through) comes first, as in benchmark_model's output. Nothing
    when the runtime does not list its nodes.
    """
    try:
        ops = interpreter._get_ops_details()  # LiteRT's "experimental" node listing
    except (AttributeError, RuntimeError, ValueError):
        return []
    kernels = [op for op in ops if op["op_name"] == "DELEGATE"]
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    if not kernels:
        return ["Though XNNPACK delegate is explicitly applied, the model graph will not be executed by the delegate."]
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
    replacing = (
        f"Replacing {len(covered)} out of {len(original)} node(s) with delegate (TfLiteXNNPackDelegate) node, "
        f"yielding {len(kernels)} partitions for the whole graph."
    )
    if len(covered) >= len(original):
        return [replacing, COMPLETELY]
    return [
        replacing,
        "Explicitly applied XNNPACK delegate, and the model graph will be partially executed by the delegate "
        f"w/ {len(kernels)} delegate kernels.",
    ]


COMPLETELY = "Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate."


class CompiledInterpreter:
    """A LiteRT ``CompiledModel`` (its first signature) behind the interpreter calls the runner makes.

    Inputs and outputs come in the graph's order, as the Interpreter lists them (the signature's
    own order may differ, and value files and the output file follow the graph's), with the
    tensors' names; ``index`` in their details is the signature's position, which the buffers use.
    The buffers are made once (again after a resize), so ``invoke`` runs the model and nothing else.
    """

    def __init__(self, model: Any, graph_inputs: list[int], graph_outputs: list[int]) -> None:
        self._model = model
        self._order = (graph_inputs, graph_outputs)
        self._details: list[list[dict[str, Any]]] = []
        self._prepare()

    def _prepare(self) -> None:
        """Details (shapes change with a resize) and buffers from the compiled model."""
        import numpy as np

        signature = self._model.get_signature_by_index(0)
        key = signature["key"]
        self._details = []
        for names, found, order in (
            (signature["inputs"], self._model.get_input_tensor_details(key), self._order[0]),
            (signature["outputs"], self._model.get_output_tensor_details(key), self._order[1]),
        ):
            details = [
                {"name": found[name]["name"], "index": i, "tensor": int(found[name]["index"]),
                 "shape": np.array(found[name]["shape"], dtype=np.int32), "dtype": np.dtype(found[name]["dtype"]).type}
                for i, name in enumerate(names)
            ]  # fmt: skip
            position = {tensor: i for i, tensor in enumerate(order)}
            self._details.append(sorted(details, key=lambda d: position.get(d["tensor"], len(position) + d["index"])))
        self._inputs = self._model.create_input_buffers(0)
        self._outputs = self._model.create_output_buffers(0)

    def _detail(self, kind: int, index: int) -> dict[str, Any]:
        return next(d for d in self._details[kind] if d["index"] == index)

    def get_input_details(self) -> list[dict[str, Any]]:
        return self._details[0]

    def get_output_details(self) -> list[dict[str, Any]]:
        return self._details[1]

    def resize_tensor_input(self, index: int, shape: list[int]) -> None:
        """A shape other than the model's goes through LiteRT's non-strict resize (the Interpreter's
        resize: the strict one accepts only dimensions the signature leaves open)."""
        if list(self._detail(0, index)["shape"]) == list(shape):
            return
        self._model.resize_input_tensor(index, shape, 0, strict=False)
        self._prepare()

    def set_tensor(self, index: int, data: Any) -> None:
        with open(os.devnull, "wb") as sink, _native_stderr_to(sink):  # the first write logs a new environment
            self._inputs[index].write(data)

    def invoke(self) -> None:
        self._model.run_by_index(0, self._inputs, self._outputs)

    def get_tensor(self, index: int) -> Any:
        import numpy as np

        detail = self._detail(1, index)
        count = int(np.prod(detail["shape"]))
        return self._outputs[index].read(count, detail["dtype"]).reshape(tuple(detail["shape"]))

    def xnnpack_message(self) -> str:
        """benchmark_model's line after applying XNNPACK; partitions are not listed by this API."""
        if self._model.is_fully_accelerated():
            return COMPLETELY
        return "Explicitly applied XNNPACK delegate, and the model graph will be partially executed by the delegate."


def _load_compiled(flags: BenchFlags) -> CompiledInterpreter:
    """``--xnnpack_force_fp16``: the model through LiteRT's CompiledModel with XNNPACK's FORCE_FP16 flag.

    Raises:
        BenchmarkFailed: no CompiledModel API in this LiteRT, or the model fails to compile (XNNPACK
            refuses forced fp16 on a CPU without fp16 arithmetic: ``XNN_FLAG_FORCE_FP16_INFERENCE``
            fails rather than fall back).
    """
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import Options
    except ImportError:
        raise BenchmarkFailed(NO_COMPILED_MODEL.format(version=litert_version())) from None
    # -1 (the runtime's choice) is one thread in LiteRT's Interpreter; CpuOptions' 0 would let it pick more.
    cpu = CpuOptions(num_threads=max(flags.num_threads, 1), xnnpack_flags=XNNPACK_FORCE_FP16_FLAGS)
    with open(flags.graph, "rb") as fh:
        graph = schema.Model.GetRootAs(fh.read(), 0).Subgraphs(0)
    with tempfile.TemporaryFile() as log:
        try:
            with _native_stderr_to(log):
                model = CompiledModel.from_file(flags.graph, options=Options(HardwareAccelerator.CPU, cpu_options=cpu))
                return CompiledInterpreter(model, graph.InputsAsNumpy().tolist(), graph.OutputsAsNumpy().tolist())
        except (RuntimeError, ValueError) as exc:
            log.seek(0)
            lines = log.read().decode(errors="replace").splitlines()
            said = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: ")]  # the cause
            raise BenchmarkFailed(*said, *message_lines(exc), "Failed to initialize the interpreter") from exc


@contextlib.contextmanager
def _native_stderr_to(log: BinaryIO) -> Iterator[None]:
    """Native code's stderr (file descriptor 2) into ``log`` for the block.

    Making LiteRT's environment (when the model is compiled, and again on the first buffer write)
    logs its accelerator registry line by line, with WARNING lines for the NPU and vendor compiler
    plugins a CPU run never uses; on the device's one output stream they would read as the run's
    warnings.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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
    size = _check_model_file(flags.graph)
    if flags.xnnpack_force_fp16:
        compiled = _load_compiled(flags)
        info(f"Loaded model {flags.graph}")
        _resize_inputs(compiled, input_layers(flags))
        info(compiled.xnnpack_message())
        info(f"The input model file size (MB): {format_number(size / 1e6)}")
        return compiled

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

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
        for message in _xnnpack_messages(interpreter):
            info(message)
    info(f"The input model file size (MB): {format_number(size / 1e6)}")
    return interpreter
