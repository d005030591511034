"""The README's first command as a user without root: the arm64 emulated device is prepared from
scratch (QEMU and a Debian arm64 userland from the real Debian mirror, LiteRT from PyPI) into that
user's own cache, and ``lab run`` shows both emulated devices.

Run as root (as CI is), the lab runs as an unprivileged user made here (``useradd``, a HOME in a
fresh temporary folder, so pip's and the lab's caches start empty), with an adb server of its own
started as that user (as a user's first ``lab run`` would find or start one); run as anyone else,
it runs as that user. Also here: no C compiler on PATH (the ARM core runs and says counts are
unavailable) and an unreachable mirror (x86 only, with the reason), both as that user.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import adbutils
import pytest

pytestmark = [pytest.mark.tf, pytest.mark.qemu, pytest.mark.slow]

QUICK = ["--quick", "--dataset", "synthetic", "--trials", "2", "--runs", "20", "--warmup", "2"]
USER = "labtest"
_REPO = Path(__file__).resolve().parent.parent


@dataclass
class User:
    """Runs ``python -m host.cli`` as an unprivileged user with its own HOME and adb server (``run``)."""

    uid: int
    gid: int
    home: Path
    adb_port: int = 0

    def _switch(self) -> dict[str, object]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []} if os.geteuid() == 0 else {}

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "XDG_", "PIP_", "ANDROID_")) and k != "CC"}
        mine = {"HOME": str(self.home), "LAB_HOME": str(self.home / "lab"), "ANDROID_ADB_SERVER_PORT": str(self.adb_port)}
        return {**base, **mine, **(extra or {})}

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "host.cli", *args], env=self.env(env), cwd=_REPO, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL, **self._switch(),  # type: ignore[call-overload]
        )  # fmt: skip

    def adb(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The bundled adb against this user's own server (its key in this user's ~/.android)."""
        env = {**self.env(), "ADB_EMU": "0", "ADB_MDNS": "0"}
        return subprocess.run(
            [adbutils.adb_path(), "-P", str(self.adb_port), *args], env=env, capture_output=True, text=True,
            timeout=120, stdin=subprocess.DEVNULL, **self._switch(),  # type: ignore[call-overload]
        )  # fmt: skip

    def make_dir(self, name: str) -> Path:
        path = self.home / name
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)
        return path


def _ancestors(path: Path) -> list[Path]:
    return [p for p in Path(os.path.realpath(path)).parents]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _adb_server(user: User) -> Iterator[User]:
    user.adb_port = _free_port()
    started = user.adb("start-server")
    assert started.returncode == 0, started.stderr
    try:
        yield user
    finally:
        user.adb("kill-server")


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    home = Path(tempfile.mkdtemp(prefix="lab-rootless-", dir="/tmp"))
    if os.geteuid() != 0:
        with _adb_server(User(os.getuid(), os.getgid(), home)) as found:
            yield found
        shutil.rmtree(home, ignore_errors=True)
        return
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        entry = pwd.getpwnam(USER)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    # The interpreter and the checkout may sit under a folder only root may enter (pyenv under
    # /root): let others pass through (not list) those folders for the test, and put them back after.
    changed: list[tuple[Path, int]] = []
    for folder in {*_ancestors(Path(sys.executable)), *_ancestors(_REPO / "host"), *_ancestors(Path(adbutils.adb_path()))}:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            changed.append((folder, stat.S_IMODE(mode)))
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        with _adb_server(User(entry.pw_uid, entry.pw_gid, home)) as found:
            yield found
    finally:
        for folder, mode in changed:
            folder.chmod(mode)
        shutil.rmtree(home, ignore_errors=True)


