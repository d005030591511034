"""The build cache: what the id hashes, reuse, --force, and interrupted builds leaving nothing reused."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from host.builder import BuildResult, BuildSpec, build
from host.builder.cache import build_id_of, build_inputs, find_complete, remove_stale
from host.errors import DatasetError

from .conftest import SMALL


def _id(spec: BuildSpec) -> str:
    return build_id_of(build_inputs(spec, spec.validate()))


def test_the_id_changes_with_everything_that_shapes_the_result(tmp_path: Path) -> None:
    base = BuildSpec(**SMALL)
    assert _id(base) == _id(BuildSpec(**SMALL))
    variants = [
        BuildSpec(**{**SMALL, "epochs": 2}),
        BuildSpec(**SMALL, seed=1),
        BuildSpec(**{**SMALL, "final_sparsity": 0.8}),
        BuildSpec(**{**SMALL, "dataset": "synthetic:601"}),
        BuildSpec(**SMALL, quick=True),
    ]
    assert len({_id(base), *map(_id, variants)}) == 1 + len(variants)

    model = tmp_path / "m.keras"
    model.write_bytes(b"PK one")
    with_model = BuildSpec(**SMALL, model_path=model)
    first = _id(with_model)
    assert _id(BuildSpec(**SMALL, model_path=model, fix=True)) != first
    model.write_bytes(b"PK two")
    assert _id(with_model) != first


def test_the_id_ignores_what_does_not_matter(tmp_path: Path) -> None:
    arrays = {k: np.zeros((12, 4, 4, 3), np.uint8) for k in ("x_train", "x_test")}
    arrays.update(y_train=np.zeros(12, np.int64), y_test=np.zeros(12, np.int64))
    np.savez(tmp_path / "a.npz", **arrays)
    shutil.copy(tmp_path / "a.npz", tmp_path / "b.npz")
    assert _id(BuildSpec(**{**SMALL, "dataset": f"npz:{tmp_path / 'a.npz'}"})) == _id(
        BuildSpec(**{**SMALL, "dataset": f"npz:{tmp_path / 'b.npz'}"})
    )
    assert _id(BuildSpec(**SMALL, fix=True)) == _id(BuildSpec(**SMALL))  # --fix only matters for --model


@pytest.mark.tf
def test_a_second_identical_build_comes_from_the_cache(built: BuildResult, build_home: Path, small_spec: BuildSpec) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in built.dir.iterdir()}
    again = build(small_spec, build_home)
    assert again.cached and again.build_id == built.build_id and again.manifest == built.manifest
    assert {p.name: p.stat().st_mtime_ns for p in built.dir.iterdir()} == before


@pytest.mark.tf
def test_find_complete_refuses_partial_or_altered_folders(built: BuildResult, tmp_path: Path) -> None:
    copy = tmp_path / built.build_id
    shutil.copytree(built.dir, copy)
    assert find_complete(copy) == built.manifest
    data = bytearray((copy / "pruned.tflite").read_bytes())
    data[-1] ^= 0xFF
    (copy / "pruned.tflite").write_bytes(bytes(data))
    assert find_complete(copy) is None
    (copy / "manifest.json").unlink()
    assert find_complete(copy) is None
    assert find_complete(tmp_path / "absent") is None


@pytest.mark.tf
def test_force_rebuilds_into_the_same_id(small_spec: BuildSpec, built: BuildResult, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(built.dir, home / "artifacts" / built.build_id)
    inode = (home / "artifacts" / built.build_id).stat().st_ino
    assert build(small_spec, home).cached
    rebuilt = build(small_spec, home, force=True)
    assert not rebuilt.cached and rebuilt.build_id == built.build_id
    assert rebuilt.dir.stat().st_ino != inode
    assert find_complete(rebuilt.dir) == rebuilt.manifest
    assert sorted(p.name for p in (home / "artifacts").iterdir()) == [built.build_id]


@pytest.mark.tf
def test_a_build_failing_inside_leaves_nothing(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x_train=np.zeros((20, 32, 32, 3), np.uint8), y_train=np.zeros(20, np.int64))
    spec = BuildSpec(**{**SMALL, "dataset": f"npz:{tmp_path / 'd.npz'}"})
    with pytest.raises(DatasetError, match="lacks x_test, y_test"):
        build(spec, tmp_path / "home")
    assert list((tmp_path / "home" / "artifacts").iterdir()) == []


@pytest.mark.tf
def test_a_killed_build_is_not_reused(tmp_path: Path, small_spec: BuildSpec) -> None:
    home = tmp_path / "home"
    args = ["build", "--dataset", SMALL["dataset"], "--epochs", "1", "--prune-epochs", "1"]
    args += ["--fine-tune-epochs", "2", "--batch-size", "64"]
    process = subprocess.Popen(
        [sys.executable, "-c", "from host.cli import main; main()", "--home", str(home), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    artifacts = home / "artifacts"
    deadline = time.monotonic() + 120
    try:
        # Kill it mid-way: the dense model is written, the pruned one and the manifest are not.
        while not (artifacts.is_dir() and any((p / "dense.tflite").is_file() for p in artifacts.glob(".tmp-*"))):
            assert process.poll() is None, "the build ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    [leftover] = list(artifacts.iterdir())
    assert leftover.name.startswith(".tmp-") and (leftover / "dense.tflite").is_file()
    assert find_complete(artifacts / _id(small_spec)) is None

    result = build(small_spec, home)
    assert not result.cached
    assert sorted(p.name for p in artifacts.iterdir()) == [result.build_id]  # the dead build's temp folder is gone


def test_remove_stale_spares_live_builds(tmp_path: Path) -> None:
    live = tmp_path / ".tmp-live"
    live.mkdir()
    (live / ".owner.json").write_text(f'{{"host": "{socket.gethostname()}", "pid": {os.getpid()}}}')
    other_host = tmp_path / ".tmp-container"
    other_host.mkdir()
    (other_host / ".owner.json").write_text('{"host": "some-container", "pid": 999999999}')
    final = tmp_path / "0123456789abcdef"
    final.mkdir()
    assert remove_stale(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-container", ".tmp-live", "0123456789abcdef"]
