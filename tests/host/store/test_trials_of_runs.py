"""Loading the trials of many runs at once (the results site) gives what loading each run gives."""

from __future__ import annotations

import dataclasses

import numpy as np

from host.store import Store
from tests.host.synthetic import add_synthetic_run, emulated_device, model_file, phone, synthetic_trial


def test_trials_of_runs_equal_each_runs_trials(store: Store) -> None:
    first = add_synthetic_run(store, trials=2, seed=1)
    failing = add_synthetic_run(store, trials=2, seed=2, failing=("pruned.tflite",))
    odd = store.start_run("bench", {})
    rng = np.random.default_rng(3)
    dense = model_file("dense.tflite", "dense")
    renamed = dataclasses.replace(dense, name="same-bytes.tflite")  # one artifact, two file names
    store.save_trials(
        [
            synthetic_trial(odd, phone(), dense, latency_us=100.0, rng=rng),
            synthetic_trial(odd, phone(), renamed, latency_us=100.0, rng=rng, position=1, keep_samples=False),
            dataclasses.replace(
                synthetic_trial(odd, emulated_device(), dense, latency_us=90.0, rng=rng, position=2), tool=None
            ),
        ]
    )
    empty = store.start_run("bench", {})
    loaded = store.load_trials_of_runs([first, failing, odd, empty, 9999])
    assert set(loaded) == {first, failing, odd}  # no trials, or no run: no entry
    for run_id in (first, failing, odd):
        assert loaded[run_id] == store.load_trials(run_id)
    names = [t.model.name for t in loaded[odd]]
    assert names == ["dense.tflite", "same-bytes.tflite", "dense.tflite"] and loaded[odd][2].tool is None
    assert loaded[odd][1].samples_us is None and any(t.status == "failed" for t in loaded[failing])
