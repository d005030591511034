"""Fixtures of the docker-marked tests: a real Docker engine at DOCKER_HOST and the lab's images.

``docker_client`` (session)
    The docker SDK's client of the engine at DOCKER_HOST. Without an engine the tests that need
    one skip with the reason, except under ``CI=true``, where that is a failure: CI starts an
    engine and builds the images first (``.ci/docker.sh``).
``builder`` / ``emulator_image`` (session)
    The builder and emulated-device image tags, present in the engine (skip or fail as above).
``docker_build`` (session)
    One real build through the builder container into a fresh LAB_HOME, with every progress
    event it streamed: ``.result`` (BuildResult), ``.events``, ``.log``, ``.home``.
``no_engine``
    DOCKER_HOST pointing at a socket path where nothing listens (for the no-engine tests).

Every test here needs the docker SDK (``pip install 'lab[docker]'``): without it they skip, or
fail under CI=true.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from host.builder import BuildResult, BuildSpec
from host.builder.docker import CONTAINER_LABEL, build_in_docker
from host.errors import MissingExtraError
from host.images import IMAGE_TAGS, EngineUnavailableError, ImageMissingError, builder_image, engine, require_image

if TYPE_CHECKING:
    from docker import DockerClient

SMALL = {"dataset": "synthetic:600", "epochs": 1, "prune_epochs": 1, "fine_tune_epochs": 2, "batch_size": 64}
"""A spec small enough for tests: 540 training images, 9 steps per epoch, a few seconds of training."""


def unavailable(reason: str) -> None:
    """Skip with ``reason``; under CI=true fail instead (CI is expected to provide the engine)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: .ci/docker.sh should have provided it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _docker_sdk() -> None:
    if importlib.util.find_spec("docker") is None:
        unavailable("the docker SDK is not installed: pip install 'lab[docker]'")


@pytest.fixture(scope="session")
def docker_client() -> DockerClient:
    try:
        return engine()
    except (EngineUnavailableError, MissingExtraError) as exc:
        unavailable(f"{exc} — `.ci/docker.sh` starts one and prints the DOCKER_HOST to export")
        raise


def _image(client: DockerClient, tag: str) -> str:
    try:
        require_image(client, tag)
    except ImageMissingError as exc:
        unavailable(str(exc))
    return tag


@pytest.fixture(scope="session")
def builder(docker_client: DockerClient) -> str:
    return _image(docker_client, builder_image())


@pytest.fixture(scope="session")
def emulator_image(docker_client: DockerClient) -> str:
    return _image(docker_client, IMAGE_TAGS["emulator"])


@dataclass
class Recorder:
    """A BuildProgress that keeps every call as ``(method, args…)``; ``on_stage`` may act on one."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    on_stage: Any = None  # called with the stage name at each stage_started

    def stage_started(self, stage: str, epochs: int | None) -> None:
        self.events.append(("stage_started", stage, epochs))
        if self.on_stage is not None:
            self.on_stage(stage)

    def epoch_finished(self, stage: str, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        self.events.append(("epoch_finished", stage, epoch, epochs, dict(metrics)))

    def stage_finished(self, stage: str, seconds: float) -> None:
        self.events.append(("stage_finished", stage, seconds))

    def note(self, message: str) -> None:
        self.events.append(("note", message))

    def notes(self) -> list[str]:
        return [event[1] for event in self.events if event[0] == "note"]


@dataclass
class DockerBuild:
    result: BuildResult
    events: list[tuple[Any, ...]]
    log: list[str]
    home: Path


@pytest.fixture(scope="session")
def docker_build(builder: str, tmp_path_factory: pytest.TempPathFactory) -> DockerBuild:
    home = tmp_path_factory.mktemp("docker_lab_home")
    recorder = Recorder()
    log: list[str] = []
    result = build_in_docker(BuildSpec(**SMALL), home, progress=recorder, image=builder, on_log=log.append)
    return DockerBuild(result, recorder.events, log, home)


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    address = f"unix://{tmp_path / 'no-engine.sock'}"
    monkeypatch.setenv("DOCKER_HOST", address)
    return address


def build_containers(client: DockerClient) -> list[Any]:
    """Every build container the engine has (running or not)."""
    return client.containers.list(all=True, filters={"label": CONTAINER_LABEL})


def artifact_entries(home: Path) -> list[str]:
    """Names in LAB_HOME/artifacts (build folders and leftover temp folders alike)."""
    folder = home / "artifacts"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
