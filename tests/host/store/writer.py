"""A separate process that writes trials into a store: `python writer.py URL BATCHES BATCH_SIZE SEED`.

Prints ``saved N`` after each committed batch (flushed), so a test can kill it mid-write.
BATCHES 0 means: keep writing until killed.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

from host.store import open_store
from tests.host.synthetic import model_file, phone, synthetic_trial


def main(url: str, batches: int, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    device = phone(serial=f"writer-{seed}")
    with open_store(url) as store:
        run_id = store.start_run("bench", {"writer": seed})
        print(f"run {run_id}", flush=True)
        saved = 0
        for batch in itertools.count() if batches == 0 else range(batches):
            trials = [
                synthetic_trial(run_id, device, model_file(), latency_us=100, rng=rng, position=batch * size + i,
                                runs=200)
                for i in range(size)
            ]
            store.save_trials(trials) if size > 1 else store.save_trial(trials[0])
            saved += size
            print(f"saved {saved}", flush=True)
        store.finish_run(run_id, "ok")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
