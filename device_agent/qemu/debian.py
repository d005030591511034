"""Debian packages without root: the mirror's signed index, dependency closure, verified downloads, unpacking.

What ``apt-get install`` and ``debootstrap`` do for the arm64 userland, done as any user::

    mirror = Mirror("https://deb.debian.org/debian", "bookworm")
    index = mirror.index("arm64")                       # main/binary-arm64/Packages.xz, checked against InRelease
    packages = index.resolve(["python3"])               # the Depends/Pre-Depends closure, one version each
    paths = mirror.download(packages, Path("downloads"), on_bytes=print)   # sha256-checked, resumable
    for path in paths:
        unpack(path, Path("rootfs"))                    # like dpkg-deb -x, without device nodes

The Release file (``InRelease``) is checked with ``gpgv`` against Debian's archive keyring when the
machine has both (Debian and Ubuntu do); the index is checked against the Release file's sha256, and
each package against the index's. Parsing is python-debian's (``debian.deb822``, ``debian.debfile``):
imported when first needed, so the device agent stays stdlib-only at import.

Errors: ``MirrorError`` (the mirror cannot be reached or answers wrongly; its message names the
mirror and the reason), ``PrepareError`` (a package cannot be resolved, verified or unpacked).
"""

from __future__ import annotations

import hashlib
import lzma
import os
import posixpath
import shutil
import subprocess
import tarfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_agent.qemu.errors import MirrorError, PrepareError, QemuError
from device_agent.qemu.seal import file_sha256

__all__ = [
    "DEFAULT_MIRROR",
    "DEFAULT_SUITE",
    "MIRROR_ENV",
    "KEYRING",
    "DebPackage",
    "Mirror",
    "PackageIndex",
    "debian_arch",
    "unpack",
]

DEFAULT_MIRROR = "https://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"  # Python 3.11, as the ai-edge-litert 2.3 wheels need (cp39..cp313); QEMU 7.2
MIRROR_ENV = "LAB_DEBIAN_MIRROR"  # another mirror (or, in tests, one that cannot be reached)
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_COMPONENT = "main"
_TIMEOUT_S = 30.0
_CHUNK = 1 << 16
_DOWNLOADERS = 4  # parallel downloads: the mirror is a CDN, most packages are small
_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

OnBytes = Callable[[int], None]  # called with each chunk's size as it arrives


def debian_arch(machine: str) -> str:
    """Debian's name for ``platform.machine()``: x86_64 → amd64, aarch64 → arm64.

    Raises:
        QemuError: a machine the lab has no QEMU build for.
    """
    try:
        return _MACHINES[machine.lower()]
    except KeyError:
        raise QemuError(f"no QEMU user-mode build for this machine ({machine}): the arm64 emulated device needs x86_64 or aarch64") from None


@dataclass(frozen=True)
class DebPackage:
    """One package of the index: where it is on the mirror and what it must hash to."""

    name: str
    version: str
    arch: str
    filename: str  # pool/main/q/qemu/qemu-user_…_amd64.deb, relative to the mirror
    size: int  # bytes of the .deb
    installed_size: int  # bytes once unpacked (the index's Installed-Size, KiB, × 1024)
    sha256: str

    @property
    def file_name(self) -> str:
        return posixpath.basename(self.filename)


