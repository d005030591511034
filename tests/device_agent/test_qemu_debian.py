"""Preparing the arm64 userland without root: Debian's index, .deb files, seals, against a mirror of our own.

A real HTTP server on loopback serves a small Debian mirror made here (an InRelease, two
Packages.xz, .deb files built in the test), so resolving, downloading, checking, unpacking, the
disk-space check and an interrupted prepare all run for real without the internet. The real
mirror is used by tests/test_run_rootless.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from device_agent.qemu import MirrorError, NoSpaceError, PrepareError, prepare, seal
from device_agent.qemu.debian import Mirror, PackageIndex, unpack

SUITE = "bookworm"


# ---- a .deb and a mirror, made here ----


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def _tar_xz(entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for entry in entries:
            info, data = entry if isinstance(entry, tuple) else (entry, None)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uname, info.gname = len(data), mode, "root", "root"
    return info, data


def _entry(name: str, kind: bytes, *, link: str = "", mode: int = 0o755) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


def make_deb(files: dict[str, bytes], links: dict[str, str] | None = None, extra: list[tarfile.TarInfo] | None = None) -> bytes:
    entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = [_entry("./", tarfile.DIRTYPE)]
    dirs = sorted({"/".join(p.split("/")[:i]) for p in [*files, *(links or {})] for i in range(1, p.count("/") + 1)})
    entries += [_entry(f"./{d}/", tarfile.DIRTYPE) for d in dirs]
    entries += [_file(f"./{name}", data) for name, data in files.items()]
    entries += [_entry(f"./{name}", tarfile.SYMTYPE, link=target) for name, target in (links or {}).items()]
    entries += extra or []
    control = _tar_xz([_file("./control", b"Package: x\nVersion: 1\nArchitecture: all\n")])
    return _ar([("debian-binary", b"2.0\n"), ("control.tar.xz", control), ("data.tar.xz", _tar_xz(entries))])


@dataclass
class Package:
    name: str
    deb: bytes
    depends: str = ""
    provides: str = ""
    installed_kb: int = 10

    def paragraph(self, arch: str) -> str:
        lines = [f"Package: {self.name}", "Version: 1.0-1", f"Architecture: {arch}", f"Installed-Size: {self.installed_kb}"]
        lines += [f"Depends: {self.depends}"] if self.depends else []
        lines += [f"Provides: {self.provides}"] if self.provides else []
        lines += [
            f"Filename: pool/main/{self.name[0]}/{self.name}/{self.name}_1.0-1_{arch}.deb",
            f"Size: {len(self.deb)}",
            f"SHA256: {hashlib.sha256(self.deb).hexdigest()}",
            "Description: test package",
        ]
        return "\n".join(lines) + "\n"


@dataclass
class FakeMirror:
    url: str
    files: dict[str, bytes]
    requests: list[str] = field(default_factory=list)
    hang: dict[str, threading.Event] = field(default_factory=dict)  # path → released when set
    hanging: threading.Event = field(default_factory=threading.Event)  # half of a hung file was sent

    def requested(self, fragment: str) -> bool:
        return any(fragment in path for path in list(self.requests))


def _mirror_files(arm64: list[Package], amd64: list[Package]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    release = [f"Suite: {SUITE}", f"Codename: {SUITE}", "Architectures: amd64 arm64", "Components: main", "SHA256:"]
    for arch, packages in (("arm64", arm64), ("amd64", amd64)):
        index = lzma.compress("\n".join(p.paragraph(arch) for p in packages).encode())
        name = f"main/binary-{arch}/Packages.xz"
        files[f"dists/{SUITE}/{name}"] = index
        release.append(f" {hashlib.sha256(index).hexdigest()} {len(index)} {name}")
        for p in packages:
            files[f"pool/main/{p.name[0]}/{p.name}/{p.name}_1.0-1_{arch}.deb"] = p.deb
    files[f"dists/{SUITE}/InRelease"] = ("\n".join(release) + "\n").encode()
    return files


@pytest.fixture
def serve() -> Iterator:
    servers: list[ThreadingHTTPServer] = []

    def start(files: dict[str, bytes]) -> FakeMirror:
        mirror = FakeMirror("", files)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.removeprefix("/debian/")
                mirror.requests.append(path)
                data = mirror.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if path in mirror.hang:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    mirror.hanging.set()
                    mirror.hang[path].wait(60)
                    return
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        mirror.url = f"http://127.0.0.1:{server.server_address[1]}/debian"
        return mirror

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _packages(installed_kb: int = 10) -> tuple[list[Package], list[Package]]:
    guest = [
        Package("python3", make_deb({"usr/lib/python3/hello.py": b"print('hi')\n"}), depends="libfoo (>= 1) | libbar, virtual-thing"),
        Package("libfoo", make_deb({"lib/aarch64-linux-gnu/libfoo.so.1": b"\x7fELF-foo"})),
        Package("libbar", make_deb({"usr/lib/libbar.so": b"bar"})),
        Package("thing-provider", make_deb({"usr/share/thing": b"thing"}), provides="virtual-thing"),
        Package("libstdc++6", make_deb({"usr/lib/aarch64-linux-gnu/libstdc++.so.6": b"std"}), installed_kb=installed_kb),
        Package("coreutils", make_deb({"usr/bin/true": b"true"})),
    ]
    host = [
        Package("qemu-user", make_deb({"usr/bin/qemu-aarch64": b"qemu" * 5000, "usr/bin/qemu-riscv64": b"other"}), depends="libc6"),
        Package("libc6", make_deb({"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": b"ld", "usr/share/doc/libc6/copyright": b"c"})),
    ]
    return guest, host


# ---- the index ----


def test_resolve_follows_depends_alternatives_and_provides() -> None:
    guest, _ = _packages()
    index = PackageIndex("\n".join(p.paragraph("arm64") for p in guest), "arm64")
    assert len(index) == 6 and "libbar" in index
    names = [p.name for p in index.resolve(["python3"])]
    assert names == ["libfoo", "python3", "thing-provider"]  # libfoo: the first alternative; thing-provider: Provides
    package = index.package("python3")
    assert package.version == "1.0-1" and package.installed_size == 10 * 1024 and package.file_name.endswith("_arm64.deb")


def test_resolve_names_what_nothing_provides() -> None:
    index = PackageIndex(Package("a", b"", depends="b | c").paragraph("arm64"), "arm64")
    with pytest.raises(PrepareError, match=r"nothing provides b \| c \(needed by a\)"):
        index.resolve(["a"])
    with pytest.raises(PrepareError, match="nothing provides zzz"):
        index.resolve(["zzz"])


# ---- unpacking ----


def test_unpack_is_dpkg_deb_x_without_root(tmp_path: Path) -> None:
    extra = [
        _entry("./dev/null", tarfile.CHRTYPE),
        _entry("./usr/bin/setuid-tool", tarfile.REGTYPE, mode=0o4755),
    ]
    deb = tmp_path / "x.deb"
    deb.write_bytes(make_deb({"lib/aarch64-linux-gnu/libz.so.1.2": b"z"}, {"usr/lib/libz.so": "/lib/aarch64-linux-gnu/libz.so.1.2"}, extra))
    root = tmp_path / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")  # merged /usr, as bootstrap lays it out
    written = unpack(deb, root)
    assert (root / "usr" / "lib" / "aarch64-linux-gnu" / "libz.so.1.2").read_bytes() == b"z"  # through the lib link
    assert (root / "lib").is_symlink()
    link = root / "usr" / "lib" / "libz.so"
    assert os.readlink(link) == "../../lib/aarch64-linux-gnu/libz.so.1.2" and link.read_bytes() == b"z"  # made relative
    assert not (root / "dev").exists()  # no device nodes
    assert (root / "usr" / "bin" / "setuid-tool").stat().st_mode & 0o7777 == 0o755
    assert sorted(written) == ["lib/aarch64-linux-gnu/libz.so.1.2", "usr/bin/setuid-tool", "usr/lib/libz.so"]
    assert all(os.lstat(root / w).st_uid == os.getuid() for w in written)

    kept = tmp_path / "kept"
    kept.mkdir()
    assert unpack(deb, kept, keep=lambda name: name.endswith(".so")) == ["usr/lib/libz.so"]


def test_unpack_refuses_a_member_leaving_the_folder_and_a_non_deb(tmp_path: Path) -> None:
    deb = tmp_path / "evil.deb"
    deb.write_bytes(make_deb({}, extra=[_file("./../outside", b"x")[0]]))
    with pytest.raises(PrepareError, match="leaves the unpack folder"):
        unpack(deb, tmp_path / "root")
    assert not (tmp_path / "outside").exists()
    junk = tmp_path / "junk.deb"
    junk.write_bytes(b"not an archive")
    with pytest.raises(PrepareError, match="unpacking junk.deb"):
        unpack(junk, tmp_path / "root")


# ---- the mirror ----


def test_download_checks_sha256_keeps_good_files_and_refuses_bad_ones(serve, tmp_path: Path) -> None:
    guest, host = _packages()
    mirror_files = _mirror_files(guest, host)
    fake = serve(mirror_files)
    mirror = Mirror(fake.url, SUITE, keyring=None)
    packages = mirror.index("arm64").resolve(["python3"])
    seen: list[int] = []
    paths = mirror.download(packages, tmp_path, on_bytes=seen.append)
    assert [p.name for p in paths] == [p.file_name for p in packages] and sum(seen) == sum(p.size for p in packages)
    assert mirror.signature.startswith("not checked")
    fetched = len(fake.requests)
    mirror.download(packages, tmp_path)  # all there and good: nothing fetched again
    assert len(fake.requests) == fetched

    bad = packages[0]
    (tmp_path / bad.file_name).unlink()
    mirror_files[bad.filename] = b"tampered" + mirror_files[bad.filename][8:]
    with pytest.raises(MirrorError, match="does not match the index's sha256"):
        mirror.download([bad], tmp_path)
    assert not (tmp_path / bad.file_name).exists() and not list(tmp_path.glob("*.partial"))


def test_an_unreachable_mirror_is_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/debian"
        with pytest.raises(MirrorError) as info:
            Mirror(url, SUITE).index("arm64")
    message = str(info.value)
    assert message.startswith(f"the Debian mirror {url} cannot be used (") and "refused" in message
    assert "\n" not in message and "LAB_DEBIAN_MIRROR" in message


# ---- seals ----


def test_a_seal_finds_half_made_missing_truncated_and_changed_files(tmp_path: Path) -> None:
    part = tmp_path / "rootfs"
    (part / "usr" / "lib" / "__pycache__").mkdir(parents=True)
    (part / "usr" / "lib" / "a.so").write_bytes(b"a" * 100)
    (part / "usr" / "lib" / "__pycache__" / "x.pyc").write_bytes(b"derived")
    (part / "lib").symlink_to("usr/lib")
    assert seal.check(part) == "rootfs is half-made (no .lab-complete)"
    seal.seal(part, {"made_from": ["a=1"]})
    assert seal.check(part, full=True) is None and seal.sealed_info(part) == {"made_from": ["a=1"]}
    listed = json.loads((part / ".lab-complete").read_text())["files"]
    assert sorted(listed) == ["lib", "usr/lib/a.so"]  # __pycache__ is Python's to rewrite
    (part / "usr" / "lib" / "__pycache__" / "x.pyc").write_bytes(b"rewritten")
    assert seal.check(part, full=True) is None

    (part / "usr" / "lib" / "a.so").write_bytes(b"b" * 100)  # same size, other bytes
    assert seal.check(part) is None
    assert seal.check(part, full=True) == "rootfs/usr/lib/a.so does not match its sha256 (damaged)"
    (part / "usr" / "lib" / "a.so").write_bytes(b"a" * 10)
    assert seal.check(part) == "rootfs/usr/lib/a.so has 10 bytes, not 100 (damaged or half-written)"
    (part / "usr" / "lib" / "a.so").unlink()
    assert seal.check(part) == "rootfs/usr/lib/a.so is missing"
    assert seal.check(tmp_path / "nothing") == "nothing is missing"


# ---- prepare against the mirror of our own ----


def test_not_enough_disk_is_said_before_any_package_is_downloaded(serve, tmp_path: Path) -> None:
    guest, host = _packages(installed_kb=2**50 // 1024)  # one package that would fill a petabyte
    fake = serve(_mirror_files(guest, host))
    with pytest.raises(NoSpaceError) as info:
        prepare(tmp_path / "cache", mirror=fake.url, keyring=None, progress=lambda line: None)
    message = str(info.value)
    assert message.startswith(f"not enough disk space for the arm64 userland in {tmp_path / 'cache'}: it needs about ")
    assert "MB are free" in message and "\n" not in message
    assert not fake.requested("pool/")
    assert not (tmp_path / "cache" / "rootfs").exists() and not (tmp_path / "cache" / "userland.json").exists()


_PREPARE = (
    "import sys; from pathlib import Path; from device_agent.qemu import prepare; "
    "prepare(Path(sys.argv[1]), mirror=sys.argv[2], keyring=None, progress=lambda line: print(line, flush=True))"
)


def test_an_interrupted_prepare_leaves_nothing_half_made_and_the_next_one_reuses_what_is_complete(
    serve, tmp_path: Path
) -> None:
    guest, host = _packages()
    fake = serve(_mirror_files(guest, host))
    qemu_deb = next(path for path in fake.files if "/qemu-user_" in path)
    fake.hang[qemu_deb] = threading.Event()
    dest = tmp_path / "cache"
    process = subprocess.Popen(
        [sys.executable, "-c", _PREPARE, str(dest), fake.url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert fake.hanging.wait(120), "the prepare never reached the host part's download"
    finally:
        process.kill()  # interrupted in the middle of the host part's download
        output = process.communicate(timeout=30)[0]
    fake.hang[qemu_deb].set()
    del fake.hang[qemu_deb]
    assert "unpacking 5 packages into rootfs/" in output, output
    assert seal.check(dest / "rootfs", full=True) is None  # finished before the interruption: complete
    assert not (dest / "host").exists() and not (dest / "userland.json").exists()
    assert not (dest / "downloads" / Path(qemu_deb).name).exists()  # the half-downloaded package is not under its final name
    rootfs_requests = [r for r in fake.requests if "_arm64.deb" in r]

    lines: list[str] = []
    with pytest.raises(PrepareError, match="finding the guest's Python"):  # our python3 package has no interpreter
        prepare(dest, mirror=fake.url, keyring=None, progress=lines.append)
    assert not any("into rootfs/" in line for line in lines), lines
    assert "unpacking 2 packages into host/" in lines
    assert [r for r in fake.requests if "_arm64.deb" in r] == rootfs_requests  # rootfs was not downloaded again
    assert seal.check(dest / "host", full=True) is None
    assert (dest / "host" / "usr" / "bin" / "qemu-aarch64").is_file()
    assert not (dest / "host" / "usr" / "bin" / "qemu-riscv64").exists()  # one emulator of thirty is kept
    assert not (dest / "userland.json").exists()
