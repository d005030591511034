"""The Docker build backend: ``lab build`` run in the builder image, with a local build's result.

How one build goes (``build_in_docker``, on the host):

1. The spec's values and input files are checked here, so bad input fails at once, not in a
   container (none of this needs TensorFlow).
2. This process makes a staging folder ``LAB_HOME/artifacts/.tmp-docker-…`` (``cache.staging``).
3. A container of the builder image runs ``python -m host.builder.docker`` (``container_main``)
   with the artifacts folder mounted read-only at ``/lab/artifacts`` (for the cache lookup), the
   staging folder read-write at ``/out`` and the build's input files read-only at their own
   paths. It computes the build id from its own package versions, answers from the cache when
   it can, else runs the pipeline into ``/out``. It reports on stdout in ``lab-event {json}``
   lines; everything else it prints is its log.
4. Here the events drive the progress callback and the rest is kept as the log; on success the
   staging folder is checked against the manifest the container wrote and renamed into place.

The container can write nowhere but the staging folder, and the container is removed on success,
failure and Ctrl-C alike; the staging folder is then published or deleted. So a container killed
midway leaves no half-written artifacts (and if this process dies too, the next build removes
the staging folder: its owner pid is gone).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from host.builder import cache
from host.builder.datasets import KERAS_CIFAR10, parse_dataset
from host.builder.pipeline import BuildResult, build, result_of, run_build
from host.builder.progress import STAGES, BuildProgress, NullProgress, Stage
from host.builder.spec import BuildSpec
from host.config import artifacts_dir
from host.errors import BuildError, LabError, MissingExtraError, ModelCheckError, UsageError
from host.images import (
    EngineUnavailableError,
    ImageMissingError,
    builder_image,
    engine,
    engine_address,
    require_image,
)

if TYPE_CHECKING:
    from docker import DockerClient

__all__ = [
    "Backend",
    "BACKENDS",
    "BackendChoice",
    "ContainerBuildError",
    "EVENT_PREFIX",
    "CONTAINER_LABEL",
    "choose_backend",
    "build_with_backend",
    "build_in_docker",
    "container_main",
]

Backend = Literal["auto", "docker", "local"]
BACKENDS: tuple[Backend, ...] = ("auto", "docker", "local")

EVENT_PREFIX = "lab-event "
"""Start of the container's progress lines; anything else it prints is log."""
CONTAINER_LABEL = "lab.build"
"""Label of every build container (its value: the staging folder's name)."""

_ARTIFACTS_MOUNT = "/lab/artifacts"
_OUT_MOUNT = "/out"
_CONTAINER_HOME = "/tmp"  # writable whatever uid the container runs as
_LOG_TAIL = 20


