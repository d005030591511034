"""`lab build` with the guide's full schedule against a plain script of the guide's code, same data.

    .venv/bin/python benchmarks/build_vs_guide.py                   # CIFAR-10's size: 50,000 + 10,000 (~25 min on 2 cores)
    .venv/bin/python benchmarks/build_vs_guide.py --size 10000      # a fifth of it (~5 min)
    .venv/bin/python benchmarks/build_vs_guide.py --summaries       # the guide's TensorBoard logging too (needs tensorboard)

Both run on the same synthetic images (``synthetic:SIZE``: SIZE training images split 90/10 as the
guide does, SIZE // 5 test images), saved once as an .npz: the lab reads it with
``--dataset npz:PATH``, the guide's script with numpy in place of ``tfds.load``. Everything else in
the script is the guide's code: 10 epochs dense (keepdims=False, then copied into the fixed model),
15 epochs of pruning reaching 0.75 after 5, ``UpdatePruningStep``, both evaluations,
``strip_pruning``, both conversions. The guide's ``PruningSummaries`` callback needs TensorBoard,
which the `build` extra does not install; it is left out unless ``--summaries`` (leaving it out
makes the baseline faster, so the comparison stricter). The lab does more (TFLite evaluation of both files,
flatbuffer inspection, sha256, manifest). Each side runs in a fresh process, alternating order when
repeated; the ratio is lab / guide of the median wall times (CPU times too: on a shared machine
they move less). Target: ratio <= 1.05.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from host.builder.datasets import load_dataset, parse_dataset

GUIDE = r'''
import json, sys, tempfile, time
t0 = time.perf_counter()
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

npz_path, out_dir, summaries = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
timings = {"import": time.perf_counter() - t0}
t = time.perf_counter()
with np.load(npz_path) as data:
    x_pool, y_pool, x_test, y_test = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
cut = len(y_pool) * 9 // 10  # split=['train[:90%]', 'train[90%:]', 'test']
ds_train = tf.data.Dataset.from_tensor_slices((x_pool[:cut], y_pool[:cut]))
ds_val = tf.data.Dataset.from_tensor_slices((x_pool[cut:], y_pool[cut:]))
ds_test = tf.data.Dataset.from_tensor_slices((x_test, y_test))

# ---- the guide's code from here on ----
def normalize_img(image, label):
  """Normalizes images: `uint8` -> `float32`."""
  return tf.image.convert_image_dtype(image, tf.float32), label
batch_size = 128
def prepare_dataset(ds, buffer_size=None):
  ds = ds.map(normalize_img, num_parallel_calls=tf.data.experimental.AUTOTUNE)
  ds = ds.cache()
  if buffer_size:
    ds = ds.shuffle(buffer_size)
  ds = ds.batch(batch_size)
  ds = ds.prefetch(tf.data.experimental.AUTOTUNE)
  return ds
ds_train = prepare_dataset(ds_train, buffer_size=len(y_pool))
ds_val = prepare_dataset(ds_val)
ds_test = prepare_dataset(ds_test)

def guide_model(keepdims):
  return keras.Sequential([
    keras.layers.InputLayer(input_shape=(32, 32, 3)),
    keras.layers.ZeroPadding2D(padding=1),
    keras.layers.Conv2D(filters=8, kernel_size=(3, 3), strides=(2, 2), padding='valid'),
    keras.layers.BatchNormalization(),
    keras.layers.ReLU(),
    keras.layers.DepthwiseConv2D(kernel_size=(3, 3), padding='same'),
    keras.layers.BatchNormalization(),
    keras.layers.ReLU(),
    keras.layers.Conv2D(filters=16, kernel_size=(1, 1)),
    keras.layers.BatchNormalization(),
    keras.layers.ReLU(),
    keras.layers.ZeroPadding2D(padding=1),
    keras.layers.DepthwiseConv2D(kernel_size=(3, 3), strides=(2, 2), padding='valid'),
    keras.layers.BatchNormalization(),
    keras.layers.ReLU(),
    keras.layers.Conv2D(filters=32, kernel_size=(1, 1)),
    keras.layers.BatchNormalization(),
    keras.layers.ReLU(),
    keras.layers.GlobalAveragePooling2D(keepdims=keepdims),
    keras.layers.Flatten(),
    keras.layers.Dense(10)
  ])
timings["data"] = time.perf_counter() - t
t = time.perf_counter()
dense_model = guide_model(keepdims=False)
dense_model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer='adam',
    metrics=['accuracy'])
dense_model.fit(ds_train, epochs=10, validation_data=ds_val)
_, dense_model_accuracy = dense_model.evaluate(ds_test, verbose=0)
timings["train"] = time.perf_counter() - t
t = time.perf_counter()

prune_low_magnitude = tfmot.sparsity.keras.prune_low_magnitude
end_epoch = 5
num_iterations_per_epoch = len(ds_train)
end_step = num_iterations_per_epoch * end_epoch
pruning_params = {
      'pruning_schedule': tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.25,
                                                               final_sparsity=0.75,
                                                               begin_step=0,
                                                               end_step=end_step),
      'pruning_policy': tfmot.sparsity.keras.PruneForLatencyOnXNNPack()
}
fixed_dense_model = guide_model(keepdims=True)
fixed_dense_model.set_weights(dense_model.get_weights())
model_for_pruning = prune_low_magnitude(fixed_dense_model, **pruning_params)
logdir = tempfile.mkdtemp()
callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
if summaries:
  callbacks.append(tfmot.sparsity.keras.PruningSummaries(log_dir=logdir))
model_for_pruning.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer='adam',
    metrics=['accuracy'])
model_for_pruning.fit(ds_train, epochs=15, validation_data=ds_val, callbacks=callbacks)
_, pruned_model_accuracy = model_for_pruning.evaluate(ds_test, verbose=0)
timings["prune"] = time.perf_counter() - t
t = time.perf_counter()

converter = tf.lite.TFLiteConverter.from_keras_model(dense_model)
dense_tflite_model = converter.convert()
with open(out_dir + '/dense.tflite', 'wb') as f:
  f.write(dense_tflite_model)
model_for_export = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
converter = tf.lite.TFLiteConverter.from_keras_model(model_for_export)
converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
pruned_tflite_model = converter.convert()
with open(out_dir + '/pruned.tflite', 'wb') as f:
  f.write(pruned_tflite_model)
timings["convert"] = time.perf_counter() - t
print("GUIDE-RESULT " + json.dumps({"timings_s": timings, "dense": dense_model_accuracy, "pruned": pruned_model_accuracy}))
'''


def _run_measured(command: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system), peak RSS (MiB) and stdout of one fresh process.

    wait4 gives this child's own rusage; CPU time is the figure less disturbed by other work on
    a shared machine.
    """
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stdout = child.stdout.read() if child.stdout is not None else b""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed with exit code {child.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss / 1024, stdout.decode(errors="replace")


def _write_npz(size: int, path: Path) -> None:
    data = load_dataset(parse_dataset(f"synthetic:{size}"), seed=0)
    np.savez(
        path,
        x_train=np.concatenate([data.x_train, data.x_val]),
        y_train=np.concatenate([data.y_train, data.y_val]),
        x_test=data.x_test,
        y_test=data.y_test,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=50_000, help="training images (CIFAR-10: 50000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side (alternating order)")
    parser.add_argument("--summaries", action="store_true", help="add the guide's PruningSummaries (needs tensorboard)")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lab-build-vs-guide-") as tmp:
        folder = Path(tmp)
        npz = folder / "data.npz"
        _write_npz(options.size, npz)
        script = folder / "guide.py"
        script.write_text(GUIDE)
        (folder / "guide_out").mkdir()
        guide = [sys.executable, str(script), str(npz), str(folder / "guide_out"), "1" if options.summaries else "0"]
        lab = [sys.executable, "-c", "from host.cli import main; main()", "--home", str(folder / "home")]
        lab += ["build", "--dataset", f"npz:{npz}", "--force", "--json"]

        results: dict[str, list[tuple[float, float, float, str]]] = {"guide": [], "lab": []}
        for i in range(options.repeat):
            order = [("guide", guide), ("lab", lab)] if i % 2 == 0 else [("lab", lab), ("guide", guide)]
            for name, command in order:
                results[name].append(_run_measured(command))
                wall, cpu = results[name][-1][:2]
                print(f"  run {i + 1} {name:<5} {wall:8.1f} s wall {cpu:8.1f} s CPU", flush=True)

    guide_stages = json.loads(results["guide"][-1][3].split("GUIDE-RESULT ", 1)[1])["timings_s"]
    lab_stages = json.loads(results["lab"][-1][3])["timings_s"]
    wall = {name: statistics.median(r[0] for r in runs) for name, runs in results.items()}
    cpu = {name: statistics.median(r[1] for r in runs) for name, runs in results.items()}
    ratio = wall["lab"] / wall["guide"]
    print(
        f"\nsynthetic:{options.size} (train {options.size * 9 // 10}, val {options.size - options.size * 9 // 10}, "
        f"test {options.size // 5}), guide schedule 10 + 15 epochs, batch 128, {os.cpu_count()} CPUs, "
        f"PruningSummaries {'on' if options.summaries else 'off'}"
    )
    for name in ("guide", "lab"):
        peak = max(r[2] for r in results[name])
        print(f"  {name:<5} wall median {wall[name]:8.1f} s   CPU median {cpu[name]:8.1f} s   peak RSS {peak:7.1f} MiB")
    print("  last run's stages, guide (s): " + ", ".join(f"{k} {v:.1f}" for k, v in guide_stages.items()))
    print("  last run's stages, lab (s):   " + ", ".join(f"{k} {v:.1f}" for k, v in lab_stages.items()))
    print(f"  ratio lab / guide = {ratio:.3f} wall, {cpu['lab'] / cpu['guide']:.3f} CPU"
          f"   (target <= 1.05 wall: {'met' if ratio <= 1.05 else 'MISSED'})")


if __name__ == "__main__":
    main()
