"""Preparing an arm64 userland with LiteRT for QEMU user-mode emulation: idempotent, cached in a folder.

Steps, each skipped when its result is already there (a folder is published by renaming a
``.partial`` one, so an interrupted step leaves nothing half-done under its final name):

1. ``debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 SUITE`` downloads the
   packages and unpacks the essential ones; ``dpkg-deb -x`` unpacks the rest. No chroot, no
   binfmt, no second stage: QEMU's ``-L`` does the rest (about 20 s and 310 MB).
2. The host's pip downloads the aarch64 wheels of ai-edge-litert and numpy (the host's versions)
   and installs them into ``rootfs/opt/lab/site-packages`` (about 120 MB).
3. One ``-L`` view per emulated core, with that core's /proc/cpuinfo (see ``cpus``).
4. gcc builds the instruction-counting plugin.
5. A check: the guest's Python imports LiteRT under ``qemu-aarch64-static``, and ``qemu-aarch64``
   loads the plugin. Then ``userland.json`` is written.

Needs root (debootstrap unpacks device nodes and files owned by root), the Debian packages
qemu-user, qemu-user-static, debootstrap and gcc, pip for the host's Python, and access to a
Debian mirror and PyPI.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from device_agent.qemu.cpus import CPUS, DEFAULT_CPU, cpuinfo_text
from device_agent.qemu.errors import MissingToolError, PrepareError, QemuError
from device_agent.qemu.plugin import build_plugin, plugin_load_error, source_sha256
from device_agent.qemu.userland import (
    FORMAT,
    MANIFEST,
    PLUGIN_DIR,
    QEMU,
    QEMU_STATIC,
    ROOTFS,
    SITE_PACKAGES,
    TOOL_PACKAGES,
    VIEWS,
    Userland,
    find_userland,
)

__all__ = ["prepare", "DEFAULT_MIRROR", "DEFAULT_SUITE"]

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"  # Python 3.11, as the ai-edge-litert 2.3 wheels need (cp39..cp313)
_DEFAULT_VERSIONS = {"ai-edge-litert": "2.3.0"}  # used when the host has no ai-edge-litert
_COMPLETE = ".lab-complete"
_WHEEL_PLATFORM = "manylinux_2_27_aarch64"  # bookworm has glibc 2.36

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    print(f"qemu: {line}", file=sys.stderr, flush=True)


def prepare(
    dest: Path,
    *,
    progress: Progress | None = None,
    mirror: str | None = None,
    suite: str = DEFAULT_SUITE,
) -> Userland:
    """Build (or find) the arm64 userland in ``dest``; progress lines go to ``progress`` (stderr by default).

    Idempotent: a complete userland prepared from the same plugin source and package versions is
    returned at once; otherwise only the missing steps run. Two prepares of one folder at the same
    time take turns (a lock file in ``dest``).

    Raises:
        MissingToolError: qemu-user, qemu-user-static, debootstrap, dpkg or gcc is missing (names
            the Debian package).
        QemuError: not root, or no pip for this Python.
        PrepareError: a step failed (quotes the end of the tool's output).
    """
    say = progress or _stderr
    dest = Path(dest).expanduser().absolute()
    requirements = _requirements()
    found = _current(dest, requirements)
    if found is not None:
        say(f"arm64 userland ready (cached) in {dest}")
        return found
    tools = _tools()
    if os.geteuid() != 0:
        raise QemuError("preparing the arm64 userland runs debootstrap, which needs root: run it as root (sudo)")
    dest.mkdir(parents=True, exist_ok=True)
    with _locked(dest, say):
        found = _current(dest, requirements)  # another prepare may have finished meanwhile
        if found is not None:
            say(f"arm64 userland ready (cached) in {dest}")
            return found
        started = time.monotonic()
        rootfs = _rootfs(dest / ROOTFS, tools, mirror or DEFAULT_MIRROR, suite, say)
        python = _guest_python(rootfs)
        _wheels(dest, rootfs / SITE_PACKAGES, python, requirements, say)
        _views(dest / VIEWS, rootfs)
        say("building the instruction-counting plugin with gcc")
        plugin = build_plugin(dest / PLUGIN_DIR, tools["gcc"])
        info = {"format": FORMAT, "arch": "arm64", "suite": suite, "python": python, "requirements": requirements}
        info.update(_check(dest, python, plugin, tools, say))
        info["plugin_sha256"] = source_sha256()
        info["prepared_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        info["prepare_seconds"] = round(time.monotonic() - started, 1)
        info["size_mb"] = round(_size(dest) / 1e6)
        partial = dest / f".{MANIFEST}.partial"
        partial.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, dest / MANIFEST)
        say(f"arm64 userland ready in {dest} ({info['prepare_seconds']} s, {info['size_mb']} MB)")
    userland = find_userland(dest)
    if userland is None:
        raise PrepareError("checking the finished userland", f"{dest} is incomplete after preparing it")
    return userland


def _requirements() -> list[str]:
    """The guest's packages, pinned to the host's versions so both run the same LiteRT."""
    pins = []
    for name in ("ai-edge-litert", "numpy"):
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pins.append(f"{name}=={_DEFAULT_VERSIONS[name]}" if name in _DEFAULT_VERSIONS else name)
    return pins


def _current(dest: Path, requirements: list[str]) -> Userland | None:
    found = find_userland(dest)
    if found is None:
        return None
    same = found.info.get("plugin_sha256") == source_sha256() and found.info.get("requirements") == requirements
    return found if same else None


def _tools() -> dict[str, str]:
    paths = {tool: shutil.which(tool) for tool in TOOL_PACKAGES}
    missing = {tool: TOOL_PACKAGES[tool] for tool, path in paths.items() if path is None}
    if missing:
        raise MissingToolError(missing, "preparing the arm64 userland")
    return {tool: path for tool, path in paths.items() if path is not None}


@contextlib.contextmanager
def _locked(dest: Path, say: Progress) -> Iterator[None]:
    with open(dest / ".prepare.lock", "w", encoding="ascii") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another prepare of {dest}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(argv: list[str], step: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise PrepareError(step, done.stdout + done.stderr)
    return done


def _rootfs(rootfs: Path, tools: dict[str, str], mirror: str, suite: str, say: Progress) -> Path:
    if (rootfs / _COMPLETE).is_file():
        return rootfs
    partial = rootfs.with_name(f"{ROOTFS}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    say(f"debootstrap: Debian {suite} arm64 minbase with python3 from {mirror} (about 100 MB to download)")
    options = ["--foreign", "--arch=arm64", "--variant=minbase", "--include=python3"]
    _run([tools["debootstrap"], *options, suite, str(partial), mirror], f"running debootstrap for arm64 {suite}")
    archives = partial / "var" / "cache" / "apt" / "archives"
    debs = sorted(archives.glob("*.deb"))
    if not debs:
        raise PrepareError("unpacking packages", f"debootstrap left no packages in {archives}")
    say(f"unpacking {len(debs)} packages with dpkg-deb")
    for deb in debs:
        _run([tools["dpkg-deb"], "-x", str(deb), str(partial)], f"unpacking {deb.name}")
        deb.unlink()
    (partial / _COMPLETE).write_text(f"{suite} {mirror}\n", encoding="utf-8")
    shutil.rmtree(rootfs, ignore_errors=True)
    os.replace(partial, rootfs)
    return rootfs


def _guest_python(rootfs: Path) -> str:
    """The guest's Python version ("3.11"), from its python3 link."""
    link = rootfs / "usr" / "bin" / "python3"
    target = os.readlink(link) if link.is_symlink() else ""
    name = Path(target).name
    if not name.startswith("python3."):
        raise PrepareError("finding the guest's Python", f"{link} does not point to a python3.X: {target!r}")
    return name.removeprefix("python")


def _wheels(dest: Path, site: Path, python: str, requirements: list[str], say: Progress) -> None:
    stamp = site / _COMPLETE
    if stamp.is_file() and stamp.read_text(encoding="utf-8").split() == requirements:
        return
    if importlib.util.find_spec("pip") is None:
        host_python = sys.executable
        raise QemuError(f"downloading aarch64 wheels needs pip for {host_python}: run `{host_python} -m ensurepip`")
    platform = ["--only-binary=:all:", "--platform", _WHEEL_PLATFORM, "--python-version", python, "--implementation", "cp"]
    wheels = dest / "wheels"
    say(f"pip: downloading aarch64 wheels for Python {python}: {' '.join(requirements)}")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "download", "-q", *platform, "-d", str(wheels), *requirements], "downloading aarch64 wheels with pip")
    partial = site.with_name(f"{site.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    say("pip: installing them into the userland")
    install = [*pip, "install", "-q", "--no-index", "--find-links", str(wheels), *platform, "--target", str(partial)]
    _run([*install, *requirements], "installing aarch64 wheels with pip")
    (partial / _COMPLETE).write_text("\n".join(requirements) + "\n", encoding="utf-8")
    shutil.rmtree(site, ignore_errors=True)
    os.replace(partial, site)


def _processors() -> int:
    """How many CPUs this machine may have (/sys/devices/system/cpu/possible, e.g. "0-3,6")."""
    try:
        spec = Path("/sys/devices/system/cpu/possible").read_text(encoding="ascii").strip()
        count = 0
        for part in spec.split(","):
            first, _, last = part.partition("-")
            count += int(last or first) - int(first) + 1
        return count
    except (OSError, ValueError):
        return os.cpu_count() or 1


def _views(views: Path, rootfs: Path) -> None:
    """One -L prefix per core: links to rootfs's top-level entries, and the core's own proc/cpuinfo."""
    entries = [entry.name for entry in rootfs.iterdir() if entry.name != "proc" and not entry.name.startswith(".")]
    for cpu, model in CPUS.items():
        view = views / cpu
        (view / "proc").mkdir(parents=True, exist_ok=True)
        for name in entries:
            link = view / name
            if not link.is_symlink():
                link.symlink_to(os.path.relpath(rootfs / name, view))
        cpuinfo = view / "proc" / "cpuinfo"
        text = cpuinfo_text(model, _processors())
        if not cpuinfo.is_file() or cpuinfo.read_text(encoding="ascii") != text:
            cpuinfo.write_text(text, encoding="ascii")


_VERSIONS_SCRIPT = (
    "import json, platform; from importlib.metadata import version; import numpy, ai_edge_litert.interpreter; "
    "print(json.dumps({'python_full': platform.python_version(), 'machine': platform.machine(), "
    "'litert': version('ai-edge-litert'), 'numpy': numpy.__version__}))"
)


def _check(dest: Path, python: str, plugin: Path, tools: dict[str, str], say: Progress) -> dict[str, str]:
    """Run the guest's Python with LiteRT under QEMU, and load the plugin; their versions for userland.json."""
    say("checking: the guest's Python imports LiteRT under QEMU, and QEMU loads the plugin")
    userland = Userland(root=dest, python=python, plugin=plugin)
    argv, env = userland.python_command(["-c", _VERSIONS_SCRIPT], count_instructions=False)
    done = _run(argv, "running the guest's Python with LiteRT", env={**os.environ, **env}, timeout=300)
    try:
        versions = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise PrepareError("reading the guest's versions", done.stdout + done.stderr) from None
    view = userland.view(DEFAULT_CPU)
    error = plugin_load_error(tools[QEMU], plugin, view, view / "bin" / "true")
    if error:
        raise PrepareError("loading the instruction-counting plugin", error)
    qemu = _run([tools[QEMU_STATIC], "--version"], "asking QEMU its version").stdout.splitlines()[0]
    return {**versions, "qemu": qemu.removeprefix("qemu-aarch64 version ").strip()}


def _size(folder: Path) -> int:
    total = 0
    for path, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(path, name)).st_size
    return total
