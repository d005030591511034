"""The lab's Docker images: builder, lab and emulator, the targets of ``images/Dockerfile``.

``engine()`` connects to the Docker engine at ``DOCKER_HOST`` (the docker SDK's own rule) and
turns "nothing answers" into one line that says how to start one. ``build_images`` builds the
images through the engine's classic builder (the SDK's; no BuildKit, so no ``RUN --mount`` and no
``# syntax=`` line) from a build context assembled here: ``pyproject.toml``, ``README.md``,
``host/``, ``device_agent/``, ``images/`` and, only when asked, an extra CA bundle as
``lab-extra-ca.crt``, which the Dockerfile's shared stage installs for OpenSSL and pip (networks
that intercept TLS). ``make_base_image`` makes a Debian base with debootstrap + ``docker import``
for machines that cannot pull from a registry.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from host import __version__
from host.errors import DockerError, MissingExtraError, UsageError

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.images import Image

__all__ = [
    "ImageName",
    "IMAGE_NAMES",
    "IMAGE_TAGS",
    "DEFAULT_BASE",
    "BASE_TAG",
    "CA_FILE",
    "DOCKERFILE",
    "BuiltImage",
    "ImageInfo",
    "EngineUnavailableError",
    "ImageMissingError",
    "ImageBuildError",
    "engine",
    "engine_address",
    "builder_image",
    "require_image",
    "source_root",
    "build_context",
    "build_images",
    "make_base_image",
    "list_images",
]

ImageName = Literal["builder", "lab", "emulator"]
IMAGE_NAMES: tuple[ImageName, ...] = ("builder", "lab", "emulator")
IMAGE_TAGS: dict[ImageName, str] = {
    "builder": "lab-builder:latest",
    "lab": "lab:latest",
    "emulator": "lab-emulator:latest",
}
"""The tag each image gets (and also ``:<lab version>``); compose.yaml uses the same names."""
_BUILD_ORDER: tuple[ImageName, ...] = ("emulator", "lab", "builder")
"""The targets' order in the Dockerfile: the classic builder runs every stage above a target, so
building in this order makes each build add only its own stage (the ones above come from the cache)."""

DEFAULT_BASE = "python:3.11-slim"
BASE_TAG = "lab-base:bookworm"
CA_FILE = "lab-extra-ca.crt"
"""Name of the extra CA bundle in the build context; the Dockerfile looks for exactly this."""
DOCKERFILE = "images/Dockerfile"
"""The one Dockerfile of the three images (relative to the source root); each is a target in it."""

_CONTEXT_PATHS = ("pyproject.toml", "README.md", "host", "device_agent", "images")
_SKIP_PARTS = frozenset({"__pycache__", ".pytest_cache"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_LOG_TAIL = 25
_BASE_CHANGES = ["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]']  # what python:3.11-slim also sets

Progress = Callable[[str], None]


class EngineUnavailableError(DockerError):
    """No Docker engine answers at DOCKER_HOST (or the docker SDK is missing)."""


class ImageMissingError(DockerError):
    """The engine answers but does not have the image."""


class ImageBuildError(DockerError):
    """An image build (or base image) failed; ``log_tail`` holds the builder's last lines."""

    exit_code = 1

    def __init__(self, message: str, log_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.log_tail = list(log_tail or [])


@dataclass(frozen=True)
class BuiltImage:
    name: ImageName
    tags: list[str]
    id: str
    size_bytes: int
    seconds: float  # wall time of this image's build


@dataclass(frozen=True)
class ImageInfo:
    name: str  # builder, lab, emulator (the lab.image label)
    tags: list[str]
    id: str
    size_bytes: int
    created: str  # ISO 8601, as the engine reports it
    version: str | None  # the lab.version label: lab's version when it was built
    base: str | None  # the lab.base label: the base image it was built from


def engine_address() -> str:
    """Where the docker SDK looks for the engine: ``DOCKER_HOST``, else the default socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def engine(timeout: int = 60) -> DockerClient:
    """A client of the Docker engine at ``DOCKER_HOST`` that has answered once.

    Raises:
        MissingExtraError: the docker SDK is not installed (``pip install 'lab[docker]'``).
        EngineUnavailableError: nothing answers; the message says how to start an engine.
    """
    try:
        import docker
    except ImportError as exc:
        raise MissingExtraError("docker", "docker") from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailableError(
            f"no Docker engine answers at {engine_address()}: start one (`sudo systemctl start docker`, or "
            "`sudo dockerd &` where there is no systemd) or point DOCKER_HOST at its socket"
        ) from exc
    return client


def builder_image() -> str:
    """The builder image the Docker build backend runs: ``LAB_BUILDER_IMAGE`` or lab-builder:latest."""
    return os.environ.get("LAB_BUILDER_IMAGE") or IMAGE_TAGS["builder"]


def require_image(client: DockerClient, tag: str) -> Image:
    """The image ``tag`` from the engine.

    Raises:
        ImageMissingError: the engine does not have it; the message names the command that builds it.
    """
    import docker

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        name = next((n for n, t in IMAGE_TAGS.items() if t == tag), None)
        how = f"`lab images build --only {name}`" if name else "`lab images build`, or `docker pull` it"
        raise ImageMissingError(
            f"the Docker engine at {engine_address()} has no image {tag}: build it with {how}"
        ) from None
    except docker.errors.APIError as exc:
        raise DockerError(f"the Docker engine at {engine_address()} failed to look up {tag}: {exc}") from exc


def source_root() -> Path:
    """The lab's source tree (what the images are built from).

    Raises:
        DockerError: lab is installed without its sources (no images/ next to the package).
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file() or not (root / DOCKERFILE).is_file():
        raise DockerError(
            f"no lab source tree at {root} (pyproject.toml and {DOCKERFILE}): building images needs "
            "a checkout of the lab repository, installed with `pip install -e .`"
        )
    return root


def _context_files(root: Path) -> Iterator[Path]:
    for name in _CONTEXT_PATHS:
        top = root / name
        if top.is_file():
            yield top
            continue
        for path in sorted(top.rglob("*")):
            parts = path.relative_to(root).parts
            if path.is_file() and not _SKIP_PARTS.intersection(parts) and not any(
                part.endswith(_SKIP_SUFFIXES) for part in parts
            ):
                yield path


def build_context(root: Path, ca_bundle: Path | None = None) -> io.BytesIO:
    """The build context as an in-memory tar: the sources, and ``lab-extra-ca.crt`` only when given.

    Raises:
        UsageError: ``ca_bundle`` is not a readable PEM file.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in _context_files(root):
            tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
        if ca_bundle is not None:
            data = _read_ca_bundle(ca_bundle)
            info = tarfile.TarInfo(CA_FILE)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _read_ca_bundle(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"--ca-bundle {path}: cannot read it ({exc.strerror}): pass a PEM file of CA certificates"
        ) from exc
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise UsageError(f"--ca-bundle {path}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)")
    return data


def build_images(
    base: str = DEFAULT_BASE,
    ca_bundle: Path | None = None,
    progress: Progress | None = None,
    *,
    only: Iterable[ImageName] | None = None,
    network: str = "host",
    client: DockerClient | None = None,
) -> list[BuiltImage]:
    """Builds the lab's images (all three, or ``only`` those) from ``base``; returns them in build order
    (emulator, lab, builder: the order of their targets in the Dockerfile).

    ``progress`` gets every line of the builder's output. ``network`` is the build containers'
    network mode: ``host`` works on engines without a default bridge (``dockerd --bridge=none``).
    Layers are reused across builds: dependencies come before the lab's own code.

    Raises:
        UsageError: an unknown image name, or a bad ``ca_bundle``.
        EngineUnavailableError, DockerError: no engine, or no source tree.
        ImageBuildError: a Dockerfile step failed (the message ends with the builder's last lines).
    """
    names = list(only) if only is not None else list(IMAGE_NAMES)
    unknown = [n for n in names if n not in IMAGE_NAMES]
    if unknown:
        raise UsageError(f"unknown image {', '.join(unknown)}: choose from {', '.join(IMAGE_NAMES)}")
    root = source_root()
    context = build_context(root, ca_bundle)
    client = client or engine()
    report = progress or (lambda line: None)
    return [_build_one(client, name, context, base, network, report) for name in _BUILD_ORDER if name in names]


def _build_one(
    client: DockerClient, name: ImageName, context: io.BytesIO, base: str, network: str, report: Progress
) -> BuiltImage:
    import docker

    tag = IMAGE_TAGS[name]
    repository = tag.rsplit(":", 1)[0]
    started = time.perf_counter()
    report(f"building {tag} from {base}")
    context.seek(0)
    log = _BuildLog(tag, base, report)
    try:
        stream = client.api.build(
            fileobj=context,
            custom_context=True,
            dockerfile=DOCKERFILE,
            target=name,
            tag=tag,
            buildargs={"BASE": base, "LAB_VERSION": __version__},
            network_mode=network,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            log.follow(chunk)
    except docker.errors.APIError as exc:
        raise log.failure(str(exc.explanation or exc)) from exc
    image_id = log.image_id or client.images.get(tag).id
    client.api.tag(image_id, repository, __version__)
    image = client.images.get(image_id)
    return BuiltImage(name, [tag, f"{repository}:{__version__}"], image.id, int(image.attrs.get("Size", 0)),
                      round(time.perf_counter() - started, 1))


class _BuildLog:
    """Follows one image build's messages: reports each line, keeps the tail, turns errors into
    one ``ImageBuildError`` that names the likely fix (a missing base image, TLS interception)."""

    def __init__(self, tag: str, base: str, report: Progress) -> None:
        self.tag, self.base, self.report = tag, base, report
        self.tail: list[str] = []
        self.image_id: str | None = None
        self.tls_refused = False

    def follow(self, chunk: dict[str, Any]) -> None:
        if "error" in chunk:
            raise self.failure(str(chunk.get("errorDetail", {}).get("message") or chunk["error"]))
        for line in str(chunk.get("stream", "")).splitlines():
            if line.strip():
                self.tail.append(line.rstrip())
                del self.tail[:-_LOG_TAIL]
                self.tls_refused = self.tls_refused or "CERTIFICATE_VERIFY_FAILED" in line
                self.report(line.rstrip())
        aux = chunk.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]

    def failure(self, detail: str) -> ImageBuildError:
        detail = detail.strip()
        last = self.tail[-1] if self.tail else ""
        if last.startswith("Step ") and " : FROM " in last:
            message = (
                f"building {self.tag} failed: the engine cannot get the base image {self.base} ({detail}): "
                f"pull it or pass --base with an image the engine has; without a registry, "
                f"`sudo lab images build --make-base` makes {BASE_TAG}"
            )
        else:
            message = f"building {self.tag} failed: {detail}"
            if self.tls_refused:
                message += (
                    "; pip refused a TLS certificate (a network that intercepts TLS?): pass --ca-bundle with "
                    "the host's CA bundle, e.g. /etc/ssl/certs/ca-certificates.crt"
                )
        shown = "\n".join(f"  | {line}" for line in self.tail)
        return ImageBuildError(f"{message}\n  last lines of the build:\n{shown}", self.tail)


def make_base_image(
    tag: str = BASE_TAG,
    *,
    suite: str = "bookworm",
    mirror: str = "http://deb.debian.org/debian",
    reuse: bool = True,
    workdir: Path | None = None,
    progress: Progress | None = None,
    client: DockerClient | None = None,
) -> str:
    """A Debian base image with Python 3, pip and venv, made without any registry; returns its id.

    ``debootstrap --variant=minbase`` writes a root file system (≈ 300 MB, about a minute) into a
    temporary folder under ``workdir`` (default /var/tmp), which ``docker import`` turns into
    ``tag``. An image already tagged ``tag`` is reused unless ``reuse`` is False.

    Raises:
        EngineUnavailableError: no engine.
        DockerError: not root, or debootstrap is not installed (the message says how to get it).
        ImageBuildError: debootstrap or the import failed (with debootstrap's last lines).
    """
    import docker

    client = client or engine()
    report = progress or (lambda line: None)
    if reuse:
        try:
            image = client.images.get(tag)
        except docker.errors.ImageNotFound:
            pass
        else:
            report(f"{tag} exists: reused ({image.short_id})")
            return str(image.id)
    if os.geteuid() != 0:
        raise DockerError("debootstrap needs root to make a base image: run it with sudo, or pass --base IMAGE")
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise DockerError("debootstrap is not installed: `sudo apt-get install debootstrap`, or pass --base IMAGE")
    with tempfile.TemporaryDirectory(prefix="lab-base-", dir=workdir or "/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        command = [debootstrap, "--variant=minbase", "--include=python3,python3-pip,python3-venv,ca-certificates",
                   suite, str(rootfs), mirror]
        report(f"running {' '.join(command)}")
        _run_logged(command, report)
        shutil.rmtree(rootfs / "var" / "lib" / "apt" / "lists", ignore_errors=True)
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        report(f"importing {rootfs} as {tag}")
        repository, version = docker.utils.parse_repository_tag(tag)
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            try:
                reply = client.api.import_image_from_stream(
                    tar.stdout, repository=repository, tag=version or "latest", changes=_BASE_CHANGES
                )
            except docker.errors.APIError as exc:
                tar.kill()
                raise ImageBuildError(f"docker import of {rootfs} failed: {exc.explanation or exc}") from exc
        if tar.returncode != 0:
            raise ImageBuildError(f"tar of {rootfs} failed with exit code {tar.returncode}")
    report(f"imported {tag}: {str(reply).strip()[:80]}")
    return str(client.images.get(tag).id)


def _run_logged(command: list[str], report: Progress) -> None:
    tail: list[str] = []
    pipe = subprocess.PIPE
    with subprocess.Popen(command, stdout=pipe, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout or ():
            tail.append(line.rstrip())
            del tail[:-_LOG_TAIL]
            report(line.rstrip())
    if proc.returncode != 0:
        tail_text = "\n".join(f"  | {line}" for line in tail)
        raise ImageBuildError(f"{Path(command[0]).name} failed with exit code {proc.returncode}\n{tail_text}", tail)


def list_images(client: DockerClient | None = None) -> list[ImageInfo]:
    """The lab's images in the engine (those labelled ``lab.image``), builder, lab, emulator first.

    Raises:
        EngineUnavailableError: no engine.
    """
    client = client or engine()
    found = []
    for image in client.images.list(filters={"label": "lab.image", "dangling": False}):
        labels = image.labels or {}
        found.append(
            ImageInfo(
                name=labels.get("lab.image", "?"),
                tags=sorted(image.tags),
                id=image.short_id,
                size_bytes=int(image.attrs.get("Size", 0)),
                created=str(image.attrs.get("Created", "")),
                version=labels.get("lab.version"),
                base=labels.get("lab.base"),
            )
        )
    order = {name: i for i, name in enumerate(IMAGE_NAMES)}
    return sorted(found, key=lambda info: (order.get(info.name, len(order)), info.created))
