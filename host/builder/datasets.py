"""Datasets for the build: ``cifar10``, ``npz:PATH``, ``images:DIR`` and ``synthetic[:N]``.

Every loader returns a ``Dataset``: train / validation / test arrays in NHWC with integer labels.
Images stay ``uint8`` (0–255) when the source is ``uint8`` and are normalised to [0, 1] in the
training pipeline, as the guide's ``normalize_img`` does; float sources must already be in [0, 1].

Splits follow the guide: ``train[:90%]`` for training, ``train[90%:]`` for validation, and the
source's test split. ``synthetic:N`` makes N training images (then split 90/10) and N // 5 test
images; ``images:DIR`` holds one sub-folder per class and keeps a seeded 20 % of it for the test.

Parsing a name and ``identity`` (what the build id hashes) need neither TensorFlow nor the data
loaded; loading ``cifar10`` and ``images:DIR`` imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from host.builder import _tf
from host.errors import DatasetError
from host.hashing import file_sha256

__all__ = ["DatasetRef", "Dataset", "parse_dataset", "identity", "load_dataset", "SYNTHETIC_DEFAULT_N", "KERAS_CIFAR10"]

SYNTHETIC_DEFAULT_N = 2000
SYNTHETIC_CLASSES = 10
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif"})
KERAS_CIFAR10 = Path("~/.keras/datasets/cifar-10-batches-py.tar.gz")
"""Where ``keras.datasets.cifar10`` looks for (and downloads) its copy."""

_NAMES = "cifar10, synthetic, synthetic:N, npz:PATH or images:DIR"
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

Kind = Literal["synthetic", "cifar10", "npz", "images"]


@dataclass(frozen=True)
class DatasetRef:
    """A parsed ``--dataset`` value."""

    kind: Kind
    path: Path | None = None  # npz file or images folder
    size: int | None = None  # synthetic: number of training images

    def require_path(self) -> Path:
        if self.path is None:
            raise DatasetError(f"dataset {self.kind} needs a path: {self.kind}:PATH")
        return self.path

    def require_size(self) -> int:
        if self.size is None:
            raise DatasetError("synthetic dataset needs a size: synthetic:N")
        return self.size

    def __str__(self) -> str:
        if self.kind == "synthetic":
            return f"synthetic:{self.size}"
        if self.path is not None:
            return f"{self.kind}:{self.path}"
        return self.kind


@dataclass
class Dataset:
    """Arrays of one dataset, split three ways. ``x_*`` are NHWC, ``y_*`` 1-D int64."""

    ref: DatasetRef
    source: str  # where the data came from: "synthetic", "keras.datasets", "tfds", a path
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w, c = self.x_train.shape[1:]
        return int(h), int(w), int(c)

    @property
    def accuracy_meaningful(self) -> bool:
        """Synthetic images carry a learnable but made-up signal: their accuracy says nothing."""
        return self.ref.kind != "synthetic"

    def describe(self) -> dict[str, Any]:
        """The manifest's ``dataset`` entry (without the identity, which the cache adds)."""
        return {
            "name": str(self.ref),
            "kind": self.ref.kind,
            "source": self.source,
            "accuracy_meaningful": self.accuracy_meaningful,
            "num_classes": self.num_classes,
            "image_shape": list(self.image_shape),
            "dtype": str(self.x_train.dtype),
            "samples": {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)},
        }


def parse_dataset(name: str) -> DatasetRef:
    """``--dataset`` text to a DatasetRef.

    Raises:
        DatasetError: an unknown name, or ``synthetic:N`` with N not an integer of at least 10.
    """
    kind, sep, arg = name.strip().partition(":")
    if kind == "synthetic":
        if not sep:
            return DatasetRef("synthetic", size=SYNTHETIC_DEFAULT_N)
        if not arg.isdigit() or int(arg) < 10:
            raise DatasetError(f"bad dataset {name!r}: synthetic:N needs N, a whole number of images, of at least 10")
        return DatasetRef("synthetic", size=int(arg))
    if kind == "cifar10" and not sep:
        return DatasetRef("cifar10")
    if kind in ("npz", "images") and arg:
        return DatasetRef(kind, path=Path(arg).expanduser())
    raise DatasetError(f"unknown dataset {name!r}: use {_NAMES}")


