"""Options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOpt", "SerialOpt", "ThreadsOpt", "RunsOpt", "TrialsOpt", "WarmupOpt"]

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
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="Interpreter threads (--num_threads).")]
RunsOpt = Annotated[int, typer.Option("--runs", min=1, help="Measured invokes per trial (--num_runs).")]
TrialsOpt = Annotated[int, typer.Option("--trials", min=1, help="Trials per model and device (interleaved).")]
WarmupOpt = Annotated[int, typer.Option("--warmup", min=0, help="Warm-up invokes per trial (--warmup_runs).")]
