"""Live progress on the CLI's stderr console: the build's, the bench's and ``lab run``'s.

Each implements a service's progress protocol (``host.builder.BuildProgress``,
``host.bench.BenchProgress``, ``host.experiment.RunProgress``) with rich, and is a context manager
around the work it shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from host.cli.emulator import RichPrepareProgress

if TYPE_CHECKING:
    from host.builder import Stage
    from host.records import DeviceFacts, Trial

__all__ = ["RichBuildProgress", "RichBenchProgress", "RichRunProgress"]


class RichBuildProgress:
    """``BuildProgress``: one line per stage, a bar for epochs. ``lab build`` and ``lab run`` use it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=console,
            transient=False,
        )
        self.tasks: dict[Stage, TaskID] = {}
        self.totals: dict[Stage, int] = {}

    def __enter__(self) -> RichBuildProgress:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is not None:
            for task in self.progress.tasks:
                if not task.finished:
                    self.progress.update(task.id, description=f"[red]✗ {task.description}[/]")
                    self.progress.stop_task(task.id)
        self.progress.stop()

    def stage_started(self, stage: Stage, epochs: int | None) -> None:
        from host.builder import STAGES

        self.tasks[stage] = self.progress.add_task(STAGES[stage], total=epochs or 1, metrics="")
        self.totals[stage] = epochs or 1

    def epoch_finished(self, stage: Stage, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        shown = "  ".join(f"{k}={v:.3f}" for k, v in metrics.items() if k in ("loss", "accuracy", "val_accuracy"))
        self.progress.update(self.tasks[stage], completed=epoch, metrics=shown)

    def stage_finished(self, stage: Stage, seconds: float) -> None:
        task = self.tasks[stage]
        self.progress.update(task, completed=self.totals[stage])
        self.progress.stop_task(task)

    def note(self, message: str) -> None:
        self.progress.console.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


class RichBenchProgress:
    """``BenchProgress``: a bar across all trials, with device notes and failures printed above it."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]bench[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task: Any = None
        self._failed = 0

    def __enter__(self) -> RichBenchProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, total_trials: int, devices: Sequence[DeviceFacts]) -> None:
        self._task = self._progress.add_task("bench", total=total_trials, failed=0)
        names = ", ".join(d.serial for d in devices)
        self._progress.console.print(f"{total_trials} trials on {len(devices)} device(s): {escape(names)}", highlight=False)

    def note(self, serial: str, message: str) -> None:
        self._progress.console.print(f"[dim]{escape(serial)}[/]: {escape(message)}", highlight=False)

    def trial_done(self, trial: Trial) -> None:
        if trial.status != "ok":
            self._failed += 1
            self._progress.console.print(
                f"[yellow]{escape(trial.device.serial)}[/] {escape(trial.model.name)} #{trial.index + 1}: "
                f"{trial.status}: {escape(trial.error or '')}",
                highlight=False,
            )
        if self._task is not None:
            self._progress.update(self._task, advance=1, failed=self._failed)


class RichRunProgress:
    """``RunProgress``: stage lines, with the build's, the arm64 userland's and the bench's own
    displays in between (one live display at a time)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def stage(self, message: str) -> None:
        self.console.print(f"[bold cyan]▶[/] {escape(message)}", highlight=False)

    @contextmanager
    def building(self) -> Iterator[RichBuildProgress]:
        with RichBuildProgress(self.console) as progress:
            yield progress

    @contextmanager
    def preparing(self) -> Iterator[RichPrepareProgress]:
        with RichPrepareProgress(self.console) as progress:
            yield progress

    @contextmanager
    def benching(self) -> Iterator[RichBenchProgress]:
        with RichBenchProgress(self.console) as progress:
            yield progress
