"""The on-device output check: did the device compute what the host computes for the same file?

After a device's timed trials, each model runs once more on K inputs in one batch, through
benchmark_model's own flags (``--input_layer``, ``--input_layer_shape``,
``--input_layer_value_files``, ``--output_filepath``), so a phone's tool and the emulated
device's runner are checked the same way. The outputs are compared with the host's reference
(``host.reference``: LiteRT without XNNPACK) for the same inputs, with a tolerance per precision:

- fp32: max |device − host| ≤ 1e-4 × max |host| (XNNPACK's kernels, sparse ones included, sum
  in another order than the reference kernels: differences of 1e-6 are normal);
- fp16: the same at 1e-2 (fp16 arithmetic when XNNPACK is forced to use it);
- int8 and dynamic-range: top-1 agreement ≥ 99%, where an input whose reference's top two
  classes lie within two int8 steps of the output's range (a near tie, which a one-step rounding
  difference between kernels flips) does not count against it. Their outputs differ by a
  quantization step between kernels, so no element-wise bound would be fair.

A model's reference comes from its build when lab built it (``host.builder``: made right after
conversion, so a file altered since is caught), else from the host now, on seeded inputs.
Top-1 agreement with the run's baseline (the first model: dense fp32 in ``lab run``) on the host
is reported beside, as information: pruning and quantization move some predictions by design.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from host.bench.trial import OP_PROFILING_FLAG, XNNPACK_FP16_FLAG, DeviceSession, benchmark_command, failure_reason
from host.devices.shell import command_line
from host.devices.errors import DeviceGoneError
from host.errors import DeviceError, LabError
from host.records import CheckStatus, ModelFile, OutputCheck, TrialParams

if TYPE_CHECKING:
    import numpy as np

    from host.reference import ModelIO

__all__ = [
    "Reference",
    "Tolerance",
    "TOLERANCES",
    "INPUT_FILE",
    "OUTPUT_FILE",
    "check_all",
    "check_on_device",
    "compare",
    "host_references",
    "model_precision",
    "build_reference",
    "build_references",
    "references_beside",
]

INPUT_FILE = "verify_input_{digest}.bin"  # named by content: variants sharing inputs push them once
OUTPUT_FILE = "verify_output.bin"
_NEAR_TIE_STEPS = 2  # int8 steps of the output's range within which two classes are a tie
_ULIMIT_BLOCK = 512  # the unit of mksh's `ulimit -f`


@dataclass(frozen=True)
class Tolerance:
    """How close a device's outputs must be to the host's for a precision."""

    precision: str
    relative: float | None = None  # max |device - host| / max |host| at most this
    min_agreement: float | None = None  # top-1 agreement (near ties excepted) at least this

    def describe(self) -> str:
        if self.relative is not None:
            return f"max |device − host| ≤ {self.relative:g} × max |host|"
        return f"top-1 agreement ≥ {self.min_agreement:.0%} (near ties excepted)"


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance("fp32", relative=1e-4),
    "fp16": Tolerance("fp16", relative=1e-2),
    "int8": Tolerance("int8", min_agreement=0.99),
    "dynamic": Tolerance("dynamic", min_agreement=0.99),
}
"""The documented defaults, per precision (``model_precision``)."""


@dataclass(frozen=True)
class Reference:
    """What one model's on-device outputs are checked against: the inputs (one batched array per
    input tensor), the host's outputs for them, and top-1 classes of the baseline for the same inputs."""

    inputs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]
    io: ModelIO
    precision: str
    source: str
    baseline: str | None = None
    baseline_top1: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.inputs[0].shape[0]) if self.inputs else 0


def model_precision(path: Path, role: str | None = None) -> str:
    """fp32, fp16, int8 or dynamic: a lab variant's own precision, else read from the file's tensors
    (float16 tensors: fp16; int8 tensors with QUANTIZE ops: int8; without: dynamic-range)."""
    from host.builder.variants import VARIANTS

    if role in VARIANTS:
        return VARIANTS[role].precision
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    dtypes = {str(d["dtype"].__name__) for d in interpreter.get_tensor_details()}
    if "float16" in dtypes:
        return "fp16"
    if dtypes & {"int8", "uint8"}:
        ops = {op["op_name"] for op in interpreter._get_ops_details()}  # noqa: SLF001 (LiteRT's only op listing)
        return "int8" if "QUANTIZE" in ops else "dynamic"
    return "fp32"


