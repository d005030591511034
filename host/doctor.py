"""``lab doctor``: what this machine has and lacks for each stage, and the command that fixes it.

Each check is a small function returning a ``Check``; none of them imports TensorFlow (finding
the package is enough) and none changes the machine, except that asking for the adb server's
version starts one when none answers, as adb itself does.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from host import config
from host.errors import LabError

__all__ = ["Check", "Status", "run_checks"]

Status = Literal["ok", "missing", "warning"]


@dataclass(frozen=True)
class Check:
    stage: str  # build, devices, bench, store, docker, emulator
    name: str
    status: Status
    detail: str
    fix: str | None = None  # the command or step that fixes a missing piece


def _package(name: str) -> str | None:
    if importlib.util.find_spec(name.replace("-", "_")) is None:
        return None
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def _build_checks(home: Path, db_url: str) -> list[Check]:
    checks = []
    for dist, module in (
        ("tensorflow", "tensorflow"),
        ("tf-keras", "tf_keras"),
        ("tensorflow-model-optimization", "tensorflow_model_optimization"),
    ):
        found = importlib.util.find_spec(module) is not None
        version = _package(dist) if found else None
        checks.append(
            Check("build", dist, "ok" if found else "missing", version or "not installed",
                  None if found else "pip install 'lab[build]'")
        )
    return checks


def _litert_checks(home: Path, db_url: str) -> list[Check]:
    version = _package("ai-edge-litert")
    return [
        Check("emulator", "ai-edge-litert", "ok" if version else "missing", version or "not installed",
              None if version else "pip install ai-edge-litert"),
    ]


def _arm64_checks(home: Path, db_url: str) -> list[Check]:
    """The arm64 emulated device: prepared (where, size, counts) or what is missing and the command that prepares it."""
    from device_agent.errors import AgentError
    from device_agent.qemu import default_dest
    from device_agent.qemu.plugin import find_compiler
    from device_agent.qemu.seal import check as seal_check
    from device_agent.qemu.userland import HOST, ROOTFS, SITE_PACKAGES_DIR, require_userland

    dest = default_dest()
    prepare = "lab emulator prepare --arch arm64  (no root; downloads about 95 MB, 230 MB on disk; lab run does it on first use)"
    compiler = find_compiler()
    checks = [
        Check("emulator", "C compiler", "ok", f"{compiler[0]} (builds the QEMU instruction-counting plugin)")
        if compiler
        else Check("emulator", "C compiler", "warning", "none on PATH: the arm64 emulated device runs but counts no instructions",
                   "apt-get install -y gcc (or set CC), then lab emulator prepare --arch arm64")
    ]
    try:
        userland = require_userland(dest)
    except AgentError as exc:
        detail = str(exc).split(": prepare it with")[0]
        return [Check("emulator", "arm64 emulated device", "warning", f"not prepared: {detail}", prepare), *checks]
    info = userland.info
    if userland.format >= 2:
        damaged = next((p for p in (seal_check(dest / part) for part in (ROOTFS, SITE_PACKAGES_DIR, HOST)) if p), None)
        if damaged:
            return [Check("emulator", "arm64 emulated device", "warning", f"damaged in {dest}: {damaged}",
                          "lab emulator prepare --arch arm64  (makes the damaged part again)"), *checks]
        made = "rootless"
    else:
        made = "made by root with debootstrap; uses the system's qemu-user"
    try:
        counting = userland.counting_unavailable()
    except AgentError as exc:
        counting = str(exc)
    counts = "instruction counts: yes" if counting is None else f"instruction counts unavailable: {counting}"
    detail = (
        f"prepared in {dest} ({made}; {info.get('size_mb', '?')} MB; QEMU {info.get('qemu', '?')}, "
        f"LiteRT {info.get('litert', '?')}, Debian {info.get('suite', '?')}); {counts}"
    )
    status: Status = "ok" if counting is None else "warning"
    fix = None if counting is None else "install a C compiler (apt-get install -y gcc), then lab emulator prepare --arch arm64"
    return [Check("emulator", "arm64 emulated device", status, detail, fix), *checks]


def _adb_checks(home: Path, db_url: str) -> list[Check]:
    import adbutils

    from host.devices import adb_client, adb_executable, list_devices, server_address

    try:
        executable = adb_executable()
        client = adb_client(on_start=lambda message: None)
        version = client.server_version()
        _, port = server_address()
    except (LabError, adbutils.AdbError) as exc:
        return [Check("devices", "adb server", "missing", str(exc), "pip install adbutils (bundles adb), or set ADBUTILS_ADB_PATH")]
    checks = [Check("devices", "adb server", "ok", f"protocol {version} on port {port} ({executable})")]
    entries = list_devices(client)
    ready = [e for e in entries if e.facts is not None]
    for entry in entries:
        if entry.facts is None:
            checks.append(Check("devices", entry.serial, "warning", entry.state, entry.problem))
    if ready:
        names = ", ".join(f"{e.serial} ({e.facts.model}, {e.facts.kind})" for e in ready if e.facts)
        checks.append(Check("devices", "devices", "ok", names))
    else:
        checks.append(
            Check("devices", "devices", "warning", "no device attached",
                  "attach a phone with USB debugging on; lab run starts an emulated device meanwhile")
        )
    return checks


def _tool_checks(home: Path, db_url: str) -> list[Check]:
    from host.devices.tools import list_tools

    tools = list_tools(home)
    checks = []
    for abi in ("arm64-v8a", "armeabi-v7a", "x86_64"):
        mine = [t for t in tools if t.info.abi == abi]
        if mine:
            checks.append(Check("bench", f"benchmark_model {abi}", "ok", f"{len(mine)} cached, newest {mine[0].info.sha256[:12]}"))
        else:
            checks.append(
                Check("bench", f"benchmark_model {abi}", "warning", "none cached (emulated devices use their own runner)",
                      f"lab tools fetch --abi {abi}  (or: lab tools add PATH --abi {abi})")
            )
    return checks


def _store_checks(home: Path, db_url: str) -> list[Check]:
    from host.store import open_store

    try:
        with open_store(db_url) as store:
            runs = store.count_runs()
    except LabError as exc:
        return [Check("store", "database", "missing", str(exc), "lab --db URL …, or fix LAB_DB_URL")]
    return [Check("store", "database", "ok", f"{_redact(db_url)}: {runs} run(s)")]


def _docker_checks(home: Path, db_url: str) -> list[Check]:
    if _package("docker") is None:
        return [Check("docker", "docker SDK", "warning", "not installed (needed for --backend docker)", "pip install 'lab[docker]'")]
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=5)
        version = client.version().get("Version", "?")
    except docker.errors.DockerException:
        fix = "apt-get install -y docker.io && dockerd &" if shutil.which("dockerd") is None else "start the engine: dockerd &"
        return [Check("docker", "Docker engine", "warning", "no engine answers (builds run locally)", fix)]
    return [Check("docker", "Docker engine", "ok", f"version {version}")]


def _home_checks(home: Path, db_url: str) -> list[Check]:
    probe = home if home.exists() else home.parent
    writable = os.access(probe, os.W_OK) if probe.exists() else False
    return [
        Check("store", "LAB_HOME", "ok" if writable else "missing", str(home),
              None if writable else f"mkdir -p {home} or set LAB_HOME to a writable folder")
    ]


def _redact(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


CHECKS: tuple[Callable[[Path, str], list[Check]], ...] = (
    _home_checks,
    _store_checks,
    _build_checks,
    _litert_checks,
    _arm64_checks,
    _adb_checks,
    _tool_checks,
    _docker_checks,
)


def run_checks(home: Path | None = None, db_url: str | None = None) -> list[Check]:
    """Every check, in stage order."""
    home = home or config.lab_home()
    db_url = db_url or config.default_db_url(home)
    return [check for run in CHECKS for check in run(home, db_url)]
