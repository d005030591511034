"""``lab images build|list`` against a real engine, the build context, and the bad inputs."""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from host.cli.main import app
from host.images import CA_FILE, DOCKERFILE, IMAGE_TAGS, build_context, source_root

pytestmark = pytest.mark.docker

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def _names(context: io.BytesIO) -> set[str]:
    with tarfile.open(fileobj=context) as tar:
        return set(tar.getnames())


def test_build_context_holds_the_sources_and_the_ca_bundle_only_when_given(tmp_path: Path) -> None:
    root = source_root()
    plain = _names(build_context(root))
    assert {"pyproject.toml", "README.md", "host/images.py", "device_agent/__main__.py"} <= plain
    assert DOCKERFILE in plain
    assert CA_FILE not in plain
    assert not any("__pycache__" in name or name.endswith(".pyc") or name.startswith("tests/") for name in plain)
    bundle = tmp_path / "corporate.pem"
    bundle.write_text(PEM)
    context = build_context(root, bundle)
    assert _names(context) == plain | {CA_FILE}
    context.seek(0)
    with tarfile.open(fileobj=context) as tar:
        extracted = tar.extractfile(CA_FILE)
        assert extracted is not None and extracted.read().decode() == PEM


def test_lab_images_list(docker_client: Any, emulator_image: str) -> None:
    run = CliRunner().invoke(app, ["images", "list", "--json"])
    assert run.exit_code == 0, run.output
    images = json.loads(run.stdout)
    emulator = next(image for image in images if IMAGE_TAGS["emulator"] in image["tags"])
    assert emulator["name"] == "emulator" and emulator["version"] and emulator["size_bytes"] > 0
    table = CliRunner().invoke(app, ["images", "list"])
    assert table.exit_code == 0 and "emulator" in table.stdout


def test_lab_images_build_rebuilds_from_the_same_base(docker_client: Any, emulator_image: str) -> None:
    """Rebuilding the emulator image from the base it was built from (its lab.base label) reuses
    the dependency layers; LAB_IMAGES_CA_BUNDLE is the CA bundle CI builds with (.ci/docker.sh)."""
    base = docker_client.images.get(emulator_image).labels["lab.base"]
    args = ["images", "build", "--only", "emulator", "--base", base, "--verbose", "--json"]
    ca_bundle = os.environ.get("LAB_IMAGES_CA_BUNDLE")
    if ca_bundle:
        args += ["--ca-bundle", ca_bundle]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    (built,) = doc["images"]
    assert doc["base"] == base and built["name"] == "emulator" and IMAGE_TAGS["emulator"] in built["tags"]
    assert docker_client.images.get(IMAGE_TAGS["emulator"]).id == built["id"]
    assert "Using cache" in run.stderr  # the dependency layers were not rebuilt
    pip_conf = docker_client.containers.run(emulator_image, entrypoint=["sh", "-c", "cat /etc/pip.conf || true"],
                                            remove=True, network_mode="none").decode()
    assert ("cert = /etc/ssl/certs/ca-certificates.crt" in pip_conf) == bool(ca_bundle)


def test_a_base_image_the_engine_cannot_get(docker_client: Any) -> None:
    missing = f"lab-test/no-such-base:{uuid.uuid4().hex[:8]}"
    before = _image_id(docker_client, IMAGE_TAGS["emulator"])
    run = CliRunner().invoke(app, ["images", "build", "--only", "emulator", "--base", missing])
    assert run.exit_code == 1
    assert f"error: building lab-emulator:latest failed: the engine cannot get the base image {missing}" in run.stderr
    assert "`sudo lab images build --make-base` makes lab-base:bookworm" in run.stderr
    assert _image_id(docker_client, IMAGE_TAGS["emulator"]) == before  # the tag still names the same image


def _image_id(client: Any, tag: str) -> str | None:
    found = client.images.list(name=tag)
    return found[0].id if found else None


def test_lab_images_bad_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    run = runner.invoke(app, ["images", "build", "--only", "phone"])
    assert run.exit_code == 2 and "Invalid value for '--only'" in run.output and "'phone'" in run.output
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    run = runner.invoke(app, ["images", "build", "--ca-bundle", str(not_pem)])
    assert run.exit_code == 2 and f"error: --ca-bundle {not_pem}: no PEM certificate in it" in run.stderr
    run = runner.invoke(app, ["images", "build", "--ca-bundle", str(tmp_path / "missing.pem")])
    assert run.exit_code == 2 and "missing.pem: cannot read it" in run.stderr
    run = runner.invoke(app, ["images", "build", "--make-base", "--base", "debian:12"])
    assert run.exit_code == 2 and "--make-base builds from lab-base:bookworm: leave out --base debian:12" in run.stderr
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    for command in (["images", "list"], ["images", "build", "--only", "emulator"]):
        run = runner.invoke(app, command)
        assert run.exit_code == 2 and "error: no Docker engine answers at unix://" in run.stderr
        assert "start one" in run.stderr
