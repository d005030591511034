"""The sandbox holds against escapes over sync and shell; cut-off pushes leave nothing; safe defaults."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import adbutils
import pytest

from device_agent.emulator.launch import spawn


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every path under ``folder`` with its content (files) or link target (symbolic links)."""
    found: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(folder))
            found[rel] = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else "dir"
    return found


@pytest.fixture
def jail(emulated_device_factory, tmp_path):
    """A device whose sandbox holds symbolic links to a folder outside it, with a secret there."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret\n")
    root = tmp_path / "deep/er/root"
    root.mkdir(parents=True)
    (root / "link").symlink_to(outside)
    (root / "file_link").symlink_to(outside / "secret.txt")
    (root / "ok.txt").write_text("fine\n")
    device = emulated_device_factory(root=root)
    before = snapshot(tmp_path)
    yield device, tmp_path
    assert snapshot(tmp_path) == before, "something outside or inside the sandbox changed"


@pytest.mark.parametrize("target", [
    "/data/local/tmp/link/evil.txt",
    "/data/local/tmp/file_link",
    "/data/local/tmp/../../../../outside/evil.txt",
    "/data/local/tmpx/evil.txt",
    "/proc/cpuinfo",
    "/evil.txt",
])
def test_push_escapes_fail_and_create_nothing(jail, adb_server, tmp_path, target):
    device, _ = jail
    with pytest.raises(adbutils.AdbError):
        device.device.sync.push(b"evil", target)
    local = tmp_path / "evil.txt"
    local.write_bytes(b"evil")
    result = adb_server.run("-s", device.serial, "push", str(local), target)
    local.unlink()
    assert result.returncode != 0
    assert re.search(r"path escapes the sandbox|Permission denied|Read-only file system", result.stderr), result.stderr


@pytest.mark.parametrize(("path", "reason"), [
    ("/data/local/tmp/link/secret.txt", "path escapes the sandbox"),
    ("/data/local/tmp/file_link", "path escapes the sandbox"),
    ("/data/local/tmp/../../../etc/passwd", "No such file or directory"),
    ("//data/local/tmp/../tmp/../../../etc/hostname", "No such file or directory"),
])
def test_pull_escapes_fail(jail, path, reason):
    device, _ = jail
    with pytest.raises(adbutils.AdbError, match=reason):
        device.device.sync.read_bytes(path)


def test_stat_does_not_follow_links_out(jail):
    sync = jail[0].device.sync
    assert (sync.stat("/data/local/tmp/link/secret.txt").mode, sync.stat("/data/local/tmp/link/secret.txt").size) == (0, 0)
    assert stat.S_ISLNK(sync.stat("/data/local/tmp/file_link").mode)  # STAT is lstat, as in adbd


def test_list_through_a_link_out_is_empty(jail):
    device, _ = jail
    assert device.device.sync.list("/data/local/tmp/link") == []
    names = {e.path for e in device.device.sync.list("/data/local/tmp")}
    assert names == {".", "..", "link", "file_link", "ok.txt"}


@pytest.mark.parametrize("command", [
    "cat /data/local/tmp/link/secret.txt",
    "cat /data/local/tmp/file_link",
    "sha256sum /data/local/tmp/file_link",
    "ls /data/local/tmp/link",
    "cd /data/local/tmp/link",
    "echo x > /data/local/tmp/link/new.txt",
    "echo x >> /data/local/tmp/file_link",
    "cat < /data/local/tmp/file_link",
    "mkdir /data/local/tmp/link/d",
    "mkdir -p /data/local/tmp/link/a/b",
    "rm /data/local/tmp/link/secret.txt",
    "rm -rf /data/local/tmp/link/secret.txt",
    "chmod 777 /data/local/tmp/file_link",
    "benchmark_model --graph=/data/local/tmp/link/secret.txt",
    "cd /data/local/tmp && benchmark_model --graph=file_link",
])
def test_shell_escapes_through_links_fail(jail, command):
    device, _ = jail
    result = device.device.shell2(command, v2=True)
    assert result.returncode != 0
    assert "path escapes the sandbox" in result.stderr
    assert "top secret" not in result.output


@pytest.mark.parametrize(("command", "message"), [
    ("cat /data/local/tmp/../../../etc/passwd", "cat: /data/local/tmp/../../../etc/passwd: No such file or directory"),
    ("cd /data/local/tmp/../../.. && cat etc/hostname", "cat: etc/hostname: No such file or directory"),
    ("echo x > /data/evil", "/system/bin/sh: can't create /data/evil: Permission denied"),
    ("mkdir /data/local/evil", "mkdir: /data/local/evil: Permission denied"),
    ("rm -rf /data/local/tmp", "rm: /data/local/tmp: refusing to remove /data/local/tmp itself"),
    ("rm /proc/cpuinfo", "rm: /proc/cpuinfo: Read-only file system"),
    ("benchmark_model --graph=/etc/passwd", "benchmark_model: /etc/passwd: no such file on the emulated device"),
    ("/bin/sh -c id", "/system/bin/sh: /bin/sh: inaccessible or not found"),
])
def test_shell_path_tricks_fail(jail, command, message):
    device, _ = jail
    result = device.device.shell2(command, v2=True)
    assert result.returncode != 0
    assert result.stderr.startswith(message)


def test_removing_a_link_removes_the_link_not_its_target(emulated_device_factory, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    device = emulated_device_factory(root=root).device
    assert device.shell2("rm /data/local/tmp/link", v2=True).returncode == 0
    assert not (root / "link").is_symlink() and (outside / "keep.txt").read_text() == "keep"


def _open_sync_send(device, path: str) -> adbutils.AdbConnection:
    """A sync SEND whose DATA is still coming: the host side of a push in progress."""
    c = device.open_transport()
    c.send_command("sync:")
    c.check_okay()
    spec = f"{path},{0o100644}".encode()
    c.conn.sendall(b"SEND" + struct.pack("<I", len(spec)) + spec)
    c.conn.sendall(b"DATA" + struct.pack("<I", 65536) + os.urandom(65536))
    c.conn.sendall(b"DATA" + struct.pack("<I", 65536) + os.urandom(1000))  # a chunk cut short
    return c


def _wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def _partials(root: Path) -> list[Path]:
    return list(root.glob(".*.partial"))


def test_push_cut_off_by_the_client_leaves_no_file(emulated_device):
    c = _open_sync_send(emulated_device.device, "/data/local/tmp/model.tflite")
    _wait_until(lambda: _partials(emulated_device.root), "the push is under way")
    c.close()
    _wait_until(lambda: not _partials(emulated_device.root), "the partial file is removed")
    assert list(emulated_device.root.iterdir()) == []
    assert emulated_device.device.shell("echo alive") == "alive"


def test_push_cut_off_by_adb_disconnect_leaves_no_file(emulated_device, adb_server):
    c = _open_sync_send(emulated_device.device, "/data/local/tmp/model.tflite")
    _wait_until(lambda: _partials(emulated_device.root), "the push is under way")
    adb_server.client.disconnect(emulated_device.serial)
    emulated_device.connected = False
    _wait_until(lambda: not _partials(emulated_device.root), "the partial file is removed")
    assert list(emulated_device.root.iterdir()) == []
    c.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def host_pids(marker: str) -> list[int]:
    """Host PIDs of the processes whose command line holds ``marker`` (a device process's own
    getpid() is its PID inside the device's namespace, not the host's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_closed_shell_stops_its_process(emulated_device):
    script = f"#!{sys.executable}\nimport os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n"
    device = emulated_device.device
    device.sync.push(script.encode(), "/data/local/tmp/slow", mode=0o755)
    c = device.open_shell("/data/local/tmp/slow; echo never")
    int(c.conn.recv(100))
    marker = str(emulated_device.root.resolve() / "slow")
    pids = host_pids(marker)
    assert pids and all(_alive(pid) for pid in pids)
    c.close()
    _wait_until(lambda: not any(_alive(pid) for pid in pids), "the device's process is killed")


def _run_emulator(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "device_agent", "emulator", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_non_loopback_address_needs_allow_remote():
    result = _run_emulator("--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2 and result.stdout == ""
    assert "refusing to listen on '0.0.0.0': not a loopback address; pass --allow-remote" in result.stderr


def test_allow_remote_listens_with_a_warning(tmp_path):
    launched = spawn(host="0.0.0.0", root=tmp_path / "root", log_path=tmp_path / "log", extra_args=("--allow-remote",))
    try:
        assert "WARNING: listening on '0.0.0.0'" in launched.log_text()
        with socket.create_connection(("127.0.0.1", launched.port), timeout=5):
            pass
    finally:
        status = launched.stop()
    assert status == 0


def test_busy_port_exits_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _run_emulator("--port", str(taken.getsockname()[1]), "--root", str(tmp_path))
    assert result.returncode == 1 and "cannot listen on 127.0.0.1:" in result.stderr


@pytest.mark.parametrize("how", ["terminate", "interrupt"])
def test_signals_exit_0_and_remove_the_temporary_root(tmp_path, how):
    launched = spawn(log_path=tmp_path / "log")
    try:
        match = re.search(r"serving /data/local/tmp from (\S+)", launched.log_text())
        assert match, launched.log_text()
        root = Path(match.group(1))
        assert root.is_dir()
        if how == "interrupt":
            launched.process.send_signal(signal.SIGINT)
            assert launched.process.wait(10) == 0
    finally:
        status = launched.stop()
    assert status == 0
    assert not root.exists()
