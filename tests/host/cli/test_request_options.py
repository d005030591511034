"""The benchmark settings' options are declared once (``host.cli.options``): their defaults are
``BenchRequest``'s, every command that takes them gets the same request, and bad values are
refused by ``BenchRequest.check`` before the command runs."""

from __future__ import annotations

import dataclasses

import pytest
import typer
from typer.testing import CliRunner

from host.cli.options import REQUEST_OPTIONS, request_options
from host.errors import UsageError
from host.records import BenchRequest, TrialParams

NOT_OPTIONS = {"params", "extra_flags"}  # set by commands (--ops, --xnnpack-fp16)


def _app(**exclude: tuple[str, ...]) -> tuple[typer.Typer, list[BenchRequest]]:
    seen: list[BenchRequest] = []
    app = typer.Typer()

    @app.command()
    @request_options(**exclude)
    def command(name: str, request: BenchRequest = BenchRequest(), loud: bool = False) -> None:
        seen.append(request)

    return app, seen


def test_every_setting_has_one_option() -> None:
    fields = {f.name for cls in (BenchRequest, TrialParams) for f in dataclasses.fields(cls)} - NOT_OPTIONS
    assert sorted(o.field for o in REQUEST_OPTIONS) == sorted(fields)


def test_defaults_are_the_records() -> None:
    app, seen = _app()
    result = CliRunner().invoke(app, ["x"])
    assert result.exit_code == 0, result.output
    assert seen == [BenchRequest()]


def test_options_make_the_request() -> None:
    app, seen = _app()
    args = ["x", "--threads", "4", "--runs", "7", "--warmup", "0", "--min-secs", "0.5", "--no-xnnpack", "--timeout", "9",
            "--trials", "3", "--cooldown", "1.5", "--max-temp", "40", "--max-temp-wait", "30", "--seed", "2", "--binary", "/bm", "--no-wait",
            "--loud"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen == [BenchRequest(
        params=TrialParams(threads=4, runs=7, warmup_runs=0, use_xnnpack=False, min_secs=0.5, timeout_s=9.0),
        trials=3, cooldown_s=1.5, max_temp_c=40.0, max_temp_wait_s=30.0, seed=2, binary="/bm", wait_for_device=False,
    )]


def test_an_excluded_setting_is_no_option() -> None:
    app, seen = _app(exclude=("timeout_s",))
    assert CliRunner().invoke(app, ["x", "--timeout", "9"]).exit_code == 2
    assert seen == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "--trials must be between 1 and 10,000, got 0"),
        (["--runs", "0"], "--runs must be between 1 and 10,000,000, got 0"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
        (["--cooldown", "-1"], "--cooldown must not be negative, got -1"),
        (["--max-temp-wait", "-1"], "--max-temp-wait must not be negative, got -1"),
    ],
)
def test_bad_values_are_refused_before_the_command_runs(args: list[str], message: str) -> None:
    app, seen = _app()
    result = CliRunner().invoke(app, ["x", *args])
    assert isinstance(result.exception, UsageError) and str(result.exception) == message
    assert seen == []


def test_an_unknown_exclusion_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not a request option: thread"):
        request_options(exclude=("thread",))
