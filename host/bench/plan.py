"""The order of trials on a device: models interleaved in shuffled, counterbalanced blocks.

Each block runs every model once. Blocks come in pairs: a fresh random order, then the same order
reversed (A B C, C B A, B A C, C A B, …), so slow drift (heat, background load) hits each model
at every position alike and no model always runs right after another.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["PlannedTrial", "plan_trials"]


@dataclass(frozen=True)
class PlannedTrial:
    position: int  # 0-based place in the device's run order
    model_index: int  # index into the models list
    trial_index: int  # 0-based trial number of this model


def plan_trials(n_models: int, trials: int, seed: int = 0) -> list[PlannedTrial]:
    """``trials`` blocks of ``n_models`` trials each; the same seed gives the same plan.

    Raises:
        ValueError: fewer than one model or trial.
    """
    if n_models < 1 or trials < 1:
        raise ValueError(f"a plan needs at least one model and one trial, got {n_models} and {trials}")
    rng = random.Random(seed)
    plan: list[PlannedTrial] = []
    order = list(range(n_models))
    for block in range(trials):
        if block % 2 == 0:
            rng.shuffle(order)
        else:
            order.reverse()
        for model_index in order:
            plan.append(PlannedTrial(len(plan), model_index, block))
    return plan
