"""What to build: ``BuildSpec`` (the request) and ``Hyperparameters`` (its resolved numbers).

A hyper-parameter left as ``None`` in the spec takes the guide's value, or the ``--quick`` value
when ``quick`` is set; a value given explicitly always wins. ``BuildSpec.hyperparameters()`` is
the only place that applies these defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host.builder.variants import DEFAULT_VARIANTS, parse_variants
from host.errors import UsageError

__all__ = ["BuildSpec", "Hyperparameters", "GUIDE_DEFAULTS", "QUICK_DEFAULTS", "RECIPES"]

RECIPES = ("xnnpack-cnn",)
"""Built-in model recipes (see ``host.builder.recipes``)."""


@dataclass(frozen=True)
class Hyperparameters:
    """Every number that shapes the training, resolved (no ``None`` except ``subset``)."""

    epochs: int  # dense training epochs
    prune_epochs: int  # epochs for the schedule to go from initial to final sparsity
    fine_tune_epochs: int  # epochs of training with pruning (>= prune_epochs)
    batch_size: int
    initial_sparsity: float
    final_sparsity: float
    subset: int | None  # cap on training samples (validation and test: subset // 5); None: all
    seed: int


GUIDE_DEFAULTS = Hyperparameters(
    epochs=10,
    prune_epochs=5,
    fine_tune_epochs=15,
    batch_size=128,
    initial_sparsity=0.25,
    final_sparsity=0.75,
    subset=None,
    seed=0,
)
"""The guide's schedule: 10 dense epochs, 15 with pruning, final sparsity after 5, batch 128."""

QUICK_DEFAULTS: dict[str, Any] = {"epochs": 1, "prune_epochs": 1, "fine_tune_epochs": 1, "subset": 5000}
"""``--quick``: one epoch of each phase on at most 5,000 training samples (under 2 minutes on 2 cores)."""

_TUNABLE = ("epochs", "prune_epochs", "fine_tune_epochs", "batch_size", "initial_sparsity", "final_sparsity", "subset")


@dataclass(frozen=True)
class BuildSpec:
    """A build request.

    ``dataset``: ``synthetic``, ``synthetic:N``, ``cifar10``, ``npz:PATH`` or ``images:DIR``.
    ``model_path``: a tf_keras model (.keras, .h5 or a SavedModel folder) used instead of ``recipe``.
    ``fix``: rebuild a model whose only problem is GlobalAveragePooling2D(keepdims=False).
    ``variants``: which models to convert (``host.builder.variants``; dense and pruned always).
    Hyper-parameters left ``None`` take the guide's defaults (or the quick ones with ``quick``).
    """

    dataset: str = "synthetic"
    recipe: str = "xnnpack-cnn"
    model_path: Path | None = None
    epochs: int | None = None
    prune_epochs: int | None = None
    fine_tune_epochs: int | None = None
    batch_size: int | None = None
    initial_sparsity: float | None = None
    final_sparsity: float | None = None
    subset: int | None = None
    seed: int = 0
    quick: bool = False
    fix: bool = False
    variants: tuple[str, ...] = DEFAULT_VARIANTS

    def hyperparameters(self) -> Hyperparameters:
        """The resolved numbers: explicit values, else quick values (when ``quick``), else the guide's."""
        values = dataclasses.asdict(GUIDE_DEFAULTS)
        if self.quick:
            values.update(QUICK_DEFAULTS)
        for name in _TUNABLE:
            given = getattr(self, name)
            if given is not None:
                values[name] = given
        values["seed"] = self.seed
        return Hyperparameters(**values)

    def validate(self) -> Hyperparameters:
        """Checks every value and returns the hyper-parameters.

        Raises:
            UsageError: a value out of range, an unknown recipe or variant, or epochs that cannot
                reach the final sparsity; the message names the option to change.
        """
        hp = self.hyperparameters()
        parse_variants(self.variants)
        if self.model_path is None and self.recipe not in RECIPES:
            raise UsageError(f"unknown recipe {self.recipe!r}: use one of {', '.join(RECIPES)} or --model PATH")
        if not 0.0 < hp.final_sparsity < 1.0:
            raise UsageError(f"--sparsity must be between 0 and 1 (exclusive), got {hp.final_sparsity}")
        if not 0.0 <= hp.initial_sparsity <= hp.final_sparsity:
            raise UsageError(
                f"initial sparsity must be in [0, {hp.final_sparsity}] (the final sparsity), got {hp.initial_sparsity}"
            )
        if hp.epochs < 0:
            raise UsageError(f"--epochs must be 0 or more, got {hp.epochs}")
        if hp.prune_epochs < 1 or hp.fine_tune_epochs < 1:
            raise UsageError("--prune-epochs and --fine-tune-epochs must be at least 1")
        if hp.prune_epochs > hp.fine_tune_epochs:
            raise UsageError(
                f"--prune-epochs ({hp.prune_epochs}) exceeds --fine-tune-epochs ({hp.fine_tune_epochs}): "
                "the schedule would never reach the final sparsity; raise --fine-tune-epochs"
            )
        if hp.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {hp.batch_size}")
        if hp.subset is not None and hp.subset < 10:
            raise UsageError(f"--subset must be at least 10 samples, got {hp.subset}")
        return hp

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the manifest keeps it; a container build receives it)."""
        data = dataclasses.asdict(self)
        data["model_path"] = str(self.model_path) if self.model_path is not None else None
        data["variants"] = list(self.variants)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown build spec field(s): {', '.join(unknown)}")
        values = dict(data)
        if values.get("model_path") is not None:
            values["model_path"] = Path(values["model_path"])
        if "variants" in values:
            values["variants"] = tuple(values["variants"])
        return cls(**values)
