"""``lab emulator start | status | stop`` with a real adb server; bad input gets one line and exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from host.cli import app


def _lab(home: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--home", str(home), "emulator", *args])


def test_start_status_stop(adb_server, tmp_path: Path) -> None:
    started = _lab(tmp_path, "start", "--json")
    assert started.exit_code == 0, started.output
    handle = json.loads(started.stdout)
    try:
        assert adb_server.client.device(handle["serial"]).getprop("ro.lab.emulated") == "1"
        status = json.loads(_lab(tmp_path, "status", "--json").stdout)
        assert [(h["serial"], h["running"]) for h in status] == [(handle["serial"], True)]
    finally:
        stopped = _lab(tmp_path, "stop", "--all")
    assert stopped.exit_code == 0 and f"stopped {handle['serial']}" in stopped.stdout
    assert json.loads(_lab(tmp_path, "status", "--json").stdout) == []
    assert handle["serial"] not in {d.serial for d in adb_server.client.device_list()}
    assert not _alive(handle["pid"])


def test_start_with_a_phone_profile(adb_server, tmp_path: Path) -> None:
    started = _lab(tmp_path, "start", "--profile", "galaxy_a50", "--json")
    assert started.exit_code == 0, started.output
    handle = json.loads(started.stdout)
    try:
        device = adb_server.client.device(handle["serial"])
        assert device.getprop("ro.build.version.sdk") == "28" and device.getprop("ro.lab.emulated") == "1"
    finally:
        _lab(tmp_path, "stop", "--all")
    unknown = _lab(tmp_path, "start", "--profile", "pixel9")
    assert unknown.exit_code == 2
    assert "unknown phone profile 'pixel9': choose from galaxy_a50, galaxy_j2_core, pixel4" in unknown.output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_bad_input(adb_server, tmp_path: Path) -> None:
    neither = _lab(tmp_path, "stop")
    assert neither.exit_code == 2 and "give one SERIAL or --all" in neither.output
    unknown = _lab(tmp_path, "stop", "127.0.0.1:1")
    assert unknown.exit_code == 2 and "no emulated device 127.0.0.1:1 is running" in unknown.output
    arch = _lab(tmp_path, "start", "--arch", "mips")
    assert arch.exit_code == 2 and "mips" in arch.output
    cpu = _lab(tmp_path, "start", "--cpu", "cortex-a72")
    assert cpu.exit_code == 2 and "--cpu applies to arm64" in cpu.output
    prepare = _lab(tmp_path, "prepare", "--arch", "x86_64")
    assert prepare.exit_code == 2 and "only --arch arm64 needs preparing" in prepare.output


def test_arm64_without_a_userland_names_the_prepare_command(adb_server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LAB_QEMU_CACHE", str(tmp_path / "no-userland"))
    result = _lab(tmp_path, "start", "--arch", "arm64")
    assert result.exit_code != 0
    assert "lab emulator prepare --arch arm64" in result.output
    assert json.loads(_lab(tmp_path, "status", "--json").stdout) == []


def test_prepare_with_an_unreachable_mirror_says_so_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        mirror = f"http://127.0.0.1:{closed.getsockname()[1]}/debian"
        result = _lab(tmp_path, "prepare", "--dir", str(tmp_path / "cache"), "--mirror", mirror)
    assert result.exit_code == 2, result.output
    assert f"the Debian mirror {mirror} cannot be used (" in result.output
    assert not (tmp_path / "cache" / "userland.json").exists()