def identity(ref: DatasetRef) -> dict[str, Any]:
    """What identifies the data without loading it (hashed into the build id).

    npz: the file's sha256; images: name, size and mtime of every file; cifar10: which loader
    reads it (TFDS and keras.datasets order images differently); synthetic: its size.

    Raises:
        DatasetError: the npz file or images folder does not exist.
    """
    if ref.kind == "synthetic":
        return {"kind": "synthetic", "size": ref.size, "classes": SYNTHETIC_CLASSES}
    if ref.kind == "cifar10":
        return {"kind": "cifar10", "loader": _cifar10_loader()}
    path = ref.require_path()
    if ref.kind == "npz":
        if not path.is_file():
            raise DatasetError(f"npz dataset not found: {path} (expected a .npz with {', '.join(_NPZ_KEYS)})")
        return {"kind": "npz", "sha256": file_sha256(path), "size_bytes": path.stat().st_size}
    if not path.is_dir():
        raise DatasetError(f"images dataset folder not found: {path} (expected one sub-folder per class)")
    listing = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        listing.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {"kind": "images", "listing_sha256": listing.hexdigest()}


def load_dataset(
    ref: DatasetRef, *, seed: int, image_size: tuple[int, int] = (32, 32), subset: int | None = None
) -> Dataset:
    """Loads ``ref``; ``image_size`` is used by synthetic and images (others keep their size).

    ``subset`` caps the training split (validation and test at ``subset // 5``), chosen with a
    seeded permutation so that class-sorted sources still give every class.

    Raises:
        DatasetError: the data is missing, unreadable or malformed; the message says what to fix.
        MissingExtraError: TensorFlow is needed (cifar10, images) and not installed.
    """
    if ref.kind == "synthetic":
        data = _synthetic(ref, ref.require_size(), seed, image_size)
    elif ref.kind == "cifar10":
        data = _cifar10(ref)
    elif ref.kind == "npz":
        data = _npz(ref)
    else:
        data = _images(ref, seed, image_size)
    if subset is not None:
        _take_subset(data, subset, seed)
    return data


def _cifar10_loader() -> str:
    return "tfds" if importlib.util.find_spec("tensorflow_datasets") is not None else "keras.datasets"


