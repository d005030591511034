"""run_bench refuses bad input before it stores a run or touches a device."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.bench import model_file, run_bench
from host.errors import NoDeviceError, ToolError, UsageError
from host.records import BenchRequest, DeviceFacts, TrialParams
from host.store import open_store

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"
DEVICE = DeviceFacts(serial="127.0.0.1:1", kind="emulated", abis=("x86_64",))


def _bench(tmp_path: Path, request: BenchRequest = BenchRequest(trials=1), **overrides: object) -> None:
    kwargs: dict[str, object] = {"models": [model_file(MODELS / "add.tflite")], "devices": [DEVICE]}
    kwargs.update(overrides)
    with open_store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        try:
            run_bench(request, store=store, home=tmp_path, progress=None, **kwargs)  # type: ignore[arg-type]
        finally:
            assert store.list_runs() == []  # nothing was recorded


def test_no_models(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no model to benchmark"):
        _bench(tmp_path, models=[])


def test_no_devices(tmp_path: Path) -> None:
    with pytest.raises(NoDeviceError, match="no device"):
        _bench(tmp_path, devices=[])


def test_bad_counts(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--trials must be between 1 and 10,000, got 0"):
        _bench(tmp_path, BenchRequest(trials=0))
    with pytest.raises(UsageError, match="--trials must be between 1 and 10,000, got 1,000,000,000,000"):
        _bench(tmp_path, BenchRequest(trials=10**12))  # refused at once, not a plan that grows by 130 MB/s
    with pytest.raises(UsageError, match="--runs must be between 1 and 10,000,000, got 20,000,000"):
        _bench(tmp_path, BenchRequest(params=TrialParams(runs=20_000_000)))
    with pytest.raises(UsageError, match="--cooldown must not be negative"):
        _bench(tmp_path, BenchRequest(cooldown_s=-1.0))


def test_bad_binary(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="benchmark binary .*nope does not exist"):
        _bench(tmp_path, BenchRequest(binary=str(tmp_path / "nope")))
    text = tmp_path / "notes.txt"
    text.write_text("not a program")
    with pytest.raises(ToolError, match="is not a benchmark_model executable"):
        _bench(tmp_path, BenchRequest(binary=str(text)))
