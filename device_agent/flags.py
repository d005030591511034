"""benchmark_model's command line for the runner: its flags, their parsing and checks, ``--help``,
and the parameter lines it logs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from device_agent.failure import BenchmarkFailed
from device_agent.output import format_number

__all__ = [
    "HELP_ARGS", "BenchFlags", "InputLayer", "ParsedArgs", "input_layers", "param_lines", "parse_flags", "usage",
    "validate",
]


@dataclass(frozen=True)
class BenchFlags:
    """benchmark_model's flags that this runner reads, with benchmark_model's defaults.

    ``num_threads=-1`` lets the runtime choose (LiteRT's Python interpreter then uses one thread);
    ``run_delay`` ≤ 0 means no pause between runs. ``use_xnnpack`` defaults to true: XNNPACK is
    LiteRT's default delegate, and false really turns it off (no delegate at all).
    """

    graph: str = ""
    num_threads: int = -1
    num_runs: int = 50
    min_secs: float = 1.0
    max_secs: float = 150.0
    warmup_runs: int = 1
    warmup_min_secs: float = 0.5
    run_delay: float = -1.0
    use_xnnpack: bool = True
    xnnpack_force_fp16: bool = False
    report_peak_memory_footprint: bool = False
    samples_file: str = ""
    count_instructions: bool = False  # parse_flags's default is true under the lab's QEMU emulation
    enable_op_profiling: bool = False
    input_layer: str = ""
    input_layer_shape: str = ""
    input_layer_value_files: str = ""
    output_filepath: str = ""


_HELP = {
    "graph": "path to the .tflite model",
    "num_threads": "number of threads (-1: the runtime's default)",
    "num_runs": "minimum number of measured runs",
    "min_secs": "minimum seconds of measured runs",
    "max_secs": "maximum seconds of measured runs (and of the warm-up)",
    "warmup_runs": "minimum number of warm-up runs",
    "warmup_min_secs": "minimum seconds of warm-up runs",
    "run_delay": "seconds to sleep between runs (<= 0: none)",
    "use_xnnpack": "apply the XNNPACK delegate (true/false/1/0)",
    "xnnpack_force_fp16": "XNNPACK computes float operators in float16 (TFLITE_XNNPACK_DELEGATE_FLAG_FORCE_FP16; "
                          "by default it unpacks float16 weights to float32); fails where the CPU has no fp16 "
                          "arithmetic",
    "report_peak_memory_footprint": "also print the peak memory footprint (true/false/1/0)",
    "samples_file": "write every measured per-invoke time (us), one a line, to this file",
    "count_instructions": "print guest instructions per inference (the lab's QEMU plugin; default true under it)",
    "enable_op_profiling": "per-op profile: per-kernel instruction counts under the lab's QEMU plugin",
    "input_layer": "input layer names, comma-separated, in the model's input order",
    "input_layer_shape": "input layer shapes, ':' between layers, e.g. 16,32,32,3 (resizes the inputs)",
    "input_layer_value_files": "name:file,… raw binary values for inputs (else random); a file holds exactly "
                               "the tensor's bytes",
    "output_filepath": "write the outputs of the last run, raw bytes of each output tensor in order, to this file",
}

# benchmark_model's names for the parameters it lists when they are set on the command line.
_PARAM_TITLES = {
    "xnnpack_force_fp16": "xnnpack_force_fp16",  # benchmark_model's own title for it
    "num_runs": "Min num runs",
    "min_secs": "Min runs duration (seconds)",
    "max_secs": "Max runs duration (seconds)",
    "run_delay": "Inter-run delay (seconds)",
    "warmup_runs": "Min warmup runs",
    "warmup_min_secs": "Min warmup runs duration (seconds)",
    "report_peak_memory_footprint": "Report the peak memory footprint",
    "samples_file": "Samples file",
    "count_instructions": "Count instructions",
    "enable_op_profiling": "Enable op profiling",
    "input_layer": "Input layers",
    "input_layer_shape": "Input shapes",
    "input_layer_value_files": "Input value files",
    "output_filepath": "File path to export outputs layer to",
}

HELP_ARGS = frozenset({"--help", "-h", "--help=true", "--help=1"})
_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_BOOLS = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True)
class ParsedArgs:
    flags: BenchFlags
    explicit: frozenset[str]  # flags given on the command line
    unconsumed: tuple[str, ...]  # arguments that are no flag of ours, in order
    duplicates: tuple[str, ...]  # flag names given more than once (the first value wins)


def parse_flags(argv: Sequence[str], *, count_default: bool = False) -> ParsedArgs:
    """Read ``--name=value`` flags as benchmark_model's command-line parser does.

    Booleans take true/false/1/0. An argument that is no known ``--name=value`` (a typo, a bare
    ``--flag``, a positional word) is returned in ``unconsumed``; the run goes on with it reported.
    ``count_default`` is ``--count_instructions``'s value when it is not given (``main`` passes
    true under the lab's QEMU emulation).

    Raises:
        BenchmarkFailed: a known flag with a value of the wrong type, e.g. ``--num_runs=ten``.
    """
    types = {f.name: f.type for f in fields(BenchFlags)}
    values: dict[str, Any] = {}
    unconsumed: list[str] = []
    duplicates: list[str] = []
    for arg in argv:
        name, sep, raw = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if not sep or name not in types:
            unconsumed.append(arg)
            continue
        if name in values:
            if name not in duplicates:
                duplicates.append(name)
            continue
        values[name] = _convert(name, raw, types[name], arg)
    explicit = frozenset(values)
    values.setdefault("count_instructions", count_default)
    return ParsedArgs(
        flags=BenchFlags(**values),
        explicit=explicit,
        unconsumed=tuple(unconsumed),
        duplicates=tuple(duplicates),
    )


def _convert(name: str, raw: str, kind: str, arg: str) -> Any:
    if kind == "str":
        return raw
    if kind == "int" and _INT.match(raw):
        return int(raw)
    if kind == "float" and _FLOAT.match(raw):
        return float(raw)
    if kind == "bool" and raw.lower() in _BOOLS:
        return _BOOLS[raw.lower()]
    expected = {"int": "an integer", "float": "a number", "bool": "true, false, 1 or 0"}[kind]
    raise BenchmarkFailed(f"Failed to parse flag '{name}' against argv '{arg}': expected {expected}")


def validate(flags: BenchFlags) -> None:
    """Refuse flags that benchmark_model refuses, or that would measure nothing.

    Raises:
        BenchmarkFailed: no ``--graph``, a thread count of 0 or below -1, a negative run count or
            duration, ``--num_runs=0`` with ``--min_secs=0``, input layer flags that do not agree, or
            ``--xnnpack_force_fp16=true`` with ``--use_xnnpack=false`` (benchmark_model ignores it
            then; the runner refuses, so a float32 run is never taken for a float16 one).
    """
    if not flags.graph:
        raise BenchmarkFailed("Please specify the name of your TF Lite input file with --graph")
    if flags.num_threads == 0 or flags.num_threads < -1:
        raise BenchmarkFailed(f"Invalid --num_threads={flags.num_threads}: use a positive count or -1 (the default)")
    for name in ("num_runs", "warmup_runs", "min_secs", "max_secs", "warmup_min_secs"):
        if getattr(flags, name) < 0:
            raise BenchmarkFailed(f"Invalid --{name}={getattr(flags, name)}: it must not be negative")
    if flags.num_runs == 0 and flags.min_secs == 0:
        raise BenchmarkFailed("--num_runs=0 with --min_secs=0 measures nothing: raise one of them")
    if flags.xnnpack_force_fp16 and not flags.use_xnnpack:
        raise BenchmarkFailed("--xnnpack_force_fp16=true needs --use_xnnpack=true: without XNNPACK nothing runs in fp16")
    input_layers(flags)


@dataclass(frozen=True)
class InputLayer:
    """One ``--input_layer`` with its ``--input_layer_shape`` and, when given, its value file."""

    name: str
    shape: tuple[int, ...]
    value_file: str | None = None


def input_layers(flags: BenchFlags) -> list[InputLayer]:
    """``--input_layer``, ``--input_layer_shape`` and ``--input_layer_value_files`` read as
    benchmark_model reads them (value files: ``name:path`` items, ``::`` for a ``:`` in either).

    Raises:
        BenchmarkFailed: with benchmark_model's message for each mistake.
    """
    names = flags.input_layer.split(",") if flags.input_layer else []
    shapes = flags.input_layer_shape.split(":") if flags.input_layer_shape else []
    if len(names) != len(shapes):
        raise BenchmarkFailed(
            f"The number of items in --input_layer_shape ({flags.input_layer_shape}, with {len(shapes)} items) must "
            f"match the number of items in --input_layer ({flags.input_layer}, with {len(names)} items). For example "
            "--input_layer=input1,input2 --input_layer_shape=1,224,224,4:1,20"
        )
    parsed: dict[str, list[int]] = {}
    for name, text in zip(names, shapes):
        if not all(_INT.match(part) for part in text.split(",")):
            raise BenchmarkFailed(f"Incorrect size string specified: {text}")
        dims = [int(part) for part in text.split(",")]
        if -1 in dims:
            raise BenchmarkFailed(
                "Any unknown sizes in the shapes (-1's) must be replaced with the size you want to benchmark with."
            )
        parsed[name] = dims
    files: dict[str, str] = {}
    for item in flags.input_layer_value_files.split(",") if flags.input_layer_value_files else []:
        pieces = re.split(r"(?<!:):(?!:)", item)
        if len(pieces) != 2 or not pieces[0] or not pieces[1]:
            raise BenchmarkFailed(f"Wrong input value file item specified: {item}")
        name, path = (piece.replace("::", ":") for piece in pieces)
        if name not in parsed:
            raise BenchmarkFailed(f"Cannot find the corresponding input_layer name({name}) in --input_layer as "
                                  f"{flags.input_layer}")
        files[name] = path
    return [InputLayer(name, tuple(dims), files.get(name)) for name, dims in parsed.items()]


def usage() -> str:
    """``--help``'s text: every flag with its default, type and meaning."""
    lines = ["usage: python -m device_agent bench --graph=MODEL.tflite [--flag=value ...]", "Flags:"]
    for f in fields(BenchFlags):
        default = str(f.default).lower() if isinstance(f.default, bool) else _shown(f.default)
        lines.append(f"\t--{f.name}={default}\t{f.type}\t{_HELP[f.name]}")
    return "\n".join(lines) + "\n"


def _shown(value: object) -> str:
    """A flag value as benchmark_model lists it: booleans as 1/0, floats as C++ prints them."""
    if isinstance(value, bool):
        return str(int(value))
    return format_number(value) if isinstance(value, float) else str(value)


def param_lines(parsed: ParsedArgs) -> list[str]:
    """The parameters benchmark_model logs before it loads the model, in its order, without ``INFO: ``.

    Those it lists only when given on the command line are left out otherwise.
    """
    f, explicit = parsed.flags, parsed.explicit

    def shown(name: str) -> str:
        return _shown(getattr(f, name))

    def given(*names: str) -> list[str]:
        return [f"{_PARAM_TITLES[name]}: [{shown(name)}]" for name in names if name in explicit]

    return [
        "Log parameter values verbosely: [0]",
        *given("num_runs", "min_secs", "max_secs", "run_delay"),
        f"Num threads: [{f.num_threads}]",
        *given("warmup_runs", "warmup_min_secs"),
        f"Graph: [{f.graph}]",
        f"#threads used for CPU inference: [{f.num_threads}]",
        f"Use xnnpack: [{shown('use_xnnpack')}]",
        *given("xnnpack_force_fp16"),
        *given("input_layer", "input_layer_shape", "input_layer_value_files"),
        *given("report_peak_memory_footprint", "samples_file", "count_instructions", "enable_op_profiling"),
        *given("output_filepath"),
    ]
