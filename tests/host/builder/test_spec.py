"""BuildSpec: the guide's defaults, --quick, explicit values, and every bad value (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.builder import GUIDE_DEFAULTS, BuildSpec
from host.errors import UsageError


def test_defaults_follow_the_guide() -> None:
    hp = BuildSpec().validate()
    assert (hp.epochs, hp.fine_tune_epochs, hp.prune_epochs, hp.batch_size) == (10, 15, 5, 128)
    assert (hp.initial_sparsity, hp.final_sparsity, hp.subset) == (0.25, 0.75, None)
    assert hp == GUIDE_DEFAULTS


def test_quick_is_one_epoch_each_on_a_subset_and_explicit_values_win() -> None:
    hp = BuildSpec(quick=True).hyperparameters()
    assert (hp.epochs, hp.prune_epochs, hp.fine_tune_epochs, hp.subset) == (1, 1, 1, 5000)
    assert hp.batch_size == 128 and hp.final_sparsity == 0.75
    mixed = BuildSpec(quick=True, epochs=3, subset=800, final_sparsity=0.8).hyperparameters()
    assert (mixed.epochs, mixed.prune_epochs, mixed.subset, mixed.final_sparsity) == (3, 1, 800, 0.8)


@pytest.mark.parametrize("sparsity", [0.0, 1.0, -0.2, 1.5])
def test_sparsity_outside_open_unit_interval_is_refused(sparsity: float) -> None:
    with pytest.raises(UsageError, match=r"--sparsity must be between 0 and 1"):
        BuildSpec(final_sparsity=sparsity).validate()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial_sparsity": 0.9}, "initial sparsity must be in"),
        ({"prune_epochs": 6, "fine_tune_epochs": 5}, "never reach the final sparsity"),
        ({"prune_epochs": 0}, "at least 1"),
        ({"epochs": -1}, "--epochs must be 0 or more"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"subset": 5}, "--subset must be at least 10"),
        ({"recipe": "resnet"}, "unknown recipe 'resnet'"),
    ],
)
def test_bad_values_name_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        BuildSpec(**options).validate()  # type: ignore[arg-type]


def test_a_model_path_replaces_the_recipe() -> None:
    BuildSpec(recipe="unknown", model_path=Path("m.keras")).validate()


def test_round_trips_through_a_dict() -> None:
    spec = BuildSpec(dataset="npz:/data/x.npz", model_path=Path("/m/a.keras"), epochs=2, quick=True, fix=True)
    data = spec.to_dict()
    assert data["model_path"] == "/m/a.keras"
    assert BuildSpec.from_dict(data) == spec
    with pytest.raises(UsageError, match="unknown build spec field"):
        BuildSpec.from_dict({**data, "epoch": 3})