def build_reference(
    path: Path, inputs: Sequence[np.ndarray], *, role: str | None, source: str, io: ModelIO | None = None
) -> Reference:
    """The host's outputs of ``path`` for ``inputs`` (``io``: the file's tensors, when already read).

    Raises:
        UsageError: the file cannot run on the host, or the inputs do not fit it.
    """
    from host.reference import model_io, reference_outputs

    io = io or model_io(path)
    outputs = reference_outputs(path, inputs)
    return Reference(tuple(inputs), tuple(outputs), io, model_precision(path, role), source)


def build_references(
    models: Sequence[ModelFile], folder: Path, manifest: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> dict[str, Reference]:
    """The references a lab build kept for its variants (by model sha256), where still intact.
    A model is that build's variant ``names[sha256]``, else its role.

    Raises:
        UsageError: a model's file cannot be loaded on the host.
    """
    from host.builder.references import read_references
    from host.reference import model_io

    kept = read_references(folder, manifest)
    build_id = manifest.get("build_id", "?")
    interpreter = (manifest.get("verification") or {}).get("interpreter", "the host")
    references: dict[str, Reference] = {}
    for model in models:
        name = (names or {}).get(model.sha256, model.role)
        if name not in kept:
            continue
        inputs, outputs = kept[name]
        source = f"build {build_id}: {interpreter}, right after conversion"
        references[model.sha256] = Reference(
            (inputs,), tuple(outputs), model_io(Path(model.path)), model_precision(Path(model.path), name), source
        )
    return references


def references_beside(models: Sequence[ModelFile]) -> dict[str, Reference]:
    """For files that lie in a lab build folder whose manifest lists them (``lab bench
    ~/.lab/artifacts/ID/pruned.tflite``), the references that build kept — also for a file
    changed since its build, whose outputs then show as wrong."""
    from host.bench.models import build_entry

    references: dict[str, Reference] = {}
    for model in models:
        found = build_entry(Path(model.path))
        if found is not None:
            name, folder, manifest = found
            references.update(build_references([model], folder, manifest, {model.sha256: name}))
    return references


def host_references(
    models: Sequence[ModelFile], count: int, seed: int, given: Mapping[str, Reference] | None = None
) -> dict[str, Reference | str]:
    """Each model's reference (by sha256), or the reason it has none: ``given`` ones (a build's)
    first, then the host's outputs now for ``count`` seeded inputs. The first model is the baseline
    whose top-1 classes each other model's are compared with, where their inputs are the same."""
    import numpy as np

    from host.reference import REFERENCE_INTERPRETER, model_io, random_inputs

    references: dict[str, Reference | str] = {}
    for model in models:
        if model.sha256 in references:
            continue
        known = (given or {}).get(model.sha256)
        if known is not None:
            references[model.sha256] = _first(known, count)
            continue
        try:
            io = model_io(Path(model.path))
            references[model.sha256] = build_reference(
                Path(model.path), random_inputs(io, count, seed), role=model.role,
                source=f"{REFERENCE_INTERPRETER}, {count} seeded inputs", io=io,
            )
        except LabError as exc:
            references[model.sha256] = str(exc)
    baseline = references.get(models[0].sha256) if models else None
    if not isinstance(baseline, Reference):
        return references
    base_top1 = _top1(baseline.outputs)
    for sha256, reference in references.items():
        if not isinstance(reference, Reference) or base_top1 is None:
            continue
        same = len(reference.inputs) == len(baseline.inputs) and all(
            a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
            for a, b in zip(reference.inputs, baseline.inputs)
        )
        if same:
            references[sha256] = replace(reference, baseline=models[0].name, baseline_top1=base_top1)
    return references


def _first(reference: Reference, count: int) -> Reference:
    """``reference`` cut to its first ``count`` inputs (a build stores more than a run checks)."""
    return replace(
        reference, inputs=tuple(a[:count] for a in reference.inputs), outputs=tuple(a[:count] for a in reference.outputs)
    )


def _top1(outputs: Sequence[np.ndarray]) -> np.ndarray | None:
    """Top-1 class per input of the first output, when it is a batch of class scores."""
    if not outputs:
        return None
    first = outputs[0]
    if first.ndim < 2 or first.reshape(first.shape[0], -1).shape[1] < 2:
        return None
    return first.reshape(first.shape[0], -1).argmax(axis=1)


def _as_float(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    import numpy as np

    if values.dtype.kind in "iu" and scale:
        return (values.astype(np.float64) - zero_point) * scale
    return values.astype(np.float64)


@dataclass(frozen=True)
class Comparison:
    status: CheckStatus
    max_abs_error: float
    max_rel_error: float
    top1_agreement: float | None
    baseline_agreement: float | None
    detail: str  # why it is wrong or cannot be compared, or empty


def compare(device: Sequence[np.ndarray], reference: Reference, tolerance: Tolerance) -> Comparison:
    """The device's outputs against the reference's, by ``tolerance``."""
    import numpy as np

    got = [_as_float(d, s.scale, s.zero_point) for d, s in zip(device, reference.io.outputs)]
    want = [_as_float(r, s.scale, s.zero_point) for r, s in zip(reference.outputs, reference.io.outputs)]
    abs_err = max((float(np.max(np.abs(g - w))) if g.size else 0.0) for g, w in zip(got, want))
    scale = max((float(np.max(np.abs(w))) if w.size else 0.0) for w in want)
    rel_err = abs_err / scale if scale > 0 else (0.0 if abs_err == 0 else float("inf"))
    if not all(np.all(np.isfinite(g)) for g in got):
        abs_err = rel_err = float("inf")
    device_top1, host_top1 = _top1(got), _top1(want)
    agreement = float(np.mean(device_top1 == host_top1)) if device_top1 is not None and host_top1 is not None else None
    baseline = (
        float(np.mean(device_top1 == reference.baseline_top1))
        if device_top1 is not None and reference.baseline_top1 is not None
        else None
    )
    if tolerance.relative is not None:
        ok = rel_err <= tolerance.relative
        detail = "" if ok else f"max |device − host| is {rel_err:.3g} × max |host| (allowed {tolerance.relative:g})"
    elif agreement is None or device_top1 is None or host_top1 is None:
        detail = (f"cannot be compared: its first output {tuple(want[0].shape)} is not a batch of class scores, "
                  f"so the {tolerance.precision} rule (top-1 agreement) does not apply")
        return Comparison("failed", abs_err, rel_err, agreement, baseline, detail)
    else:
        first = want[0].reshape(want[0].shape[0], -1)
        ordered = np.sort(first, axis=1)
        step = (float(first.max()) - float(first.min())) / 255.0
        near_tie = (ordered[:, -1] - ordered[:, -2]) <= _NEAR_TIE_STEPS * step
        decisive = ~near_tie
        counted = float(np.mean((device_top1 == host_top1)[decisive])) if decisive.any() else 1.0
        ok = counted >= (tolerance.min_agreement or 0.0)
        detail = "" if ok else (f"top-1 agreement {counted:.1%} on {int(decisive.sum())} inputs without near ties "
                                f"(required {tolerance.min_agreement:.0%})")
    return Comparison("ok" if ok else "wrong", abs_err, rel_err, agreement, baseline, detail)


def _argv(session: DeviceSession, model: ModelFile, params: TrialParams, reference: Reference) -> list[str]:
    """benchmark_model's argv for one invoke on the reference's inputs, writing the outputs."""
    extra = tuple(f for f in params.extra_flags if f != OP_PROFILING_FLAG)
    one = TrialParams(params.threads, 1, 0, params.use_xnnpack, 0.0, params.timeout_s, extra)
    argv = benchmark_command(session.tool_command, session.remote_models[model.sha256], one, None)
    argv = [a for a in argv if a != "--report_peak_memory_footprint=true"]
    names = [spec.name for spec in reference.io.inputs]
    shapes = [",".join(str(d) for d in values.shape) for values in reference.inputs]
    files = [f"{name.replace(':', '::')}:{_input_file(values)}" for name, values in zip(names, reference.inputs)]
    return [
        *argv,
        f"--input_layer={','.join(names)}",
        f"--input_layer_shape={':'.join(shapes)}",
        f"--input_layer_value_files={','.join(files)}",
        f"--output_filepath={OUTPUT_FILE}",
    ]


def _failed(check: OutputCheck, error: str, started: float) -> OutputCheck:
    check.status = "failed"
    check.error = error
    check.duration_s = time.monotonic() - started
    return check


def _input_file(values: np.ndarray) -> str:
    import numpy as np

    digest = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]
    return INPUT_FILE.format(digest=digest)


def check_on_device(
    session: DeviceSession,
    model: ModelFile,
    params: TrialParams,
    reference: Reference | str,
    scratch: Path,
    pushed: set[str] | None = None,
) -> OutputCheck:
    """Runs ``model`` on the reference's inputs on the device and compares — never raises for a
    device, tool or file failure: the check is then ``failed`` with the reason.

    The input files are written under ``scratch`` on the host, pushed to the run's work folder
    (unless named in ``pushed``, which records them), and the tool runs there with relative paths: ``name:path`` items cannot carry a path with a
    ``:`` in it on every tool. The output file is bounded on the device (``ulimit -f``) like a
    trial's output.
    """
    import numpy as np

    started = time.monotonic()
    ref = reference if isinstance(reference, Reference) else None
    precision = ref.precision if ref else "fp32"
    forced = XNNPACK_FP16_FLAG in params.extra_flags and precision in ("fp32", "fp16")
    tolerance = TOLERANCES["fp16" if forced else precision]  # float operators computed in float16
    check = OutputCheck(
        run_id=None,
        device=session.facts,
        model=model,
        status="failed",
        inputs=ref.count if ref else 0,
        precision=precision,
        tolerance=tolerance.describe() + (" (XNNPACK forced to compute in fp16)" if forced else ""),
        reference=ref.source if ref else "none",
        checked_at=datetime.now(timezone.utc),
        baseline=ref.baseline if ref else None,
    )
    if ref is None:
        return _failed(check, f"no host reference: {reference}", started)
    bad = [spec.name for spec in ref.io.inputs if "," in spec.name]
    if bad:
        return _failed(check, f"input {bad[0]!r} has a ',' in its name: benchmark_model cannot be given its values", started)
    work = session.work_dir
    try:
        pushed = set() if pushed is None else pushed
        for values in ref.inputs:
            name = _input_file(values)
            if name not in pushed:
                local = scratch / name
                local.write_bytes(np.ascontiguousarray(values).tobytes())
                session.shell.push(local, f"{work}/{name}", 0o644)
                pushed.add(name)
        argv = _argv(session, model, params, ref)
        expected = sum(o.nbytes for o in ref.outputs)
        bound = f"ulimit -f {max(expected, session.max_output) // _ULIMIT_BLOCK + 1}"
        line = f"cd {command_line([work])} && rm -f {OUTPUT_FILE} && {bound} && {command_line(argv)} 2>&1"
        check.command = line
        result = session.shell.run(line, timeout=params.timeout_s, max_output=session.max_output)
        if result.returncode != 0:
            return _failed(check, failure_reason(result.output, result.returncode), started)
        data = _read_output(session, f"{work}/{OUTPUT_FILE}")
    except DeviceError as exc:
        return _failed(check, f"device: {exc}", started)
    except OSError as exc:
        return _failed(check, f"cannot write the inputs on the host: {exc.strerror or exc}", started)
    if data is None:
        return _failed(check, f"the tool wrote no {OUTPUT_FILE} (does it support --output_filepath?)", started)
    if len(data) != expected:
        return _failed(check, f"{OUTPUT_FILE} holds {len(data):,} bytes, the outputs take {expected:,}: truncated or "
                              "not this model's outputs", started)
    got, offset = [], 0
    for values in ref.outputs:
        got.append(np.frombuffer(data, values.dtype, values.size, offset).reshape(values.shape))
        offset += values.nbytes
    result_of = compare(got, ref, tolerance)
    check.status = result_of.status
    check.max_abs_error = result_of.max_abs_error
    check.max_rel_error = result_of.max_rel_error
    check.top1_agreement = result_of.top1_agreement
    check.baseline_agreement = result_of.baseline_agreement
    if result_of.status == "wrong":
        check.error = f"wrong output on this device: {result_of.detail}"
    else:
        check.error = result_of.detail or None
    check.duration_s = time.monotonic() - started
    return check


def _read_output(session: DeviceSession, remote: str) -> bytes | None:
    """The output file's bytes, or None when the tool did not write it.

    Raises:
        DeviceGoneError: the device stopped answering.
    """
    try:
        return session.shell.read_file(remote)
    except DeviceGoneError:
        raise
    except DeviceError:
        return None


def check_all(
    session: DeviceSession,
    models: Sequence[ModelFile],
    params: TrialParams,
    references: Mapping[str, Reference | str],
    measured: set[str],
) -> list[OutputCheck]:
    """The check of every model with at least one measured trial (``measured``: sha256s) on this
    device; a model whose every trial failed is not checked (its trials say why)."""
    checks = []
    pushed: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="lab-verify-") as scratch:
        for model in models:
            if model.sha256 in measured:
                reference = references.get(model.sha256, "not prepared")
                checks.append(check_on_device(session, model, params, reference, Path(scratch), pushed))
    return checks