class PackageIndex:
    """A ``Packages`` file: paragraphs found by name, parsed with python-debian only when needed.

    Parsing all 60,000 paragraphs with ``deb822`` takes 20 s; the closure of python3 needs about
    50 of them. A paragraph of a Packages file starts with its ``Package:`` field, so the raw text
    is split and keyed by that name first.
    """

    def __init__(self, text: str, arch: str) -> None:
        self.arch = arch
        self._raw: dict[str, str] = {}
        self._parsed: dict[str, Any] = {}
        self._provides: dict[str, list[str]] | None = None
        for chunk in text.split("\n\n"):
            chunk = chunk.strip("\n")
            if not chunk.startswith("Package: "):
                continue
            name = chunk[len("Package: ") : chunk.find("\n") if "\n" in chunk else None].strip()
            self._raw.setdefault(name, chunk)

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __len__(self) -> int:
        return len(self._raw)

    def _paragraph(self, name: str) -> Any:
        if name not in self._parsed:
            from debian.deb822 import Packages

            self._parsed[name] = Packages(self._raw[name])
        return self._parsed[name]

    def _provider(self, name: str) -> str | None:
        """A real package that Provides the virtual package ``name`` (the first by name), or None."""
        if self._provides is None:
            self._provides = {}
            for real, raw in self._raw.items():
                if "\nProvides:" in raw:
                    for relation in self._paragraph(real).relations["provides"]:
                        for alternative in relation:
                            self._provides.setdefault(alternative["name"], []).append(real)
        found = sorted(self._provides.get(name, []))
        return found[0] if found else None

    def package(self, name: str) -> DebPackage:
        """The index's entry for ``name``.

        Raises:
            PrepareError: no such package, or an entry without Filename, Size or SHA256.
        """
        if name not in self._raw:
            raise PrepareError(f"resolving Debian packages for {self.arch}", f"no package {name!r} in the index")
        paragraph = self._paragraph(name)
        try:
            return DebPackage(
                name=name,
                version=paragraph["Version"],
                arch=paragraph.get("Architecture", self.arch),
                filename=paragraph["Filename"],
                size=int(paragraph["Size"]),
                installed_size=int(paragraph.get("Installed-Size", "0")) * 1024,
                sha256=paragraph["SHA256"],
            )
        except (KeyError, ValueError) as exc:
            raise PrepareError(f"reading the index entry of {name}", f"missing or bad field {exc}") from None

    def resolve(self, roots: Iterable[str], *, skip: Iterable[str] = ()) -> list[DebPackage]:
        """``roots`` and everything they Depend or Pre-Depend on, sorted by name.

        Of alternatives (``a | b``), one already chosen wins, else the first that is a real package,
        else the first that some package Provides. Version constraints are not checked: one suite
        holds one version of each package, and that is the version its dependants were built for.

        Raises:
            PrepareError: a root or a dependency that nothing in the index satisfies.
        """
        chosen: dict[str, DebPackage] = {}
        skipped = set(skip)
        todo = [(root, "requested") for root in roots]
        while todo:
            name, wanted_by = todo.pop()
            if name in chosen or name in skipped:
                continue
            real = name if name in self._raw else self._provider(name)
            if real is None:
                raise PrepareError(f"resolving Debian packages for {self.arch}", f"nothing provides {name} ({wanted_by})")
            if real in chosen:
                continue
            chosen[real] = self.package(real)
            paragraph = self._paragraph(real)
            for field in ("pre-depends", "depends"):
                for relation in paragraph.relations[field]:
                    names = [alternative["name"] for alternative in relation]
                    pick = (
                        next((n for n in names if n in chosen or n in skipped), None)
                        or next((n for n in names if n in self._raw), None)
                        or next((n for n in names if self._provider(n) is not None), None)
                    )
                    if pick is None:
                        needed = " | ".join(names)
                        raise PrepareError(f"resolving Debian packages for {self.arch}", f"nothing provides {needed} (needed by {real})")
                    todo.append((pick, f"needed by {real}"))
        return [chosen[name] for name in sorted(chosen)]


