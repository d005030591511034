"""The tool cache: add, list, fetch (offline for real, and from a local HTTP server), ELF checks."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.devices.elf import SCRIPT, binary_abi
from host.devices.errors import WrongAbiError
from host.devices.tools import (
    NIGHTLY_URL,
    add_tool,
    cached_tool_for,
    check_binary_for,
    fetch_tool,
    list_tools,
    nightly_name,
    version_line,
)
from host.errors import ToolError, UsageError
from host.records import DeviceFacts

from .elf_files import EM_AARCH64, EM_ARM, EM_X86_64, write_elf, write_script

PHONE = DeviceFacts(serial="phone", kind="physical", abis=("arm64-v8a", "armeabi-v7a"))
PHONE64 = DeviceFacts(serial="pixel", kind="physical", abis=("arm64-v8a",))
EMULATED = DeviceFacts(serial="127.0.0.1:5555", kind="emulated", abis=("x86_64",))


def test_binary_abi_reads_e_machine(tmp_path: Path) -> None:
    assert binary_abi(write_elf(tmp_path / "a", EM_AARCH64)) == "arm64-v8a"
    assert binary_abi(write_elf(tmp_path / "b", EM_ARM)) == "armeabi-v7a"
    assert binary_abi(write_elf(tmp_path / "c", EM_X86_64)) == "x86_64"
    assert binary_abi(write_script(tmp_path / "s", "echo hi")) == SCRIPT
    real = shutil.which("ls")
    assert real is not None and binary_abi(Path(real)) in ("x86_64", "arm64-v8a")


def test_binary_abi_rejects_non_executables(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ToolError, match="not a benchmark_model executable"):
        binary_abi(text)
    with pytest.raises(ToolError, match="cannot read"):
        binary_abi(tmp_path / "missing")


def test_check_binary_for_device_abis(tmp_path: Path) -> None:
    arm32 = write_elf(tmp_path / "arm32", EM_ARM)
    assert check_binary_for(arm32, PHONE) == "armeabi-v7a"  # 64-bit phones that list armeabi-v7a run it
    with pytest.raises(WrongAbiError, match="built for armeabi-v7a, but pixel runs arm64-v8a") as info:
        check_binary_for(arm32, PHONE64)
    assert info.value.binary_abi == "armeabi-v7a"
    with pytest.raises(WrongAbiError, match="lab tools fetch --abi x86_64"):
        check_binary_for(write_elf(tmp_path / "arm64", EM_AARCH64), EMULATED)


def test_add_list_and_choose(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = add_tool(home, write_elf(tmp_path / "bm1", EM_AARCH64), "arm64-v8a")
    second = add_tool(home, write_elf(tmp_path / "bm2", EM_AARCH64).parent / "bm2", "arm64-v8a")
    assert first.sha256 == second.sha256  # same bytes: one cache entry
    other = tmp_path / "bm3"
    other.write_bytes(write_elf(tmp_path / "tmp3", EM_AARCH64).read_bytes() + b"v2")
    newest = add_tool(home, other, "arm64-v8a")
    tools = list_tools(home)
    assert [t.info.sha256 for t in tools] == [newest.sha256, first.sha256]
    assert [t.default for t in tools] == [True, False]
    cached = Path(newest.path or "")
    assert cached.is_file() and cached.stat().st_mode & 0o111
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == newest.sha256
    assert cached_tool_for(home, PHONE) == newest
    assert cached_tool_for(home, EMULATED) is None


def test_add_rejects_bad_input(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(WrongAbiError, match="built for x86_64, not arm64-v8a: pass --abi x86_64"):
        add_tool(home, write_elf(tmp_path / "x", EM_X86_64), "arm64-v8a")
    with pytest.raises(UsageError, match="unknown ABI 'arm65'"):
        add_tool(home, write_elf(tmp_path / "y", EM_AARCH64), "arm65")
    with pytest.raises(ToolError, match="does not exist"):
        add_tool(home, tmp_path / "nope", "arm64-v8a")
    assert list_tools(home) == []


def test_add_records_the_version_line_it_prints(tmp_path: Path) -> None:
    script = write_script(tmp_path / "bm", 'echo "INFO: STARTING!"; echo "benchmark_model version 2.21.0"')
    info = add_tool(tmp_path / "home", script, "x86_64")
    assert info.version == "benchmark_model version 2.21.0"
    assert list_tools(tmp_path / "home")[0].info.version == "benchmark_model version 2.21.0"


def test_version_line() -> None:
    runner = "INFO: STARTING!\nINFO: Runner: lab device_agent (LiteRT 2.3.0)\n"
    assert version_line(runner) == "lab device_agent (LiteRT 2.3.0)"
    assert version_line("WARN: Unconsumed cmdline flags: --version\n") is None
    assert version_line("INFO: count=50 first=1 curr=2\n") is None


def test_nightly_names() -> None:
    assert nightly_name("arm64-v8a") == ("android_aarch64_benchmark_model", "android")
    assert nightly_name("armeabi-v7a", plus_flex=True) == ("android_arm_benchmark_model_plus_flex", "android")
    assert nightly_name("x86_64") == ("linux_x86-64_benchmark_model", "linux")
    assert nightly_name("arm64-v8a", "linux") == ("linux_aarch64_benchmark_model", "linux")
    with pytest.raises(UsageError, match="no benchmark_model build for x86"):
        nightly_name("x86")


def test_fetch_offline_fails_clearly(tmp_path: Path) -> None:
    """The real nightly URL: this machine has no internet, so the download must fail in one line."""
    home = tmp_path / "home"
    with pytest.raises(ToolError) as info:
        fetch_tool(home, "arm64-v8a", timeout_s=10)
    message = str(info.value)
    assert message.startswith(f"cannot download {NIGHTLY_URL}android_aarch64_benchmark_model: ")
    assert "lab tools add PATH --abi arm64-v8a" in message and "\n" not in message
    assert info.value.exit_code == 2
    assert list_tools(home) == []


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on a free port serving a folder."""
    folder = tmp_path / "www"
    folder.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/latest/", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fetch_downloads_and_records_sha(tmp_path: Path, http_folder: tuple[str, Path]) -> None:
    url, folder = http_folder
    (folder / "latest").mkdir()
    src = write_elf(folder / "latest" / "android_aarch64_benchmark_model", EM_AARCH64)
    seen: list[int] = []
    info = fetch_tool(tmp_path / "home", "arm64-v8a", base_url=url, on_progress=lambda done, total: seen.append(done))
    assert info.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert info.source == f"fetched:{url}android_aarch64_benchmark_model"
    assert seen and seen[-1] == src.stat().st_size
    (tool,) = list_tools(tmp_path / "home")
    assert tool.platform == "android" and tool.default
    assert cached_tool_for(tmp_path / "home", PHONE) == info


def test_fetch_rejects_missing_or_wrong_file(tmp_path: Path, http_folder: tuple[str, Path]) -> None:
    url, folder = http_folder
    (folder / "latest").mkdir()
    with pytest.raises(ToolError, match="HTTP 404"):
        fetch_tool(tmp_path / "home", "armeabi-v7a", base_url=url)
    write_elf(folder / "latest" / "android_arm_benchmark_model", EM_X86_64)
    with pytest.raises(ToolError, match="not a benchmark_model for armeabi-v7a"):
        fetch_tool(tmp_path / "home", "armeabi-v7a", base_url=url)
    assert list_tools(tmp_path / "home") == []
