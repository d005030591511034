"""Trial plans: every model once per block, counterbalanced pairs of blocks, reproducible."""

from __future__ import annotations

from collections import Counter

import pytest

from host.bench.plan import plan_trials


def test_blocks_hold_every_model_once() -> None:
    plan = plan_trials(3, 6, seed=1)
    assert [p.position for p in plan] == list(range(18))
    for block in range(6):
        chunk = plan[block * 3 : block * 3 + 3]
        assert sorted(p.model_index for p in chunk) == [0, 1, 2]
        assert {p.trial_index for p in chunk} == {block}


def test_pairs_of_blocks_are_mirrored() -> None:
    plan = plan_trials(2, 4, seed=7)
    orders = [[p.model_index for p in plan[i : i + 2]] for i in range(0, 8, 2)]
    assert orders[1] == orders[0][::-1] and orders[3] == orders[2][::-1]
    first_positions = Counter(order[0] for order in orders)
    assert first_positions[0] == first_positions[1] == 2  # each model leads half the blocks


def test_seed_reproduces_and_varies() -> None:
    assert plan_trials(4, 5, seed=3) == plan_trials(4, 5, seed=3)
    orders = {tuple(p.model_index for p in plan_trials(4, 1, seed=s)) for s in range(20)}
    assert len(orders) > 1


def test_single_model() -> None:
    assert [(p.model_index, p.trial_index) for p in plan_trials(1, 3)] == [(0, 0), (0, 1), (0, 2)]


def test_bad_sizes() -> None:
    with pytest.raises(ValueError):
        plan_trials(0, 3)
    with pytest.raises(ValueError):
        plan_trials(2, 0)
