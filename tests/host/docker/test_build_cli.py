"""``lab build --backend docker|auto|local`` through the CLI: the issue's own command, and what a
user sees when Docker cannot be used or the build fails inside the container."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from host.builder.cache import find_complete

from .conftest import artifact_entries, build_containers

pytestmark = pytest.mark.docker


def _lab(*args: str) -> Any:
    from host.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_lab_build_backend_docker_quick(builder: str, docker_client: Any, tmp_path: Path) -> None:
    run = _lab("--home", str(tmp_path), "build", "--backend", "docker", "--dataset", "synthetic", "--quick", "--json")
    assert run.exit_code == 0, run.output
    manifest = json.loads(run.stdout)
    folder = tmp_path / "artifacts" / manifest["build_id"]
    assert find_complete(folder) == manifest and artifact_entries(tmp_path) == [manifest["build_id"]]
    assert manifest["spec"]["quick"] is True and manifest["dataset"]["samples"]["train"] == 1800
    assert build_containers(docker_client) == []
    again = _lab("--home", str(tmp_path), "build", "--backend", "auto", "--dataset", "synthetic", "--quick")
    assert again.exit_code == 0, again.output
    assert f"build backend: docker ({builder}" in again.stderr and "cached:" in again.stderr
    assert manifest["build_id"] in again.stdout


def test_lab_build_failing_in_the_container(builder: str, tmp_path: Path) -> None:
    model = tmp_path / "broken.h5"
    model.write_bytes(b"not an HDF5 file")
    run = _lab("--home", str(tmp_path / "home"), "build", "--backend", "docker", "--model", str(model), "--dataset", "synthetic", "--quick")
    assert run.exit_code == 2, run.output  # the container's exit code
    assert f"error: the build in {builder} failed (exit code 2): " in run.stderr
    assert "lines of the container's log:" in run.stderr and "  | error: " in run.stderr
    assert artifact_entries(tmp_path / "home") == []


def test_lab_build_without_an_engine(no_engine: str, tmp_path: Path) -> None:
    run = _lab("--home", str(tmp_path), "build", "--backend", "docker", "--dataset", "synthetic", "--quick")
    assert run.exit_code == 2
    assert f"error: no Docker engine answers at {no_engine}: start one" in run.stderr
    # auto falls back to a local build and says so (a bad value ends it before any training)
    run = _lab("--home", str(tmp_path), "build", "--backend", "auto", "--quick", "--sparsity", "1.5")
    assert run.exit_code == 2
    assert f"build backend: local (no Docker engine answers at {no_engine})" in run.stderr
    assert "--sparsity must be between 0 and 1" in run.stderr
    run = _lab("--home", str(tmp_path), "build", "--backend", "kubernetes")
    assert run.exit_code == 2 and "--backend must be one of auto, docker, local" in run.stderr
