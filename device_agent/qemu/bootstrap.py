"""Preparing an arm64 userland with LiteRT and QEMU, without root: idempotent, cached in a folder.

Steps, each skipped when its part is already complete (a part is made in a ``.partial`` folder,
renamed, then sealed with the list of its files, sizes and sha256: see ``seal``; a part that is
half-made or damaged is made again, the others are kept):

1. The mirror's signed ``InRelease``, then ``main/binary-arm64`` and ``main/binary-<this machine>``
   ``Packages.xz`` (≈ 18 MB): python3's dependency closure for arm64 (≈ 45 packages, 20 MB) and
   qemu-user's for this machine (≈ 22 packages, 21 MB), resolved with python-debian. The free disk
   is checked against what the parts will take before any package is downloaded.
2. The .debs, sha256-checked against the index, unpacked as ``dpkg-deb -x`` does (``debian``):
   ``rootfs/`` (merged /usr, no documentation) and ``host/`` (``qemu-aarch64`` with its libraries
   and its own dynamic loader: it runs on any x86_64 Linux, whatever its own libraries are).
3. The host's pip downloads the aarch64 wheels of ai-edge-litert and numpy (the host's versions)
   and installs them into ``site-packages/`` (≈ 30 MB to download, 120 MB installed).
4. One ``-L`` view per emulated core, with that core's /proc/cpuinfo (see ``cpus``).
5. The machine's C compiler builds the instruction-counting plugin; without one the userland is
   complete all the same and ``userland.json`` says why counts are unavailable.
6. A check: the guest's Python imports LiteRT under QEMU, and QEMU loads the plugin. Then
   ``userland.json`` is written, and the downloads are removed.

Needs no root and no system package: a Debian mirror (``$LAB_DEBIAN_MIRROR``, default
https://deb.debian.org/debian), PyPI through the host's pip, python-debian, and optionally a C
compiler. A folder made by root with debootstrap (format 1) is used as it is while it is current.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from device_agent.qemu import seal
from device_agent.qemu.cpus import CPUS, DEFAULT_CPU, cpuinfo_text
from device_agent.qemu.debian import (
    DEFAULT_MIRROR,
    DEFAULT_SUITE,
    KEYRING,
    MIRROR_ENV,
    DebPackage,
    Mirror,
    debian_arch,
    unpack,
)
from device_agent.qemu.errors import NoSpaceError, PrepareError, QemuError
from device_agent.qemu.plugin import NO_COMPILER, build_plugin, find_compiler, plugin_load_error, source_sha256
from device_agent.qemu.userland import (
    FORMAT,
    HOST,
    MANIFEST,
    PLUGIN_DIR,
    ROOTFS,
    SITE_PACKAGES_DIR,
    VIEWS,
    Userland,
    find_userland,
)

__all__ = ["prepare", "DEFAULT_MIRROR", "DEFAULT_SUITE", "OnBytes", "Progress"]

_DEFAULT_VERSIONS = {"ai-edge-litert": "2.3.0"}  # used when the host has no ai-edge-litert
_WHEEL_PLATFORM = "manylinux_2_27_aarch64"  # bookworm has glibc 2.36
_GUEST_ROOTS = ("python3", "libstdc++6", "coreutils")  # LiteRT's wheel needs libstdc++; /bin/true checks the plugin
_HOST_ROOTS = ("qemu-user",)
_MERGED_USR = ("bin", "sbin", "lib", "lib64")  # links to usr/…, as debootstrap makes them for bookworm
_GUEST_SKIP = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/lintian/")
_DOWNLOADS = "downloads"
_OLD_WHEELS = "wheels"  # format 1 kept its wheels here
# What the wheels take (measured for ai-edge-litert 2.3 + numpy 2.x): for the disk check and the progress bar.
_WHEELS_DOWNLOAD = 32_000_000
_WHEELS_INSTALLED = 125_000_000
_INDEX_MB = 18  # the two Packages.xz files

Progress = Callable[[str], None]
OnBytes = Callable[[int, int], None]  # (bytes downloaded so far, bytes to download in all)


def _stderr(line: str) -> None:
    print(f"qemu: {line}", file=sys.stderr, flush=True)


def prepare(
    dest: Path,
    *,
    progress: Progress | None = None,
    on_bytes: OnBytes | None = None,
    mirror: str | None = None,
    suite: str = DEFAULT_SUITE,
    keyring: Path | None = KEYRING,
) -> Userland:
    """Build (or find) the arm64 userland in ``dest``; progress lines go to ``progress`` (stderr by default).

    Idempotent: a complete userland prepared from the same plugin source and package versions is
    returned at once (every file of its parts checked against the sha256 it was made with, ≈ 0.3 s);
    otherwise only the missing or damaged parts are made. Two prepares of one folder at the same
    time take turns (a lock file in ``dest``). ``on_bytes`` follows the downloads; ``mirror`` defaults to
    ``$LAB_DEBIAN_MIRROR``, else https://deb.debian.org/debian; ``keyring`` checks its InRelease
    (None: a mirror of one's own, trusted as it is).

    Raises:
        MirrorError: the Debian mirror cannot be reached (offline) or answers wrongly.
        NoSpaceError: not enough free disk in ``dest`` (checked before downloading).
        QemuError: no QEMU build for this machine, or no pip for this Python.
        PrepareError: a step failed (quotes the end of the tool's output), or the folder cannot be
            written (no permission, the disk filled up after all).
    """
    say = progress or _stderr
    dest = Path(dest).expanduser().absolute()
    requirements = _requirements()
    found = _current(dest, requirements)
    if found is not None:
        say(f"arm64 userland ready (cached) in {dest}")
        return found
    try:
        _prepare(dest, requirements, say, on_bytes, mirror, suite, keyring)
    except OSError as exc:
        raise PrepareError(f"writing the userland in {dest}", f"{exc.strerror}: {exc.filename or dest}") from exc
    userland = find_userland(dest)
    if userland is None:
        raise PrepareError("checking the finished userland", f"{dest} is incomplete after preparing it")
    return userland


def _prepare(
    dest: Path,
    requirements: list[str],
    say: Progress,
    on_bytes: OnBytes | None,
    mirror: str | None,
    suite: str,
    keyring: Path | None,
) -> None:
    """``prepare``'s steps, under the folder's lock; userland.json is written last."""
    dest.mkdir(parents=True, exist_ok=True)
    with _locked(dest, say):
        if _current(dest, requirements) is not None:  # another prepare finished meanwhile
            say(f"arm64 userland ready (cached) in {dest}")
            return
        started = time.monotonic()
        with contextlib.suppress(FileNotFoundError):
            (dest / MANIFEST).unlink()  # whatever is made now, the old description no longer holds
        host_arch = debian_arch(platform.machine())
        mirror_url = (mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR).rstrip("/")
        info: dict[str, object] = {"format": FORMAT, "arch": "arm64", "suite": suite, "mirror": mirror_url}
        meter = _Meter(on_bytes)
        site = dest / SITE_PACKAGES_DIR
        wheels_needed = not _wheels_ok(site, requirements)
        debian = Mirror(mirror_url, suite, keyring=keyring)
        _packages(dest, debian, host_arch, wheels_needed, say, meter, info)
        python = _guest_python(dest / ROOTFS)
        _wheels(dest, site, python, requirements, say, meter)
        meter.finish()
        downloaded = debian.downloaded + meter.wheels
        _views(dest / VIEWS, dest / ROOTFS)
        plugin, plugin_error = _plugin(dest, say, info)
        info.update(python=python, requirements=requirements, plugin_sha256=source_sha256(), plugin_error=plugin_error)
        info.update(_check(dest, info, plugin, say))
        shutil.rmtree(dest / _DOWNLOADS, ignore_errors=True)
        shutil.rmtree(dest / _OLD_WHEELS, ignore_errors=True)
        info["prepared_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        info["prepare_seconds"] = round(time.monotonic() - started, 1)
        info["downloaded_mb"] = round(downloaded / 1e6, 1)
        info["size_mb"] = round(_size(dest) / 1e6)
        partial = dest / f".{MANIFEST}.partial"
        partial.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, dest / MANIFEST)
        counts = "instruction counts available" if info["plugin_error"] is None else "no instruction counts"
        say(
            f"arm64 userland ready in {dest} ({info['prepare_seconds']} s, {info['downloaded_mb']} MB downloaded, "
            f"{info['size_mb']} MB on disk; {counts})"
        )


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
    """The userland in ``dest`` when nothing of it needs making again (what does is said as it is made)."""
    found = find_userland(dest)
    if found is None or found.info.get("requirements") != requirements:
        return None
    if found.format == 1:  # made by root with debootstrap: used while current, never patched
        return found if found.info.get("plugin_sha256") == source_sha256() else None
    if found.info.get("plugin_sha256") != source_sha256():
        return None
    compiler = find_compiler()
    if not found.plugin.is_file() and compiler is not None and compiler[0] != found.info.get("compiler"):
        return None  # made without a compiler, or with one that failed; another one is here now
    if any(seal.check(dest / part, full=True) is not None for part in (ROOTFS, SITE_PACKAGES_DIR, HOST)):
        return None
    return found


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
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    except OSError as exc:
        raise PrepareError(step, f"{argv[0]}: {exc.strerror}") from exc
    if done.returncode != 0:
        raise PrepareError(step, done.stdout + done.stderr)
    return done


def _part_ok(folder: Path, made_from: dict[str, object], say: Progress) -> bool:
    """Whether a part is complete, undamaged and made from the same packages; says why not when it was there."""
    problem = seal.check(folder, full=True)
    if problem is None and seal.sealed_info(folder) == made_from:
        return True
    if folder.exists():
        say(f"{problem or f'{folder.name} was made from other packages'}: making it again")
    return False


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


class _Meter:
    """Bytes downloaded against bytes to download, for ``on_bytes`` (the wheels' size is known only after pip)."""

    def __init__(self, on_bytes: OnBytes | None) -> None:
        self.on_bytes = on_bytes
        self.done = 0
        self.total = 0
        self.wheels = 0

    def add(self, n: int) -> None:
        self.done += n
        if self.on_bytes is not None:
            self.on_bytes(self.done, max(self.total, self.done))

    def finish(self) -> None:
        """Everything is downloaded: the estimate of the wheels' size gives way to what they were."""
        if self.on_bytes is not None and self.total:
            self.total = self.done
            self.on_bytes(self.done, self.done)


def _packages(
    dest: Path,
    mirror: Mirror,
    host_arch: str,
    wheels_needed: bool,
    say: Progress,
    meter: _Meter,
    info: dict[str, object],
) -> None:
    """rootfs/ and host/ from the mirror's packages (only the parts that are not complete).

    With every part complete the mirror is not asked at all, so a prepared folder needs no network.
    """
    parts = {ROOTFS: ("arm64", _GUEST_ROOTS), HOST: (host_arch, _HOST_ROOTS)}
    if all(seal.check(dest / part, full=True) is None for part in parts):
        for part in parts:  # what they were made from, for userland.json
            info.update(seal.sealed_info(dest / part) or {})
        info.update(_host_paths(dest / HOST, host_arch))
        _check_space(dest, [], wheels_needed)
        meter.total = _WHEELS_DOWNLOAD if wheels_needed else 0
        return
    say(f"reading {mirror.url}'s package index for Debian {mirror.suite} (about {_INDEX_MB} MB)")
    downloads = dest / _DOWNLOADS
    plans: dict[str, tuple[list[DebPackage], dict[str, object]]] = {}
    for part, (arch, roots) in parts.items():
        packages = mirror.index(arch, cache=downloads).resolve(roots)
        made_from = {f"{part}_packages": [f"{p.name}={p.version}" for p in packages], f"{part}_arch": arch}
        info.update(made_from)
        if not _part_ok(dest / part, made_from, say):
            plans[part] = (packages, made_from)
    info["release_signature"] = mirror.signature
    to_download = [p for packages, _ in plans.values() for p in packages]
    meter.total = sum(p.size for p in to_download) + (_WHEELS_DOWNLOAD if wheels_needed else 0)
    _check_space(dest, to_download, wheels_needed)
    if meter.total:
        qemu = next((p.version for p in to_download if p.name == "qemu-user"), None)
        what = [f"QEMU {qemu.split(':')[-1].split('+')[0]} for this machine" if qemu else ""]
        if ROOTFS in plans:
            what.append(f"Debian {mirror.suite}'s python3 for arm64 ({len(plans[ROOTFS][0])} packages)")
        if wheels_needed:
            what.append("LiteRT's aarch64 wheel from PyPI")
        say(
            f"downloading {meter.total / 1e6:.0f} MB ({', '.join(w for w in what if w)}) so that pruned models "
            "run XNNPACK's sparse kernels on an emulated ARM core: x86 CPUs with AVX never run them"
        )
    for part, (packages, made_from) in plans.items():
        debs = mirror.download(packages, downloads, on_bytes=meter.add)
        _unpack_part(dest / part, debs, keep=_keep_guest if part == ROOTFS else _keep_host, say=say)
        seal.seal(dest / part, made_from)
        for deb in debs:
            deb.unlink(missing_ok=True)
    info.update(_host_paths(dest / HOST, host_arch))


def _check_space(dest: Path, packages: list[DebPackage], wheels_needed: bool) -> None:
    """NoSpaceError unless ``dest``'s disk holds the downloads and what they unpack to."""
    needed = sum(p.size + _unpacked(p) for p in packages)
    if wheels_needed:
        needed += _WHEELS_DOWNLOAD + _WHEELS_INSTALLED
    free = _free_bytes(dest)
    if needed > free:
        raise NoSpaceError(dest, needed, free)


def _unpacked(package: DebPackage) -> int:
    """What a package takes once unpacked: its Installed-Size, at most 4× its .deb for the host's
    QEMU, of which one emulator of thirty is kept."""
    return min(package.installed_size, 4 * package.size) if package.name == "qemu-user" else package.installed_size


def _keep_guest(name: str) -> bool:
    return not name.startswith(_GUEST_SKIP)


def _keep_host(name: str) -> bool:
    """Of this machine's packages: qemu-aarch64, and the shared libraries with their loader."""
    if name == "usr/bin/qemu-aarch64":
        return True
    return name.startswith(("lib/", "lib64/", "usr/lib/", "usr/lib64/")) and not name.startswith("usr/lib/binfmt")


def _host_paths(host: Path, arch: str) -> dict[str, object]:
    """Where the host part's loader, libraries and qemu-aarch64 are (relative to it), for userland.json."""
    triplet = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[arch]
    loader = {"amd64": "ld-linux-x86-64.so.2", "arm64": "ld-linux-aarch64.so.1"}[arch]
    libraries = [f"usr/lib/{triplet}"]
    paths = {"host_loader": f"usr/lib/{triplet}/{loader}", "host_libraries": libraries, "host_qemu": "usr/bin/qemu-aarch64"}
    for key in ("host_loader", "host_qemu"):
        if not (host / str(paths[key])).exists():
            raise PrepareError("finding QEMU in the unpacked packages", f"{host / str(paths[key])} is missing")
    return paths


def _remove(folder: Path) -> None:
    """Remove a folder of the userland (gone already: fine), or PrepareError saying why it cannot be
    (e.g. a part an earlier version made as root, in a folder now prepared by a user)."""

    def refuse(_function: object, path: str, exc: BaseException) -> None:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise PrepareError(f"removing the old {folder.name}/ to make it again", f"{path}: {reason}") from None

    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif not folder.exists():
        return
    elif sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=refuse)
    else:  # onerror gets (type, value, traceback); deprecated from 3.12 on
        shutil.rmtree(folder, onerror=lambda function, path, info: refuse(function, path, info[1]))


def _unpack_part(folder: Path, debs: list[Path], *, keep: Callable[[str], bool], say: Progress) -> None:
    partial = folder.with_name(f"{folder.name}.partial")
    _remove(partial)
    (partial / "usr").mkdir(parents=True)
    for name in _MERGED_USR:
        (partial / "usr" / name).mkdir(exist_ok=True)
        (partial / name).symlink_to(f"usr/{name}")
    say(f"unpacking {len(debs)} packages into {folder.name}/")
    for deb in debs:
        unpack(deb, partial, keep=keep)
    _remove(folder)
    os.replace(partial, folder)


def _guest_python(rootfs: Path) -> str:
    """The guest's Python version ("3.11"), from its python3 link."""
    link = rootfs / "usr" / "bin" / "python3"
    target = os.readlink(link) if link.is_symlink() else ""
    name = Path(target).name
    if not name.startswith("python3."):
        raise PrepareError("finding the guest's Python", f"{link} does not point to a python3.X: {target!r}")
    return name.removeprefix("python")


def _wheels_ok(site: Path, requirements: list[str]) -> bool:
    return seal.check(site, full=True) is None and seal.sealed_info(site) == {"requirements": requirements}


def _wheels(dest: Path, site: Path, python: str, requirements: list[str], say: Progress, meter: _Meter) -> None:
    """site-packages/ with the aarch64 wheels (unless complete); their size goes to ``meter``."""
    if _wheels_ok(site, requirements):
        return
    if site.exists():
        say(f"{seal.check(site, full=True) or 'site-packages holds other versions'}: making it again")
    platform_args = ["--only-binary=:all:", "--platform", _WHEEL_PLATFORM, "--python-version", python, "--implementation", "cp"]
    wheels = dest / _DOWNLOADS / "wheels"
    say(f"pip: downloading aarch64 wheels for Python {python}: {' '.join(requirements)}")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    try:
        _run([*pip, "download", "-q", *platform_args, "-d", str(wheels), *requirements], "downloading aarch64 wheels with pip")
    except PrepareError as exc:
        if "No module named pip" in exc.output:  # not asked with importlib: after tfmot that wakes setuptools' distutils shim
            raise QemuError(f"downloading aarch64 wheels needs pip for {sys.executable}: run `{sys.executable} -m ensurepip`") from exc
        raise
    meter.wheels = sum(path.stat().st_size for path in wheels.glob("*.whl"))
    meter.add(meter.wheels)
    partial = site.with_name(f"{site.name}.partial")
    _remove(partial)
    say("pip: installing them into the userland")
    install = [*pip, "install", "-q", "--no-index", "--find-links", str(wheels), *platform_args, "--target", str(partial)]
    _run([*install, *requirements], "installing aarch64 wheels with pip")
    _remove(site)
    os.replace(partial, site)
    seal.seal(site, {"requirements": requirements})


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
    entries = {entry.name for entry in rootfs.iterdir() if entry.name != "proc" and not entry.name.startswith(".")}
    for cpu, model in CPUS.items():
        view = views / cpu
        (view / "proc").mkdir(parents=True, exist_ok=True)
        for link in view.iterdir():
            if link.is_symlink() and link.name not in entries:
                link.unlink()  # an entry of an earlier rootfs
        for name in sorted(entries):
            link = view / name
            if not link.is_symlink():
                link.symlink_to(os.path.relpath(rootfs / name, view))
        cpuinfo = view / "proc" / "cpuinfo"
        text = cpuinfo_text(model, _processors())
        if not cpuinfo.is_file() or cpuinfo.read_text(encoding="ascii") != text:
            cpuinfo.write_text(text, encoding="ascii")


def _plugin(dest: Path, say: Progress, info: dict[str, object]) -> tuple[Path | None, str | None]:
    """The counting plugin built with the machine's C compiler, or why there is none (no compiler, or
    it failed: the userland runs all the same, with times only)."""
    compiler = find_compiler()
    info["compiler"] = compiler[0] if compiler else None
    if compiler is None:
        shutil.rmtree(dest / PLUGIN_DIR, ignore_errors=True)
        say(f"no instruction counts: {NO_COMPILER}")
        return None, NO_COMPILER
    say(f"building the instruction-counting plugin with {Path(compiler[0]).name}")
    try:
        return build_plugin(dest / PLUGIN_DIR, compiler), None
    except PrepareError as exc:
        shutil.rmtree(dest / PLUGIN_DIR, ignore_errors=True)
        say(f"no instruction counts: {exc}")
        return None, str(exc)


# Imports what the runner imports, then compiles every module it loaded from the userland (the guest's
# standard library, seen through the view, and site-packages): Debian's packages ship no .pyc, and a
# runner started with PYTHONDONTWRITEBYTECODE would otherwise compile them under emulation every time.
_CHECK_SCRIPT = """
import json, platform, py_compile, sys
from importlib.metadata import version
import numpy, ai_edge_litert.interpreter, device_agent.bench, device_agent.qemu.counter, device_agent.qemu.kernels
roots = tuple(sys.argv[1:])
compiled = 0
for module in list(sys.modules.values()):
    source = getattr(module, "__file__", None) or ""
    cached = getattr(module, "__cached__", None)
    if source.startswith(roots) and source.endswith(".py") and cached:
        py_compile.compile(source, cfile=cached, dfile=source, doraise=True)
        compiled += 1
print(json.dumps({"python_full": platform.python_version(), "machine": platform.machine(),
                  "litert": version("ai-edge-litert"), "numpy": numpy.__version__, "compiled_modules": compiled}))
"""


def _check(dest: Path, info: dict[str, object], plugin: Path | None, say: Progress) -> dict[str, object]:
    """Run the guest's Python with LiteRT under QEMU, and load the plugin; versions for userland.json.

    A plugin that does not load is no failure: the userland runs without counts and says why.
    """
    say("checking: the guest's Python imports LiteRT under QEMU, and QEMU loads the plugin")
    userland = Userland(root=dest, python=str(info["python"]), plugin=dest / PLUGIN_DIR / "none", info=info)
    roots = [str(userland.view(DEFAULT_CPU) / "usr"), str(userland.site_packages)]
    argv, env = userland.python_command(["-c", _CHECK_SCRIPT, *roots], count_instructions=False)
    done = _run(argv, "running the guest's Python with LiteRT", env={**os.environ, **env}, timeout=300)
    try:
        versions: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise PrepareError("reading the guest's versions", done.stdout + done.stderr) from None
    qemu = _run([*userland.qemu_head(), "--version"], "asking QEMU its version").stdout.splitlines()[0]
    versions["qemu"] = qemu.removeprefix("qemu-aarch64 version ").strip()
    if plugin is not None:
        view = userland.view(DEFAULT_CPU)
        error = plugin_load_error(userland.qemu_head(), plugin, view, view / "bin" / "true")
        if error:
            say(f"no instruction counts: {error}")
            versions["plugin_error"] = error
    return versions


def _size(folder: Path) -> int:
    total = 0
    for path, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(path, name)).st_size
    return total