def _report(user: User, env: dict[str, str] | None = None) -> dict:
    done = user.run("report", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _devices(document: dict) -> dict[str, dict[str, dict]]:
    """{emulation ("native" or "qemu-user …"): {role: row}} of a report."""
    return {
        device["device"]["emulation"] or "native": {row["role"]: row for row in device["rows"]}
        for device in document["devices"]
    }


@pytest.fixture(scope="module")
def first_run(user: User) -> subprocess.CompletedProcess[str]:
    """The README's first command on a clean cache: prepares the arm64 device, then runs on both."""
    return user.run("run", *QUICK)


def test_the_first_command_prepares_the_arm_core_without_root_and_shows_both_devices(first_run, user: User) -> None:
    assert first_run.returncode == 0, first_run.stderr[-4000:]
    err, out = first_run.stderr, first_run.stdout
    assert "downloading " in err and " MB (QEMU " in err and "x86 CPUs with AVX never run them" in err, err[-4000:]
    cache = user.home / ".cache" / "lab" / "qemu-arm64"  # the per-user default
    info = json.loads((cache / "userland.json").read_text())
    assert info["format"] == 2 and info["plugin_error"] is None and info["downloaded_mb"] > 40
    assert (cache / "rootfs").stat().st_uid == user.uid  # made by that user, not by root
    assert not list(cache.glob("*.partial")) and not (cache / "downloads").exists()

    # the table: both devices, instructions for the arm64 one, and the finding in one sentence
    assert "x86_64" in out and "qemu-user neoverse-n1" in out and "instructions/inference" in out
    assert "sparse path engaged: yes" in out
    assert "finding: On this x86 CPU the pruned model" in out and "the sparse path is engaged" in out
    devices = _devices(_report(user))
    assert set(devices) == {"native", "qemu-user neoverse-n1"}
    arm = devices["qemu-user neoverse-n1"]
    assert arm["pruned"]["instructions"] < 0.7 * arm["dense"]["instructions"], arm
    assert devices["native"]["dense"]["instructions"] is None


def test_without_a_compiler_the_arm_core_runs_and_says_counts_are_unavailable(first_run, user: User) -> None:
    assert first_run.returncode == 0, first_run.stderr[-4000:]
    # A copy of the prepared userland without its plugin (the packages stay: no download), prepared
    # again with no C compiler on PATH.
    source, copy = user.home / ".cache" / "lab" / "qemu-arm64", user.make_dir("no-compiler") / "qemu-arm64"
    shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns("plugin", "userland.json"))
    if os.geteuid() == 0:
        for top, dirs, files in os.walk(copy):
            for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
                os.lchown(name, user.uid, user.gid)
    empty_path = str(user.make_dir("empty-path"))
    env = {"LAB_QEMU_CACHE": str(copy), "PATH": empty_path}
    done = user.run("run", *QUICK, "--emulator", "arm64", "--json", env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads(done.stdout)
    assert any("instruction counts unavailable: no C compiler (cc, gcc or clang) on PATH" in n for n in document["notes"])
    assert "no instruction counts: no C compiler" in done.stderr
    rows = {row["role"]: row for device in document["report"]["devices"] for row in device["rows"]}
    assert all(row["trials_ok"] == 2 and row["instructions"] is None for row in rows.values()), rows
    assert json.loads((copy / "userland.json").read_text())["plugin_error"].startswith("no C compiler")


def test_an_unreachable_mirror_runs_on_x86_only_and_says_why(first_run, user: User) -> None:
    assert first_run.returncode == 0, first_run.stderr[-4000:]
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        mirror = f"http://127.0.0.1:{closed.getsockname()[1]}/debian"
        env = {"LAB_DEBIAN_MIRROR": mirror, "LAB_QEMU_CACHE": str(user.make_dir("offline-cache"))}
        done = user.run("run", *QUICK, "--json", env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads(done.stdout)
    (note,) = [n for n in document["notes"] if n.startswith("no emulated ARM core in this run: ")]
    assert f"the Debian mirror {mirror} cannot be used (" in note and "refused" in note
    assert note.endswith("; running on the x86_64 one only") and "\n" not in note
    assert [d["device"]["emulation"] for d in document["report"]["devices"]] == ["native"]
    assert "finding" in document and "x86 CPU" in document["finding"]
