"""`lab tools add | list | fetch` through the command line."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from host.cli.main import app

from .elf_files import EM_AARCH64, EM_X86_64, write_elf


def test_add_and_list(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    empty = runner.invoke(app, [*home, "tools", "list"])
    assert empty.exit_code == 0 and "no cached tools" in empty.stderr
    added = runner.invoke(app, [*home, "tools", "add", str(write_elf(tmp_path / "bm", EM_AARCH64)), "--abi", "arm64-v8a"])
    assert added.exit_code == 0 and added.stdout.startswith("added arm64-v8a ")
    listing = json.loads(runner.invoke(app, [*home, "tools", "list", "--json"]).stdout)
    (tool,) = listing["tools"]
    assert tool["abi"] == "arm64-v8a" and tool["default"] and tool["builtin"] is False
    assert Path(tool["path"]).is_file() and tool["source"].startswith("added:")
    table = runner.invoke(app, [*home, "tools", "list"])
    assert table.exit_code == 0 and tool["sha256"][:16] in table.stdout


def test_add_wrong_abi_and_missing_file(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    wrong = runner.invoke(app, [*home, "tools", "add", str(write_elf(tmp_path / "bm", EM_X86_64)), "--abi", "arm64-v8a"])
    assert wrong.exit_code == 2 and "is built for x86_64, not arm64-v8a: pass --abi x86_64" in wrong.stderr
    missing = runner.invoke(app, [*home, "tools", "add", str(tmp_path / "nope"), "--abi", "arm64-v8a"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fetch_offline_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No way out (every request goes to a closed local proxy): the real nightly URL fails with one line and exit 2."""
    proxy = f"http://127.0.0.1:{_closed_port()}"
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "tools", "fetch", "--abi", "armeabi-v7a"])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: cannot download https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/"
        "release/lite/tools/nightly/latest/android_arm_benchmark_model: "
    )
    assert result.stderr.count("\n") == 1
    plus_flex = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "tools", "fetch", "--abi", "x86", "--plus-flex"])
    assert plus_flex.exit_code == 2 and "no benchmark_model build for x86" in plus_flex.stderr


def test_remove_a_broken_tool_and_the_previous_one_is_the_default_again(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    good = write_elf(tmp_path / "good", EM_AARCH64)
    broken = tmp_path / "broken"
    broken.write_bytes(good.read_bytes() + b"\0broken build")
    broken.chmod(0o755)
    assert runner.invoke(app, [*home, "tools", "add", str(good), "--abi", "arm64-v8a"]).exit_code == 0
    assert runner.invoke(app, [*home, "tools", "add", str(broken), "--abi", "arm64-v8a"]).exit_code == 0
    tools = json.loads(runner.invoke(app, [*home, "tools", "list", "--json"]).stdout)["tools"]
    newest, older = tools
    assert newest["default"] and newest["source"].endswith("broken")
    removed = runner.invoke(app, [*home, "tools", "remove", newest["sha256"][:10]])
    assert removed.exit_code == 0 and f"now uses {older['sha256'][:12]}" in removed.stdout
    (left,) = json.loads(runner.invoke(app, [*home, "tools", "list", "--json"]).stdout)["tools"]
    assert left["sha256"] == older["sha256"] and left["default"]
    unknown = runner.invoke(app, [*home, "tools", "remove", "ffffffff"])
    assert unknown.exit_code == 2 and "no cached tool's sha256 starts with 'ffffffff'" in unknown.stderr


def test_a_folder_or_a_read_only_home_gets_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = runner.invoke(app, ["--home", str(tmp_path / "home"), "tools", "add", str(tmp_path), "--abi", "arm64-v8a"])
    assert folder.exit_code == 2 and f"benchmark binary {tmp_path} is a directory" in folder.stderr
    home = tmp_path / "ro-home"
    home.mkdir()
    home.chmod(0o500)
    # root writes into read-only folders; /proc refuses new folders even to root
    unwritable = Path("/proc/lab-home") if os.geteuid() == 0 else home
    try:
        binary = write_elf(tmp_path / "bm", EM_AARCH64)
        result = runner.invoke(app, ["--home", str(unwritable), "tools", "add", str(binary), "--abi", "arm64-v8a"])
        assert result.exit_code == 2 and f"cannot write the tool cache under {unwritable}/tools" in result.stderr
        assert result.stderr.count("\n") == 1
    finally:
        home.chmod(0o700)
