"""Datasets: names, identities, synthetic, npz, images and CIFAR-10 offline (for real)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host.builder.datasets import DatasetRef, identity, load_dataset, parse_dataset
from host.errors import DatasetError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("synthetic", DatasetRef("synthetic", size=2000)),
        ("synthetic:600", DatasetRef("synthetic", size=600)),
        ("cifar10", DatasetRef("cifar10")),
        ("npz:/data/c.npz", DatasetRef("npz", path=Path("/data/c.npz"))),
        ("images:photos", DatasetRef("images", path=Path("photos"))),
    ],
)
def test_parses_every_form(name: str, expected: DatasetRef) -> None:
    assert parse_dataset(name) == expected


@pytest.mark.parametrize("name", ["imagenet", "cifar100", "npz:", "images", "cifar10:x", ""])
def test_unknown_names_list_the_known_ones(name: str) -> None:
    with pytest.raises(DatasetError, match=r"unknown dataset .*use cifar10, synthetic, synthetic:N, npz:PATH or images:DIR"):
        parse_dataset(name)


@pytest.mark.parametrize("name", ["synthetic:abc", "synthetic:5", "synthetic:-3"])
def test_bad_synthetic_sizes(name: str) -> None:
    with pytest.raises(DatasetError, match="synthetic:N needs N"):
        parse_dataset(name)


def test_synthetic_is_seeded_split_90_10_and_has_a_fifth_for_test() -> None:
    a = load_dataset(parse_dataset("synthetic:500"), seed=3)
    b = load_dataset(parse_dataset("synthetic:500"), seed=3)
    c = load_dataset(parse_dataset("synthetic:500"), seed=4)
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (450, 50, 100)
    assert a.x_train.shape[1:] == (32, 32, 3) and a.x_train.dtype == np.uint8
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.num_classes == 10 and set(np.unique(a.y_train)) <= set(range(10))
    assert a.accuracy_meaningful is False
    assert load_dataset(parse_dataset("synthetic:20"), seed=0, image_size=(24, 16)).image_shape == (24, 16, 3)


def test_subset_caps_each_split() -> None:
    data = load_dataset(parse_dataset("synthetic:1000"), seed=0, subset=100)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (100, 20, 20)


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _arrays(n: int = 40, dtype: type = np.uint8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 8, 8, 3)).astype(dtype)
    if dtype is np.float32:
        x = x / np.float32(255)
    return {"x_train": x, "y_train": rng.integers(0, 4, n), "x_test": x[:10], "y_test": rng.integers(0, 4, 10)}


def test_npz_loads_and_splits_the_training_arrays(tmp_path: Path) -> None:
    path = _npz(tmp_path / "d.npz", **_arrays())
    data = load_dataset(parse_dataset(f"npz:{path}"), seed=0)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (36, 4, 10)
    assert data.num_classes == 4 and data.accuracy_meaningful
    floats = load_dataset(parse_dataset(f"npz:{_npz(tmp_path / 'f.npz', **_arrays(dtype=np.float32))}"), seed=0)
    assert floats.x_train.dtype == np.float32 and float(floats.x_train.max()) <= 1.0


def test_npz_keeps_its_own_validation_split(tmp_path: Path) -> None:
    arrays = _arrays()
    path = _npz(tmp_path / "d.npz", **arrays, x_val=arrays["x_test"][:5], y_val=arrays["y_test"][:5])
    data = load_dataset(parse_dataset(f"npz:{path}"), seed=0)
    assert (len(data.y_train), len(data.y_val)) == (40, 5)


def test_npz_identity_is_its_content(tmp_path: Path) -> None:
    path = _npz(tmp_path / "d.npz", **_arrays())
    first = identity(parse_dataset(f"npz:{path}"))
    copy = tmp_path / "copy.npz"
    copy.write_bytes(path.read_bytes())
    assert identity(parse_dataset(f"npz:{copy}")) == first
    _npz(path, **_arrays(n=30))
    assert identity(parse_dataset(f"npz:{path}"))["sha256"] != first["sha256"]


def test_npz_with_missing_keys_names_them(tmp_path: Path) -> None:
    arrays = _arrays()
    del arrays["y_test"], arrays["x_test"]
    path = _npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError, match=r"lacks x_test, y_test: an npz dataset needs x_train, y_train, x_test, y_test"):
        load_dataset(parse_dataset(f"npz:{path}"), seed=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_train": np.zeros((40, 8, 8), np.uint8)}, r"x_train has shape \(40, 8, 8\); expected \(N, height, width, channels\)"),
        ({"y_train": np.zeros(39, np.int64)}, r"y_train has shape \(39,\); expected \(40,\)"),
        ({"y_train": np.full(40, -1)}, "class indices"),
        ({"x_train": np.full((40, 8, 8, 3), 255.0, np.float32)}, r"floats in \[255, 255\]; float images must be in \[0, 1\]"),
        ({"x_test": np.zeros((10, 4, 4, 3), np.uint8)}, "image shapes differ between splits"),
    ],
)
def test_malformed_npz_says_what_is_wrong(tmp_path: Path, change: dict[str, np.ndarray], message: str) -> None:
    path = _npz(tmp_path / "d.npz", **{**_arrays(), **change})
    with pytest.raises(DatasetError, match=message):
        load_dataset(parse_dataset(f"npz:{path}"), seed=0)


def test_missing_and_corrupt_npz(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="npz dataset not found"):
        identity(parse_dataset(f"npz:{tmp_path / 'none.npz'}"))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(DatasetError, match=r"cannot read .*bad.npz as .npz"):
        load_dataset(parse_dataset(f"npz:{bad}"), seed=0)


def test_missing_images_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="images dataset folder not found"):
        identity(parse_dataset(f"images:{tmp_path / 'none'}"))


@pytest.mark.tf
def test_images_folder_one_subfolder_per_class(tmp_path: Path) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(6):
            image = rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
            (tmp_path / label / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    before = identity(parse_dataset(f"images:{tmp_path}"))
    data = load_dataset(parse_dataset(f"images:{tmp_path}"), seed=0, image_size=(32, 32))
    assert data.num_classes == 2 and data.image_shape == (32, 32, 3)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 12 and len(data.y_test) == 2

    (tmp_path / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    assert identity(parse_dataset(f"images:{tmp_path}")) != before
    with pytest.raises(DatasetError, match=r"cannot decode image .*broken.png"):
        load_dataset(parse_dataset(f"images:{tmp_path}"), seed=0)


def test_images_folder_needs_two_classes(tmp_path: Path) -> None:
    (tmp_path / "only").mkdir()
    with pytest.raises(DatasetError, match="one sub-folder per class"):
        load_dataset(parse_dataset(f"images:{tmp_path}"), seed=0)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.tf
def test_cifar10_offline_fails_with_one_actionable_line(tmp_path: Path) -> None:
    """A real download attempt with no keras cache (HOME is empty) and no way out (a closed proxy)."""
    proxy = f"http://127.0.0.1:{_closed_port()}"
    env = {**os.environ, "HOME": str(tmp_path), "LAB_HOME": str(tmp_path / "lab")}
    env.update({name: proxy for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")})
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    done = subprocess.run(
        [sys.executable, "-c", "from host.cli import main; main()", "build", "--dataset", "cifar10", "--quick"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot load CIFAR-10 (")
    for hint in ("--dataset synthetic", "~/.keras/datasets/cifar-10-batches-py.tar.gz", "--dataset npz:PATH"):
        assert hint in last
    artifacts = tmp_path / "lab" / "artifacts"
    assert not artifacts.exists() or list(artifacts.iterdir()) == []