class Mirror:
    """A Debian mirror's ``dists/SUITE`` (``InRelease``, ``main/binary-ARCH/Packages.xz``) and its pool.

    Raises (every method): MirrorError when the mirror cannot be reached or sends what the Release
    file says it should not.
    """

    def __init__(
        self, url: str, suite: str = DEFAULT_SUITE, *, timeout_s: float = _TIMEOUT_S, keyring: Path | None = KEYRING
    ) -> None:
        self.url = url.rstrip("/")
        self.suite = suite
        self.timeout_s = timeout_s
        self.keyring = keyring  # None: a mirror of one's own, authenticated by its https
        self._release: dict[str, tuple[str, int]] | None = None
        self.signature = "not checked yet"  # how the Release file was authenticated, for userland.json
        self.downloaded = 0  # bytes received from the mirror so far
        self._lock = threading.Lock()

    def _received(self, n: int) -> None:
        with self._lock:
            self.downloaded += n

    def _open(self, path: str) -> Any:
        url = f"{self.url}/{path}"
        try:
            return urllib.request.urlopen(url, timeout=self.timeout_s)  # noqa: S310 (http(s) URLs only, see __init__)
        except urllib.error.HTTPError as exc:
            raise MirrorError(self.url, f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MirrorError(self.url, str(reason)) from exc

    def _read(self, path: str) -> bytes:
        with self._open(path) as answer:
            try:
                data: bytes = answer.read()
            except OSError as exc:
                raise MirrorError(self.url, f"{path}: {exc}") from exc
        self._received(len(data))
        return data

    def release(self) -> dict[str, tuple[str, int]]:
        """{path under dists/SUITE: (sha256, size)} from the suite's InRelease, its signature checked when possible."""
        if self._release is not None:
            return self._release
        if not self.url.startswith(("http://", "https://")):
            raise MirrorError(self.url, "a mirror URL starts with http:// or https://")
        data = self._read(f"dists/{self.suite}/InRelease")
        self.signature = _check_signature(data, self.url, self.keyring)
        from debian.deb822 import Release

        try:
            release = Release(data.decode("utf-8"))
            entries = {entry["name"]: (entry["sha256"], int(entry["size"])) for entry in release["SHA256"]}
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise MirrorError(self.url, f"dists/{self.suite}/InRelease is not a Release file ({exc})") from exc
        self._release = entries
        return entries

    def index(self, arch: str, *, cache: Path | None = None) -> PackageIndex:
        """The suite's ``main`` packages for ``arch``; kept in ``cache`` (a folder) while its hash matches."""
        name = f"{_COMPONENT}/binary-{arch}/Packages.xz"
        try:
            sha256, size = self.release()[name]
        except KeyError:
            raise MirrorError(self.url, f"{self.suite} has no {name}") from None
        kept = cache / f"Packages-{self.suite}-{arch}.xz" if cache is not None else None
        data = kept.read_bytes() if kept is not None and kept.is_file() else b""
        if hashlib.sha256(data).hexdigest() != sha256:
            data = self._read(f"dists/{self.suite}/{name}")
            if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
                raise MirrorError(self.url, f"dists/{self.suite}/{name} does not match the Release file's sha256")
            if kept is not None:
                kept.parent.mkdir(parents=True, exist_ok=True)
                _write_atomically(kept, data)
        try:
            text = lzma.decompress(data).decode("utf-8")
        except (lzma.LZMAError, UnicodeDecodeError) as exc:
            raise MirrorError(self.url, f"dists/{self.suite}/{name} is unreadable ({exc})") from exc
        return PackageIndex(text, arch)

    def download(self, packages: Sequence[DebPackage], folder: Path, *, on_bytes: OnBytes | None = None) -> list[Path]:
        """Each package's .deb in ``folder``, checked against the index's sha256 (already there and good: kept).

        Files arrive as ``NAME.partial`` and are renamed once checked, so an interrupted download
        leaves no file under its final name; a later call downloads only what is missing.
        """
        folder.mkdir(parents=True, exist_ok=True)
        lock = threading.Lock()

        def counted(n: int, *, received: bool = True) -> None:
            if received:
                self._received(n)
            if on_bytes is not None:
                with lock:
                    on_bytes(n)

        def fetch(package: DebPackage) -> Path:
            target = folder / package.file_name
            if target.is_file() and target.stat().st_size == package.size and file_sha256(target) == package.sha256:
                counted(package.size, received=False)  # downloaded by an earlier, interrupted prepare
                return target
            partial = target.with_name(target.name + ".partial")
            digest = hashlib.sha256()
            with self._open(package.filename) as answer, open(partial, "wb") as out:
                while True:
                    try:
                        chunk = answer.read(_CHUNK)
                    except OSError as exc:
                        raise MirrorError(self.url, f"{package.filename}: {exc}") from exc
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    counted(len(chunk))
            if digest.hexdigest() != package.sha256:
                partial.unlink(missing_ok=True)
                raise MirrorError(self.url, f"{package.filename} does not match the index's sha256")
            os.replace(partial, target)
            return target

        with ThreadPoolExecutor(max_workers=_DOWNLOADERS, thread_name_prefix="deb") as pool:
            return list(pool.map(fetch, packages))


def _check_signature(data: bytes, mirror: str, keyring: Path | None) -> str:
    """How the InRelease file was authenticated: gpgv with Debian's keyring when both are here."""
    gpgv = shutil.which("gpgv")
    if gpgv is None or keyring is None or not keyring.is_file():
        how = "https" if mirror.startswith("https://") else "nothing (plain http)"
        return f"not checked (no gpgv or keyring); authenticated by {how}"
    done = subprocess.run(
        [gpgv, "--quiet", "--keyring", str(keyring), "-"], input=data, capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        message = " ".join(done.stderr.decode("utf-8", "replace").split())
        raise MirrorError(mirror, f"the signature of InRelease does not verify with {keyring}: {message}")
    return f"verified with gpgv and {keyring.name}"


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# ---- unpacking ----

Keep = Callable[[str], bool]  # a member's normalized path ("usr/lib/x.so") → extract it?


def _normalized(name: str) -> str | None:
    """``./usr/lib/x`` → ``usr/lib/x``; None for the root itself; raises for a path leaving it."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"the member {name!r} leaves the unpack folder")
    return "/".join(parts) or None


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def unpack(deb: Path, dest: Path, *, keep: Keep | None = None) -> list[str]:
    """Extract a .deb's files into ``dest`` as ``dpkg-deb -x`` does, without root; returns the paths written.

    Device nodes and FIFOs are skipped (a userland under QEMU reads the host's /dev), absolute
    symbolic links are made relative to ``dest`` (so nothing points out of the folder), and
    ``keep`` (when given) chooses the members. Ownership is the current user's.

    Raises:
        PrepareError: not a .deb, an unreadable archive, or a member that would land outside ``dest``.
    """
    from debian.arfile import ArError
    from debian.debfile import DebError, DebFile

    root = os.path.realpath(dest)
    written: list[str] = []
    try:
        archive = DebFile(filename=str(deb))
        with archive.data.tgz() as tar:
            for member in tar:
                name = _normalized(member.name)
                if name is None or member.isdev() or member.isfifo():
                    continue
                if keep is not None and not member.isdir() and not keep(name):
                    continue
                parent = os.path.realpath(os.path.join(root, os.path.dirname(name)))
                if not _inside(root, parent):
                    raise PrepareError(f"unpacking {deb.name}", f"{member.name} would land outside {dest}")
                member.name = name
                member.mode &= 0o777  # no setuid/setgid/sticky bits in a cache folder
                member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
                if member.issym() and member.linkname.startswith("/"):
                    target = _normalized(member.linkname) or "."
                    member.linkname = os.path.relpath(target, os.path.dirname(name) or ".")
                elif member.islnk():
                    member.linkname = _normalized(member.linkname) or ""
                if member.isdir() and os.path.islink(os.path.join(root, name)):
                    continue  # a merged-/usr link (lib → usr/lib) stays a link
                target_path = os.path.join(root, name)
                if not member.isdir() and (os.path.lexists(target_path)):
                    if os.path.isdir(target_path) and not os.path.islink(target_path):
                        continue
                    os.unlink(target_path)  # a later package replaces the file, as dpkg does
                _extract(tar, member, root)
                if not member.isdir():
                    written.append(name)
    except (ArError, DebError, tarfile.TarError, EOFError, lzma.LZMAError, KeyError) as exc:
        raise PrepareError(f"unpacking {deb.name}", f"{type(exc).__name__}: {exc}") from exc
    except ValueError as exc:
        raise PrepareError(f"unpacking {deb.name}", str(exc)) from exc
    except OSError as exc:
        raise PrepareError(f"unpacking {deb.name}", f"{exc.strerror}: {exc.filename}") from exc
    return written


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, root: str) -> None:
    """One member, its name and links already checked; Python's own extraction filters would refuse
    Debian's absolute links or re-check through links we made, so the trusted filter is named."""
    if hasattr(tarfile, "fully_trusted_filter"):
        tar.extract(member, root, filter="fully_trusted")
    else:  # Python before 3.11.4 / 3.10.12 has no filters
        tar.extract(member, root)
