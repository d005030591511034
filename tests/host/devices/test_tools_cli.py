"""`lab tools add | list | fetch` through the command line."""

from __future__ import annotations

import json
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