class ContainerBuildError(BuildError):
    """The build failed inside the container; ``exit_code`` is the container's own.

    ``log_tail`` holds the container's last log lines (also at the end of the message);
    ``kind`` is the name of the lab error the container raised, when it raised one.
    """

    def __init__(self, message: str, exit_code: int, log_tail: list[str], kind: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.log_tail = log_tail
        self.kind = kind


@dataclass(frozen=True)
class BackendChoice:
    """Where a build runs, and why (one line the CLI shows for ``--backend auto``)."""

    backend: Literal["docker", "local"]
    reason: str
    client: DockerClient | None = field(default=None, compare=False, repr=False)


def choose_backend(backend: str = "auto", *, image: str | None = None) -> BackendChoice:
    """Docker when asked, or (auto) when an engine answers and has the builder image; else local.

    Raises:
        UsageError: ``backend`` is not auto, docker or local.
        MissingExtraError, EngineUnavailableError, ImageMissingError: ``backend == "docker"``
            and Docker cannot be used; each message says how to fix it.
    """
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "local":
        return BackendChoice("local", "--backend local")
    image = image or builder_image()
    try:
        client = engine()
        require_image(client, image)
    except MissingExtraError:
        if backend == "docker":
            raise
        return BackendChoice("local", "the docker package is not installed (pip install 'lab[docker]')")
    except EngineUnavailableError:
        if backend == "docker":
            raise
        return BackendChoice("local", f"no Docker engine answers at {engine_address()}")
    except ImageMissingError:
        if backend == "docker":
            raise
        return BackendChoice(
            "local", f"the Docker engine has no {image} image; `lab images build --only builder` makes it"
        )
    return BackendChoice("docker", f"{image} on the Docker engine at {engine_address()}", client)


def build_with_backend(
    spec: BuildSpec,
    home: Path,
    *,
    backend: str = "auto",
    force: bool = False,
    progress: BuildProgress | None = None,
    image: str | None = None,
) -> BuildResult:
    """``build`` or ``build_in_docker``, as ``choose_backend`` decides; auto says which in a note.

    Raises:
        What ``choose_backend``, ``build`` and ``build_in_docker`` raise.
    """
    progress = progress or NullProgress()
    choice = choose_backend(backend, image=image)
    if backend == "auto":
        progress.note(f"build backend: {choice.backend} ({choice.reason})")
    if choice.backend == "local":
        return build(spec, home, force=force, progress=progress)
    return build_in_docker(spec, home, force=force, progress=progress, image=image, client=choice.client)


def build_in_docker(
    spec: BuildSpec,
    home: Path,
    *,
    force: bool = False,
    progress: BuildProgress | None = None,
    image: str | None = None,
    network: str = "host",
    on_log: Callable[[str], None] | None = None,
    client: DockerClient | None = None,
) -> BuildResult:
    """Builds ``spec`` in a builder container into ``LAB_HOME/artifacts/<build id>``.

    Returns what ``build`` returns for the same spec on the builder's packages: the build id,
    the folder, both models and the manifest the container wrote (``cached`` when the container
    found the build complete). ``on_log`` gets each line of the container's log that is not a
    progress event. ``network`` is the container's network mode (``host`` works on engines
    without a default bridge; the cifar10 download needs a network).

    Raises:
        UsageError, DatasetError, ModelFileError: bad spec values or missing input files
            (found here, before any container starts).
        MissingExtraError, EngineUnavailableError, ImageMissingError: Docker cannot be used.
        ModelCheckError: the container's XNNPACK check rejected the model (``.problems``).
        ContainerBuildError: the build failed in the container, or the container was killed;
            ``.exit_code`` is the container's, the message ends with its log tail.
    """
    progress = progress or NullProgress()
    spec = _absolute_paths(spec)
    cache.build_inputs(spec, spec.validate())
    client = client or engine()
    image = image or builder_image()
    require_image(client, image)
    root = artifacts_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    cache.remove_stale(root)
    with cache.staging(root, "docker") as staged:
        run = _ContainerRun(progress, on_log)
        status = _run_container(client, image, spec, force, network, root, staged, run)
        build_id = run.finish(status, image)
        final = root / build_id
        if run.cached:
            shutil.rmtree(staged, ignore_errors=True)
            manifest = cache.find_complete(final)
            if manifest is None:
                raise BuildError(f"the container found build {build_id} complete but {final} is not: run again")
            return result_of(build_id, final, manifest, cached=True)
        if cache.find_complete(staged) is None:
            raise ContainerBuildError(
                f"the container exited 0 but its output in {staged} does not match its manifest", 1, run.tail()
            )
        cache.publish(staged, final)
    manifest = cache.find_complete(final)
    if manifest is None:
        raise BuildError(f"build {build_id} vanished from {final} right after it was published: run again")
    return result_of(build_id, final, manifest, cached=False)


def _absolute_paths(spec: BuildSpec) -> BuildSpec:
    """The spec with its model and dataset paths absolute (they are mounted at the same paths)."""
    ref = parse_dataset(spec.dataset)
    dataset = f"{ref.kind}:{ref.path.expanduser().resolve()}" if ref.path is not None else spec.dataset
    model = spec.model_path.expanduser().resolve() if spec.model_path is not None else None
    return dataclasses.replace(spec, dataset=dataset, model_path=model)


def _volumes(spec: BuildSpec, root: Path, staged: Path) -> dict[str, dict[str, str]]:
    volumes = {
        str(root.resolve()): {"bind": _ARTIFACTS_MOUNT, "mode": "ro"},
        str(staged.resolve()): {"bind": _OUT_MOUNT, "mode": "rw"},
    }
    ref = parse_dataset(spec.dataset)
    inputs = [p for p in (ref.path, spec.model_path) if p is not None]
    for path in inputs:
        volumes[str(path)] = {"bind": str(path), "mode": "ro"}
    if ref.kind == "cifar10":
        # Keras' own download cache, shared with local builds: one download for both.
        keras_datasets = KERAS_CIFAR10.expanduser().parent
        keras_datasets.mkdir(parents=True, exist_ok=True)
        volumes[str(keras_datasets)] = {"bind": f"{_CONTAINER_HOME}/.keras/datasets", "mode": "rw"}
    return volumes


def _run_container(
    client: DockerClient,
    image: str,
    spec: BuildSpec,
    force: bool,
    network: str,
    root: Path,
    staged: Path,
    run: _ContainerRun,
) -> int:
    """Runs the build container to its end, feeding ``run``; removes it whatever happens."""
    import docker

    command = ["--spec", json.dumps(spec.to_dict()), "--artifacts", _ARTIFACTS_MOUNT, "--out", _OUT_MOUNT]
    if force:
        command.append("--force")
    try:
        container = client.containers.create(
            image,
            command=command,
            entrypoint=["python", "-m", "host.builder.docker"],
            user=f"{os.getuid()}:{os.getgid()}",
            environment={"HOME": _CONTAINER_HOME, "LAB_HOME": "/lab"},
            volumes=_volumes(spec, root, staged),
            network_mode=network,
            labels={CONTAINER_LABEL: staged.name},
            name=f"lab-build-{uuid.uuid4().hex[:12]}",
            detach=True,
        )
    except docker.errors.DockerException as exc:
        raise ContainerBuildError(f"the Docker engine could not create the build container: {exc}", 1, []) from exc
    try:
        container.start()
        for line in _lines(container.logs(stream=True, follow=True)):
            run.line(line)
        return int(container.wait()["StatusCode"])
    except docker.errors.DockerException as exc:
        raise ContainerBuildError(f"the build container {container.name} failed to run: {exc}", 1, run.tail()) from exc
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Whole text lines from the log stream's chunks (a chunk may hold part of a line, or several)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", errors="replace")


class _ContainerRun:
    """What the container said: progress events go to ``progress``, other lines to the log."""

    def __init__(self, progress: BuildProgress, on_log: Callable[[str], None] | None) -> None:
        self.progress = progress
        self.on_log = on_log
        self.log: deque[str] = deque(maxlen=_LOG_TAIL)
        self.result: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None

    @property
    def cached(self) -> bool:
        return bool(self.result and self.result.get("cached"))

    def tail(self) -> list[str]:
        return list(self.log)

    def line(self, line: str) -> None:
        event = _parse_event(line)
        if event is None or not self._dispatch(event):
            self.log.append(line)
            if self.on_log is not None:
                self.on_log(line)

    def _dispatch(self, event: dict[str, Any]) -> bool:
        kind = event.get("event")
        stage = event.get("stage")
        if kind in ("stage_started", "epoch_finished", "stage_finished") and stage not in STAGES:
            return False
        if kind == "stage_started":
            self.progress.stage_started(stage, event.get("epochs"))
        elif kind == "epoch_finished":
            self.progress.epoch_finished(stage, int(event["epoch"]), int(event["epochs"]), event.get("metrics") or {})
        elif kind == "stage_finished":
            self.progress.stage_finished(stage, float(event["seconds"]))
        elif kind == "note":
            self.progress.note(str(event.get("message", "")))
        elif kind == "result" and isinstance(event.get("build_id"), str):
            self.result = event
        elif kind == "error":
            self.error = event
        else:
            return False
        return True

    def finish(self, status: int, image: str) -> str:
        """The build id the container reported; raises the container's failure otherwise."""
        if status == 0 and self.result is not None:
            return str(self.result["build_id"])
        tail = self.tail()
        shown = "\n".join(f"  | {line}" for line in tail)
        error = self.error or {}
        if error.get("kind") == "ModelCheckError":
            raise ModelCheckError(str(error.get("message")), [str(p) for p in error.get("problems") or []])
        if status == 0:
            why = "it exited 0 without reporting a result"
        elif status in (137, 143) and not error:
            why = f"the container was killed (exit code {status}: `docker kill`, docker stop or out of memory)"
        else:
            why = str(error.get("message") or "see its log")
        raise ContainerBuildError(
            f"the build in {image} failed (exit code {status}): {why}; nothing was published\n"
            f"  last {len(tail)} lines of the container's log:\n{shown}",
            status or 1,
            tail,
            error.get("kind"),
        )


def _parse_event(line: str) -> dict[str, Any] | None:
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        event = json.loads(line[len(EVENT_PREFIX):])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class _EventProgress:
    """``BuildProgress`` that writes ``lab-event {json}`` lines (the container side)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def emit(self, event: str, **fields: Any) -> None:
        self.out.write(EVENT_PREFIX + json.dumps({"event": event, **fields}) + "\n")
        self.out.flush()

    def stage_started(self, stage: Stage, epochs: int | None) -> None:
        self.emit("stage_started", stage=stage, epochs=epochs)

    def epoch_finished(self, stage: Stage, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        self.emit("epoch_finished", stage=stage, epoch=epoch, epochs=epochs,
                  metrics={k: float(v) for k, v in metrics.items()})

    def stage_finished(self, stage: Stage, seconds: float) -> None:
        self.emit("stage_finished", stage=stage, seconds=seconds)

    def note(self, message: str) -> None:
        self.emit("note", message=message)


def container_main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """The builder container's side: one build into ``--out``, reported as events; returns the exit code.

    Exit codes are ``lab build``'s: 0 built or cached, 1 the build failed, 2 bad input or a model
    the XNNPACK check rejects.
    """
    parser = argparse.ArgumentParser(
        prog="python -m host.builder.docker", description="Run one lab build (the Docker backend's container side)."
    )
    parser.add_argument("--spec", required=True, help="the BuildSpec as JSON (BuildSpec.to_dict)")
    parser.add_argument("--artifacts", type=Path, required=True, help="LAB_HOME's artifacts folder (cache lookup)")
    parser.add_argument("--out", type=Path, required=True, help="an existing empty folder for the build")
    parser.add_argument("--force", action="store_true", help="build even when the cache has this build")
    args = parser.parse_args(argv)
    events = _EventProgress(out or sys.stdout)
    try:
        try:
            spec = BuildSpec.from_dict(json.loads(args.spec))
        except (ValueError, TypeError) as exc:
            raise UsageError(f"--spec is not a build spec: {exc}") from exc
        hp = spec.validate()
        inputs = cache.build_inputs(spec, hp)
        build_id = cache.build_id_of(inputs)
        cached = not args.force and cache.find_complete(args.artifacts / build_id) is not None
        if not cached:
            run_build(spec, args.out, build_id=build_id, inputs=inputs, progress=events)
    except LabError as exc:
        events.emit("error", kind=type(exc).__name__, message=str(exc), exit_code=exc.exit_code,
                    problems=list(getattr(exc, "problems", [])))
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    events.emit("result", build_id=build_id, cached=cached)
    return 0


if __name__ == "__main__":
    raise SystemExit(container_main())