def _split_train_val(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The guide's ``train[:90%]`` / ``train[90%:]``."""
    cut = max(1, min(len(y) - 1, (len(y) * 9) // 10))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _take_subset(data: Dataset, subset: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    others = max(1, subset // 5)
    for split, cap in (("train", subset), ("val", others), ("test", others)):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if len(y) > cap:
            keep = np.sort(rng.permutation(len(y))[:cap])
            setattr(data, f"x_{split}", x[keep])
            setattr(data, f"y_{split}", y[keep])


def _synthetic(ref: DatasetRef, n: int, seed: int, image_size: tuple[int, int]) -> Dataset:
    """Seeded images: half a per-class random colour, half noise; labels uniform.

    Learnable (a pooled CNN finds the colour within an epoch), so training and pruning behave as
    on real data, but the accuracy means nothing.
    """
    rng = np.random.default_rng(seed)
    h, w = image_size
    templates = rng.integers(0, 256, size=(SYNTHETIC_CLASSES, 1, 1, 3), dtype=np.uint8) >> 1

    def make(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, SYNTHETIC_CLASSES, size=count).astype(np.int64)
        images = np.empty((count, h, w, 3), dtype=np.uint8)
        for start in range(0, count, 8192):  # chunks keep the temporaries small at CIFAR-10 size
            stop = min(count, start + 8192)
            noise = rng.integers(0, 256, size=(stop - start, h, w, 3), dtype=np.uint8) >> 1
            images[start:stop] = templates[labels[start:stop]] + noise
        return images, labels

    x, y = make(n)
    x_test, y_test = make(max(2, n // 5))
    x_train, y_train, x_val, y_val = _split_train_val(x, y)
    return Dataset(ref, "synthetic", x_train, y_train, x_val, y_val, x_test, y_test, SYNTHETIC_CLASSES)


def _offline_cifar10_message(cause: BaseException) -> str:
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return (
        f"cannot load CIFAR-10 ({reason}); offline, use --dataset synthetic, or put a local copy where it is "
        f"read: cifar-10-python.tar.gz as {KERAS_CIFAR10}, or an .npz with {', '.join(_NPZ_KEYS)} "
        "passed as --dataset npz:PATH"
    )


def _cifar10(ref: DatasetRef) -> Dataset:
    loader = _cifar10_loader()
    # Both loaders print download progress on stdout, which belongs to tables and --json.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            if loader == "tfds":
                x_pool, y_pool, x_test, y_test = _cifar10_tfds()
            else:
                x_pool, y_pool, x_test, y_test = _cifar10_keras()
        except Exception as exc:  # keras raises a bare Exception for URL failures; tfds its own
            raise DatasetError(_offline_cifar10_message(exc)) from exc
    x_train, y_train, x_val, y_val = _split_train_val(x_pool, y_pool)
    return Dataset(ref, loader, x_train, y_train, x_val, y_val, x_test, y_test, 10)


def _cifar10_keras() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    keras = _tf.tf_keras()
    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    return x_train, y_train.reshape(-1).astype(np.int64), x_test, y_test.reshape(-1).astype(np.int64)


def _cifar10_tfds() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    _tf.tensorflow()
    import tensorflow_datasets as tfds

    train, test = tfds.as_numpy(tfds.load("cifar10", split=["train", "test"], as_supervised=True, batch_size=-1))
    return train[0], train[1].astype(np.int64), test[0], test[1].astype(np.int64)


def _npz(ref: DatasetRef) -> Dataset:
    path = ref.require_path()
    if not path.is_file():
        raise DatasetError(f"npz dataset not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"cannot read {path} as .npz ({exc}); save it with numpy.savez") from exc
    missing = [key for key in _NPZ_KEYS if key not in arrays]
    if missing:
        raise DatasetError(
            f"{path} lacks {', '.join(missing)}: an npz dataset needs {', '.join(_NPZ_KEYS)} "
            f"(optional x_val, y_val); it has {', '.join(sorted(arrays)) or 'no arrays'}"
        )
    splits = ["train", "test"] + (["val"] if "x_val" in arrays and "y_val" in arrays else [])
    checked = {split: _check_split(path, split, arrays[f"x_{split}"], arrays[f"y_{split}"]) for split in splits}
    shapes = {split: x.shape[1:] for split, (x, _) in checked.items()}
    if len(set(shapes.values())) != 1:
        raise DatasetError(f"{path}: image shapes differ between splits: {shapes}")
    x_train, y_train = checked["train"]
    if "val" in checked:
        x_val, y_val = checked["val"]
    else:
        x_train, y_train, x_val, y_val = _split_train_val(x_train, y_train)
    x_test, y_test = checked["test"]
    num_classes = int(max(y.max() for _, y in checked.values())) + 1
    return Dataset(ref, str(path), x_train, y_train, x_val, y_val, x_test, y_test, num_classes)


def _check_split(path: Path, split: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim != 4:
        raise DatasetError(f"{path}: x_{split} has shape {x.shape}; expected (N, height, width, channels)")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetError(f"{path}: y_{split} has shape {y.shape}; expected ({len(x)},) integer labels")
    if len(y) == 0:
        raise DatasetError(f"{path}: x_{split} is empty")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise DatasetError(f"{path}: y_{split} must hold class indices (integers >= 0), got {y.dtype}")
    if x.dtype == np.uint8:
        return x, y.astype(np.int64)
    if not np.issubdtype(x.dtype, np.floating):
        raise DatasetError(f"{path}: x_{split} is {x.dtype}; use uint8 (0-255) or float in [0, 1]")
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise DatasetError(
            f"{path}: x_{split} holds floats in [{low:g}, {high:g}]; float images must be in [0, 1] (or save uint8)"
        )
    return x.astype(np.float32), y.astype(np.int64)


def _images(ref: DatasetRef, seed: int, image_size: tuple[int, int]) -> Dataset:
    root = ref.require_path()
    if not root.is_dir():
        raise DatasetError(f"images dataset folder not found: {root}")
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DatasetError(f"{root} needs one sub-folder per class (at least 2), found {len(classes)}")
    files: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(classes):
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DatasetError(f"class folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        files.extend(found)
        labels.extend([label] * len(found))
    if len(files) < 10:
        raise DatasetError(f"{root} has {len(files)} images; at least 10 are needed for train, validation and test")
    x = _decode_images(files, image_size)
    y = np.asarray(labels, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(1, len(y) // 5)
    test, pool = order[:n_test], order[n_test:]
    x_train, y_train, x_val, y_val = _split_train_val(x[pool], y[pool])
    return Dataset(ref, str(root), x_train, y_train, x_val, y_val, x[test], y[test], len(classes))


def _decode_images(files: list[Path], image_size: tuple[int, int]) -> np.ndarray:
    tf = _tf.tensorflow()
    out = np.empty((len(files), *image_size, 3), dtype=np.uint8)
    for i, file in enumerate(files):
        try:
            image = tf.io.decode_image(tf.io.read_file(os.fspath(file)), channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as exc:
            raise DatasetError(f"cannot decode image {file}: {exc.message.splitlines()[0]}") from exc
        resized = tf.image.resize(image, image_size)
        out[i] = np.clip(np.rint(resized.numpy()), 0, 255).astype(np.uint8)
    return out
