"""The Docker build backend against a real engine: a build through the builder container, its
progress, the cache, the auto choice, and the bad inputs (no engine, no image, a build failing
inside, a container killed midway, Ctrl-C)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from host.builder import BuildSpec, ModelFileError
from host.builder.cache import find_complete
from host.builder.docker import ContainerBuildError, build_in_docker, build_with_backend, choose_backend
from host.errors import DatasetError, UsageError
from host.images import EngineUnavailableError, ImageMissingError

from .conftest import SMALL, DockerBuild, Recorder, artifact_entries, build_containers

pytestmark = pytest.mark.docker

STAGE_ORDER = ["dataset", "check", "train", "prune", "convert", "evaluate"]


def _run_tflite(path: Path) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    data = np.random.default_rng(0).random(inp["shape"], dtype=np.float32)
    interpreter.set_tensor(inp["index"], data.astype(inp["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_build_through_the_container_gives_a_valid_manifest_whose_models_run(docker_build: DockerBuild) -> None:
    result = docker_build.result
    assert not result.cached
    assert result.dir == docker_build.home / "artifacts" / result.build_id
    assert artifact_entries(docker_build.home) == [result.build_id]  # nothing half-written beside it
    assert find_complete(result.dir) == result.manifest  # every file matches the manifest's sha256
    manifest = result.manifest
    assert manifest["build_id"] == result.build_id and manifest["manifest_version"] == 1
    assert manifest["versions"]["tensorflow"] is not None  # the container's TensorFlow built it
    assert manifest["spec"]["dataset"] == "synthetic:600" and manifest["hyperparameters"]["fine_tune_epochs"] == 2
    assert manifest["files"]["pruned"]["densify"]["count"] > 0 and manifest["files"]["dense"]["densify"]["count"] == 0
    assert min(layer["sparsity"] for layer in manifest["sparsity"]["layers"]) >= 0.7
    for path in (result.dense, result.pruned):
        output = _run_tflite(path)
        assert output.shape == (1, 10) and np.isfinite(output).all()


def test_progress_is_streamed_from_the_container(docker_build: DockerBuild) -> None:
    started = [e[1] for e in docker_build.events if e[0] == "stage_started"]
    finished = [e[1] for e in docker_build.events if e[0] == "stage_finished"]
    assert started == finished == STAGE_ORDER
    epochs = [(e[1], e[2], e[3]) for e in docker_build.events if e[0] == "epoch_finished"]
    assert epochs == [("train", 1, 1), ("prune", 1, 2), ("prune", 2, 2)]
    assert all("loss" in e[4] for e in docker_build.events if e[0] == "epoch_finished")
    notes = [e[1] for e in docker_build.events if e[0] == "note"]
    assert any("is synthetic" in note for note in notes)
    assert not any(line.startswith("lab-event ") for line in docker_build.log)  # events never leak into the log


def test_same_spec_again_comes_from_the_cache(docker_build: DockerBuild, builder: str, docker_client: Any) -> None:
    recorder = Recorder()
    again = build_in_docker(BuildSpec(**SMALL), docker_build.home, progress=recorder, image=builder)
    assert again.cached and again.build_id == docker_build.result.build_id and again.dir == docker_build.result.dir
    assert again.manifest == docker_build.result.manifest and recorder.events == []
    assert artifact_entries(docker_build.home) == [again.build_id]
    assert build_containers(docker_client) == []


def test_auto_chooses_docker_when_the_engine_has_the_image(builder: str, docker_build: DockerBuild) -> None:
    choice = choose_backend("auto", image=builder)
    assert choice.backend == "docker" and builder in choice.reason
    recorder = Recorder()
    result = build_with_backend(BuildSpec(**SMALL), docker_build.home, backend="auto", progress=recorder, image=builder)
    assert result.cached and result.build_id == docker_build.result.build_id
    assert recorder.notes()[0].startswith(f"build backend: docker ({builder} on the Docker engine at ")


def test_no_engine(no_engine: str, tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError, match=f"no Docker engine answers at {no_engine}: start one"):
        build_in_docker(BuildSpec(**SMALL), tmp_path)
    with pytest.raises(EngineUnavailableError, match="sudo systemctl start docker"):
        choose_backend("docker")
    choice = choose_backend("auto")
    assert choice.backend == "local" and choice.reason == f"no Docker engine answers at {no_engine}"
    # auto says so and builds locally: here the local build rejects the spec before training
    recorder = Recorder()
    with pytest.raises(UsageError, match="--sparsity must be between 0 and 1"):
        build_with_backend(BuildSpec(dataset="synthetic:600", final_sparsity=1.5), tmp_path, progress=recorder)
    assert recorder.notes() == [f"build backend: local (no Docker engine answers at {no_engine})"]
    with pytest.raises(UsageError, match="--backend must be one of auto, docker, local"):
        choose_backend("podman")


def test_engine_without_the_image(docker_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = f"lab-builder:missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ImageMissingError, match=f"has no image {missing}: build it with `lab images build`"):
        build_in_docker(BuildSpec(**SMALL), tmp_path, image=missing)
    monkeypatch.setenv("LAB_BUILDER_IMAGE", missing)
    choice = choose_backend("auto")
    assert choice.backend == "local"
    assert choice.reason == f"the Docker engine has no {missing} image; `lab images build --only builder` makes it"
    with pytest.raises(ImageMissingError, match=missing):
        choose_backend("docker")
    assert artifact_entries(tmp_path) == []


def test_bad_input_fails_before_any_container(builder: str, docker_client: Any, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="npz dataset not found"):
        build_in_docker(BuildSpec(dataset=f"npz:{tmp_path / 'missing.npz'}"), tmp_path, image=builder)
    with pytest.raises(ModelFileError, match="model not found"):
        build_in_docker(BuildSpec(model_path=tmp_path / "missing.keras"), tmp_path, image=builder)
    with pytest.raises(UsageError, match="--prune-epochs"):
        build_in_docker(BuildSpec(prune_epochs=3, fine_tune_epochs=1), tmp_path, image=builder)
    assert build_containers(docker_client) == [] and artifact_entries(tmp_path) == []


def test_build_failing_inside_shows_its_log_and_exit_code(builder: str, docker_client: Any, tmp_path: Path) -> None:
    model = tmp_path / "inputs" / "broken.keras"  # a model file only the container tries to load
    model.parent.mkdir()
    model.write_bytes(b"this is not a zip archive")
    home = tmp_path / "home"
    with pytest.raises(ContainerBuildError) as caught:
        build_in_docker(BuildSpec(model_path=model, quick=True), home, image=builder)
    error = caught.value
    assert error.exit_code == 2 and error.kind == "ModelFileError"  # lab build's exit code for a bad model
    message = str(error)
    assert message.startswith(f"the build in {builder} failed (exit code 2): ") and str(model) in message
    assert "lines of the container's log:" in message
    assert any(line.startswith("error: ") and "broken.keras" in line for line in error.log_tail)
    assert artifact_entries(home) == [] and build_containers(docker_client) == []


def test_container_killed_midway_leaves_no_artifacts(builder: str, docker_client: Any, tmp_path: Path) -> None:
    killed: list[str] = []

    def kill_when_training(stage: str) -> None:
        if stage == "train":
            for container in build_containers(docker_client):
                container.kill()
                killed.append(container.name)

    with pytest.raises(ContainerBuildError, match=r"exit code 137\): the container was killed") as caught:
        build_in_docker(BuildSpec(**SMALL), tmp_path, progress=Recorder(on_stage=kill_when_training), image=builder)
    assert len(killed) == 1 and caught.value.exit_code == 137
    assert "nothing was published" in str(caught.value)
    assert artifact_entries(tmp_path) == [] and build_containers(docker_client) == []


def test_ctrl_c_removes_the_container_and_the_staging_folder(
    builder: str, docker_client: Any, tmp_path: Path
) -> None:
    seen: list[int] = []

    def interrupt_when_training(stage: str) -> None:
        if stage == "train":
            seen.append(len(build_containers(docker_client)))
            raise KeyboardInterrupt

    recorder = Recorder(on_stage=interrupt_when_training)
    with pytest.raises(KeyboardInterrupt):
        build_in_docker(BuildSpec(**SMALL), tmp_path, progress=recorder, image=builder)
    assert seen == [1]  # the container was running when Ctrl-C came
    assert build_containers(docker_client) == [] and artifact_entries(tmp_path) == []
