"""Options shared by several commands, declared once.

A benchmark's settings are ``BenchRequest``'s fields (``host.records``): ``REQUEST_OPTIONS``
declares each one's flag and help, and takes its type and default from the record. A command
decorated with ``request_options`` gets those options in place of its ``request`` parameter and
is called with the checked ``BenchRequest`` they make. A new setting is a field of the record and
one line here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from typer.models import OptionInfo

from host.records import BenchRequest, TrialParams

__all__ = ["JsonOpt", "SerialOpt", "VariantsOpt", "XnnpackFp16Opt", "RequestOption", "REQUEST_OPTIONS", "request_options"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
SerialOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--device",
        "-s",
        help="Device serial (repeatable). Default: every attached device.",
        show_default=False,
    ),
]
VariantsOpt = Annotated[
    str,
    typer.Option(
        "--variants",
        help="Models to make, comma-separated: dense, pruned (always), dense-fp16, pruned-fp16, dense-int8, "
        "pruned-int8, dense-dynamic; or all.",
    ),
]

XnnpackFp16Opt = Annotated[
    bool,
    typer.Option(
        "--xnnpack-fp16",
        help="XNNPACK computes float operators in float16 (benchmark_model's --xnnpack_force_fp16); by default it "
        "unpacks fp16 weights and computes in float32. Needs a core with fp16 arithmetic.",
    ),
]

_DEFAULT = BenchRequest()
_TRIAL_FIELDS = frozenset(f.name for f in dataclasses.fields(TrialParams))
_TYPES = {**typing.get_type_hints(TrialParams), **typing.get_type_hints(BenchRequest)}


@dataclass(frozen=True)
class RequestOption:
    """A ``BenchRequest`` setting as a command-line option: the field (of the request, or of its
    ``TrialParams``) and its flag; the type and the default come from the record."""

    field: str
    option: OptionInfo

    @property
    def default(self) -> Any:
        return getattr(_DEFAULT.params if self.field in _TRIAL_FIELDS else _DEFAULT, self.field)

    def parameter(self, default: Any = dataclasses.MISSING) -> inspect.Parameter:
        """The command parameter Typer reads this option from (``default``: the command's own)."""
        return inspect.Parameter(
            self.field,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[_TYPES[self.field], self.option],
            default=self.default if default is dataclasses.MISSING else default,
        )


REQUEST_OPTIONS = (
    RequestOption("threads", typer.Option("--threads", help="Interpreter threads (--num_threads).")),
    RequestOption("runs", typer.Option("--runs", help="Measured invokes per trial (--num_runs).")),
    RequestOption("warmup_runs", typer.Option("--warmup", help="Warm-up invokes per trial (--warmup_runs).")),
    RequestOption("min_secs", typer.Option("--min-secs", help="Measured runs last at least S seconds (--min_secs).")),
    RequestOption("use_xnnpack", typer.Option("--xnnpack/--no-xnnpack", help="Run with the XNNPACK delegate.")),
    RequestOption(
        "timeout_s", typer.Option("--timeout", help="Seconds one trial may take before it counts as timed out.")
    ),
    RequestOption("trials", typer.Option("--trials", help="Trials per model and device (interleaved).")),
    RequestOption("cooldown_s", typer.Option("--cooldown", help="Seconds to pause between trials.")),
    RequestOption(
        "max_temp_c",
        typer.Option("--max-temp", help="Before each trial, wait (bounded) until every thermal zone is below C °C."),
    ),
    RequestOption(
        "max_temp_wait_s",
        typer.Option("--max-temp-wait", help="The most seconds each trial waits for --max-temp; then it runs anyway, "
                     "the temperature recorded."),
    ),
    RequestOption(
        "cores",
        typer.Option(
            "--cores",
            help="Pin benchmark_model with taskset: big (the highest-frequency cluster), little (the lowest), "
            "or CPUs such as 4-7 or 0,2 of the device's topology.",
        ),
    ),
    RequestOption("seed", typer.Option("--seed", help="Seed of the shuffled trial order.")),
    RequestOption("binary", typer.Option("--binary", help="A benchmark_model to push and use for this run only.")),
    RequestOption(
        "verify",
        typer.Option(
            "--verify",
            metavar="K",
            help="After the trials, run each model on K inputs on the device and compare its outputs with the "
            "host's (LiteRT without XNNPACK); wrong outputs fail the run. 0: off.",
        ),
    ),
    RequestOption(
        "wait_for_device",
        typer.Option(
            "--wait/--no-wait",
            help="A device another run is using: wait for it, or fail its trials at once.",
        ),
    ),
)
"""Every setting a command line can give; a command leaves out the ones it cannot honour."""

Command = TypeVar("Command", bound=Callable[..., Any])


def request_options(
    *, exclude: Collection[str] = (), defaults: Mapping[str, Any] | None = None
) -> Callable[[Command], Command]:
    """Replaces the command's ``request`` parameter by one option per ``REQUEST_OPTIONS`` entry
    (but the fields in ``exclude``), and calls the command with the ``BenchRequest`` they make.
    ``defaults`` gives a command its own default for a setting (``lab run`` checks outputs unless told not to).

    The request is checked first (``BenchRequest.check``), so a bad value stops the command
    before it builds or looks for devices.
    """
    defaults = dict(defaults or {})
    unknown = (set(exclude) | set(defaults)) - {o.field for o in REQUEST_OPTIONS}
    if unknown:
        raise ValueError(f"not a request option: {', '.join(sorted(unknown))}")
    chosen = [o for o in REQUEST_OPTIONS if o.field not in exclude]

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = list(signature.parameters.values())
        at = [p.name for p in own].index("request")
        mine = (o.parameter(defaults.get(o.field, dataclasses.MISSING)) for o in chosen)
        parameters = [*own[:at], *mine, *own[at + 1 :]]

        @functools.wraps(command)
        def with_request(*args: Any, **kwargs: Any) -> Any:
            values = {o.field: kwargs.pop(o.field) for o in chosen}
            params = {k: v for k, v in values.items() if k in _TRIAL_FIELDS}
            rest = {k: v for k, v in values.items() if k not in _TRIAL_FIELDS}
            request = BenchRequest(params=TrialParams(**params), **rest)
            request.check()
            return command(*args, request=request, **kwargs)

        with_request.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        with_request.__annotations__ = {p.name: p.annotation for p in parameters}
        return with_request  # type: ignore[return-value]

    return decorate
