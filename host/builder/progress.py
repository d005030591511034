"""How a build reports what it is doing: a small protocol the CLI implements with rich
(``host.cli.render.progress``).

Stages, in order: ``dataset``, ``check``, ``train``, ``prune``, ``convert``, ``evaluate``. Only
``train`` and ``prune`` have epochs. Epoch updates come at the end of each epoch (never per batch:
a per-batch Keras callback makes every step wait for its metrics and slows training down).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

__all__ = ["Stage", "STAGES", "BuildProgress", "NullProgress"]

Stage = Literal["dataset", "check", "train", "prune", "convert", "evaluate"]

STAGES: dict[Stage, str] = {
    "dataset": "Load dataset",
    "check": "Check model for XNNPACK sparse inference",
    "train": "Train dense model",
    "prune": "Prune and fine-tune",
    "convert": "Convert to TFLite and verify",
    "evaluate": "Evaluate accuracy",
}
"""Each stage's human description, in pipeline order."""


class BuildProgress(Protocol):
    def stage_started(self, stage: Stage, epochs: int | None) -> None:
        """A stage begins; ``epochs`` is its number of epochs (None for stages without)."""

    def epoch_finished(self, stage: Stage, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` ended with Keras' logs (loss, accuracy, val_…)."""

    def stage_finished(self, stage: Stage, seconds: float) -> None:
        """A stage ended after ``seconds``."""

    def note(self, message: str) -> None:
        """Something the user should know (a warning, a fix applied); one line."""


class NullProgress:
    """Reports nothing (library use, tests, containers)."""

    def stage_started(self, stage: Stage, epochs: int | None) -> None:
        pass

    def epoch_finished(self, stage: Stage, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        pass

    def stage_finished(self, stage: Stage, seconds: float) -> None:
        pass

    def note(self, message: str) -> None:
        pass
