"""Pruning for XNNPACK: prune_low_magnitude with PolynomialDecay and PruneForLatencyOnXNNPack,
fine-tuning with UpdatePruningStep, strip_pruning, then a measured check of every 1x1 kernel.

Why the schedule's frequency is chosen here: PolynomialDecay updates the masks only at steps
where ``(step - begin_step) % frequency == 0``, and its default frequency is 100. With fewer
than 100 steps before ``end_step`` (2,000 samples, batch 128, 2 epochs: end_step 30) no mask is
ever updated and the model leaves pruning with sparsity 0, silently. ``pruning_frequency`` keeps
100 as a ceiling, makes about ten updates over short phases, and always divides ``end_step`` so
the last update lands on the final sparsity.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from host.builder import _tf
from host.builder.progress import BuildProgress
from host.builder.spec import Hyperparameters
from host.builder.train import Inputs, compile_model, fit
from host.errors import BuildError

__all__ = [
    "XNNPACK_MIN_SPARSITY",
    "PruningSchedule",
    "LayerSparsity",
    "pruning_frequency",
    "make_schedule",
    "prune_and_fine_tune",
    "measure_sparsity",
    "require_sparsity",
]

XNNPACK_MIN_SPARSITY = 2 / 3
"""XNNPACK runs a 1x1 convolution with sparse kernels only when at least 2/3 of its weights are zero."""

_DEFAULT_FREQUENCY = 100  # tfmot's PolynomialDecay default


@dataclass(frozen=True)
class PruningSchedule:
    """The PolynomialDecay actually used (recorded in the manifest)."""

    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    power: int
    steps_per_epoch: int

    def as_dict(self) -> dict[str, Any]:
        return {"schedule": "PolynomialDecay", "policy": "PruneForLatencyOnXNNPack", **asdict(self)}


@dataclass(frozen=True)
class LayerSparsity:
    """Zeros in one 1x1 Conv2D kernel of the stripped Keras model."""

    layer: str
    kernel_shape: tuple[int, ...]
    zeros: int
    size: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.size if self.size else 0.0


def pruning_frequency(end_step: int, begin_step: int = 0) -> int:
    """Mask-update interval for a pruning phase of ``end_step - begin_step`` steps.

    The largest divisor of the phase length that is at most ``min(100, length // 10)`` (at least
    1): never tfmot's silent no-op, about ten or more updates, the last one exactly at ``end_step``.
    """
    length = end_step - begin_step
    if length < 1:
        raise BuildError(f"pruning phase has {length} steps: it needs at least 1")
    ceiling = max(1, min(_DEFAULT_FREQUENCY, length // 10))
    return max(d for d in range(1, ceiling + 1) if length % d == 0)


def make_schedule(hp: Hyperparameters, steps_per_epoch: int) -> PruningSchedule:
    end_step = steps_per_epoch * hp.prune_epochs
    return PruningSchedule(
        initial_sparsity=hp.initial_sparsity,
        final_sparsity=hp.final_sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=pruning_frequency(end_step),
        power=3,
        steps_per_epoch=steps_per_epoch,
    )


def prune_and_fine_tune(
    model: Any, inputs: Inputs, hp: Hyperparameters, from_logits: bool, progress: BuildProgress
) -> tuple[Any, PruningSchedule, dict[str, list[float]]]:
    """Prunes a copy of ``model`` (whose weights stay dense) and returns the stripped result.

    prune_low_magnitude wraps the layer objects it is given, so pruning ``model`` itself would
    zero the dense model's kernels too; the guide avoids that by pruning a second model.
    """
    keras = _tf.tf_keras()
    tfmot = _tf.tfmot()
    base = keras.models.clone_model(model)
    base.set_weights(model.get_weights())
    schedule = make_schedule(hp, inputs.steps_per_epoch)
    pruning = tfmot.sparsity.keras.prune_low_magnitude(
        base,
        pruning_schedule=tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=schedule.initial_sparsity,
            final_sparsity=schedule.final_sparsity,
            begin_step=schedule.begin_step,
            end_step=schedule.end_step,
            power=schedule.power,
            frequency=schedule.frequency,
        ),
        pruning_policy=tfmot.sparsity.keras.PruneForLatencyOnXNNPack(),
    )
    compile_model(pruning, from_logits)
    history = fit(
        pruning, inputs, hp.fine_tune_epochs, "prune", progress, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
    )
    stripped = tfmot.sparsity.keras.strip_pruning(pruning)
    compile_model(stripped, from_logits)
    return stripped, schedule, history


def measure_sparsity(model: Any) -> list[LayerSparsity]:
    """Zeros in each 1x1 Conv2D kernel of ``model`` (the layers PruneForLatencyOnXNNPack prunes)."""
    keras = _tf.tf_keras()
    found: list[LayerSparsity] = []
    for layer in model.layers:
        if type(layer) is keras.layers.Conv2D and tuple(layer.kernel_size) == (1, 1):
            kernel = layer.kernel.numpy()
            zeros = int(kernel.size - np.count_nonzero(kernel))
            found.append(LayerSparsity(layer.name, tuple(kernel.shape), zeros, int(kernel.size)))
    return found


def require_sparsity(layers: list[LayerSparsity], target: float) -> None:
    """Raises BuildError when a 1x1 kernel has fewer zeros than ``target`` asks.

    tfmot's mask keeps the ``round(n * (1 - target))`` largest of a kernel's n weights, so a kernel
    passes with at least ``n - ceil(n * (1 - target))`` zeros; fewer means pruning did not happen
    (or was undone).
    """
    if not layers:
        raise BuildError("the model has no 1x1 Conv2D layers: nothing was pruned")
    short = [
        f"{s.layer} {s.sparsity:.3f}"
        for s in layers
        if s.zeros < s.size - math.ceil(s.size * (1 - target) - 1e-9)
    ]
    if short:
        raise BuildError(
            f"pruning fell short of the {target:.2f} sparsity target on {', '.join(short)}; XNNPACK needs at least "
            f"{XNNPACK_MIN_SPARSITY:.3f} zeros in each 1x1 kernel: raise --prune-epochs/--fine-tune-epochs or check "
            "the pruning schedule"
        )
