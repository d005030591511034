"""Pruning: the schedule's frequency, and the sparsity check after strip_pruning."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from host.builder.prune import LayerSparsity, measure_sparsity, pruning_frequency, require_sparsity
from host.errors import BuildError


@pytest.mark.parametrize("end_step", [1, 2, 7, 9, 10, 30, 31, 40, 352 * 5, 1759, 100_000])
def test_frequency_divides_the_phase_and_never_exceeds_tfmots_default(end_step: int) -> None:
    frequency = pruning_frequency(end_step)
    assert 1 <= frequency <= 100
    assert end_step % frequency == 0  # the last update lands on end_step: the final sparsity
    assert end_step // frequency >= min(10, end_step)  # about ten updates or more, even on tiny data


def test_frequency_refuses_an_empty_phase() -> None:
    with pytest.raises(BuildError, match="at least 1"):
        pruning_frequency(0)


def test_require_sparsity_allows_only_tfmots_rounding() -> None:
    require_sparsity([LayerSparsity("pw", (1, 1, 8, 16), 96, 128)], 0.75)
    require_sparsity([LayerSparsity("pw", (1, 1, 2, 5), 7, 10)], 0.75)  # keeps round(2.5) of 10: 2 or 3
    with pytest.raises(BuildError, match="pw 0.690"):
        require_sparsity([LayerSparsity("pw", (1, 1, 10, 10), 69, 100)], 0.7)
    with pytest.raises(BuildError, match=r"fell short of the 0.75 sparsity target on pw 0.742"):
        require_sparsity([LayerSparsity("pw", (1, 1, 8, 16), 95, 128)], 0.75)
    with pytest.raises(BuildError, match="no 1x1 Conv2D"):
        require_sparsity([], 0.75)


@pytest.mark.tf
def test_an_unpruned_model_fails_the_check_loudly() -> None:
    from host.builder.recipes import xnnpack_cnn

    layers = measure_sparsity(xnnpack_cnn())
    assert [(s.layer, s.size) for s in layers] == [("pw1", 128), ("pw2", 512)]
    with pytest.raises(BuildError, match=r"pw1 0\.000, pw2 0\.000; XNNPACK needs at least 0\.667 zeros"):
        require_sparsity(layers, 0.75)


def _pruned_sparsity(frequency: int) -> float:
    """Prunes the recipe over 30 steps (end_step 30) with ``frequency`` and returns pw2's sparsity."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from host.builder.recipes import xnnpack_cnn

    model: Any = xnnpack_cnn()
    pruning = tfmot.sparsity.keras.prune_low_magnitude(
        model,
        pruning_schedule=tfmot.sparsity.keras.PolynomialDecay(0.25, 0.75, begin_step=0, end_step=30, frequency=frequency),
        pruning_policy=tfmot.sparsity.keras.PruneForLatencyOnXNNPack(),
    )
    pruning.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="adam")
    x = np.random.default_rng(0).random((480, 32, 32, 3), dtype=np.float32)
    y = np.arange(480) % 10
    pruning.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return measure_sparsity(tfmot.sparsity.keras.strip_pruning(pruning))[-1].sparsity


@pytest.mark.tf
def test_tfmots_default_frequency_leaves_short_phases_dense_and_ours_does_not() -> None:
    assert _pruned_sparsity(100) == 0.0  # the fact measured in the issue: nothing warns
    assert _pruned_sparsity(pruning_frequency(30)) == pytest.approx(0.75)
