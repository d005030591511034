"""benchmark_model binaries per ABI: the tool cache under ``LAB_HOME/tools``, fetching Google's
nightly builds, and choosing what a device runs.

Cache layout: ``tools/<abi>/<sha256>/benchmark_model`` beside ``tool.json`` (sha256, ABI,
platform, version line, source, when added). The newest tool of an ABI is the default.
"""

from __future__ import annotations

import json
import os
import platform as host_platform
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from host import config
from host.devices.elf import KNOWN_ABIS, SCRIPT, binary_abi
from host.devices.errors import WrongAbiError
from host.errors import ToolError, UsageError
from host.hashing import file_sha256
from host.records import DeviceFacts, ToolInfo

__all__ = [
    "NIGHTLY_URL",
    "remove_tool",
    "check_binary_path",
    "Platform",
    "CachedTool",
    "nightly_name",
    "add_tool",
    "list_tools",
    "fetch_tool",
    "cached_tool_for",
    "check_binary_for",
    "version_line",
    "missing_tool_message",
]

NIGHTLY_URL = "https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/nightly/latest/"
TOOL_FILE = "benchmark_model"
META_FILE = "tool.json"

Platform = Literal["android", "linux"]
"""android: bionic-linked, for phones and Android emulators; linux: glibc-linked, for Linux hosts
and the lab's emulated device (which runs pushed executables on its host)."""

# (abi, platform) -> nightly file name; Google publishes no Android x86/x86_64 build.
_NIGHTLY = {
    ("arm64-v8a", "android"): "android_aarch64_benchmark_model",
    ("armeabi-v7a", "android"): "android_arm_benchmark_model",
    ("x86_64", "linux"): "linux_x86-64_benchmark_model",
    ("arm64-v8a", "linux"): "linux_aarch64_benchmark_model",
}
_DOWNLOAD_TIMEOUT_S = 60.0
_VERSION_PROBE_TIMEOUT_S = 10.0
_VERSION_RE = re.compile(r"version", re.IGNORECASE)
_NUMBER_RE = re.compile(r"\d+\.\d+")
_HOST_ABI = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64-v8a", "arm64": "arm64-v8a"}


@dataclass(frozen=True)
class CachedTool:
    info: ToolInfo
    platform: Platform | None  # None: added by hand, platform unknown
    added_at: datetime
    default: bool  # the newest tool of its ABI: the one `lab bench` uses


def _check_abi(abi: str) -> None:
    if abi not in KNOWN_ABIS:
        raise UsageError(f"unknown ABI {abi!r}: use one of {', '.join(KNOWN_ABIS)}")


def nightly_name(abi: str, platform: Platform | None = None, plus_flex: bool = False) -> tuple[str, Platform]:
    """The nightly file name for an ABI and its platform (android where Google builds one, else linux).

    Raises:
        UsageError: unknown ABI, or no nightly build for it.
    """
    _check_abi(abi)
    choices: list[Platform] = [platform] if platform else ["android", "linux"]
    for choice in choices:
        name = _NIGHTLY.get((abi, choice))
        if name:
            return (name + "_plus_flex" if plus_flex else name), choice
    built = ", ".join(f"{a} ({p})" for a, p in _NIGHTLY)
    which = f"{platform} " if platform else ""
    raise UsageError(f"Google publishes no {which}benchmark_model build for {abi}; nightly builds exist for {built}")


def version_line(text: str) -> str | None:
    """The line of a tool's output that names its version (not an echo of a ``--version`` flag)."""
    for line in text.splitlines():
        line = line.strip().removeprefix("INFO:").strip()
        if line.lower().startswith("runner:"):
            return line.split(":", 1)[1].strip()
        echoed_flag = "--version" in line or "unconsumed" in line.lower()
        if _VERSION_RE.search(line) and _NUMBER_RE.search(line) and not echoed_flag:
            return line
    return None


def _probe_version(path: Path, abi: str) -> str | None:
    """The version line the tool prints here, when it can run on this machine (else None)."""
    if abi not in (SCRIPT, _HOST_ABI.get(host_platform.machine().lower())):
        return None
    try:
        proc = subprocess.run(
            [str(path), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_VERSION_PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = proc.stdout + "\n" + proc.stderr
    found = version_line(text)
    if found is None and proc.returncode == 0:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        found = first if _NUMBER_RE.search(first) else None  # `tool --version` printing "name 1.2"
    return found


def _tools_root(home: Path) -> Path:
    return config.tools_dir(home)


def check_binary_path(path: Path) -> None:
    """Raises ToolError naming what is wrong with a binary's path: missing, or a folder."""
    if path.is_dir():
        raise ToolError(f"benchmark binary {path} is a directory: give the benchmark_model file inside it")
    if not path.is_file():
        raise ToolError(f"benchmark binary {path} does not exist")


def _install(home: Path, src: Path, abi: str, platform: Platform | None, source: str, version: str | None) -> ToolInfo:
    try:
        return _copy_in(home, src, abi, platform, source, version)
    except OSError as exc:  # a read-only home, a full disk: one line, not a traceback
        raise ToolError(
            f"cannot write the tool cache under {_tools_root(home)}: {exc.strerror}; "
            "choose a writable data folder with --home or LAB_HOME"
        ) from exc


def _copy_in(home: Path, src: Path, abi: str, platform: Platform | None, source: str, version: str | None) -> ToolInfo:
    sha = file_sha256(src)
    folder = _tools_root(home) / abi / sha
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / TOOL_FILE
    if not target.exists() or file_sha256(target) != sha:
        tmp = folder / f".{TOOL_FILE}.part"
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    meta = {
        "sha256": sha,
        "abi": abi,
        "platform": platform,
        "version": version,
        "source": source,
        "added_at": datetime.now(timezone.utc).isoformat(),
    }
    tmp_meta = folder / f".{META_FILE}.part"
    tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp_meta, folder / META_FILE)
    return ToolInfo(sha256=sha, abi=abi, version=version, path=str(target), builtin=False, source=source)


def add_tool(home: Path, path: Path, abi: str) -> ToolInfo:
    """Copies a benchmark_model binary into the cache for ``abi`` (it becomes that ABI's default).

    Raises:
        UsageError: unknown ABI.
        ToolError: missing file, not an executable, or built for another ABI than ``abi``.
    """
    _check_abi(abi)
    check_binary_path(path)
    found = binary_abi(path)
    if found not in (SCRIPT, abi):
        raise WrongAbiError(f"{path} is built for {found}, not {abi}: pass --abi {found}", found, (abi,))
    source = f"added:{path.resolve()}"
    return _install(home, path, abi, None, source, _probe_version(path, found))


def _read_meta(folder: Path) -> CachedTool | None:
    try:
        meta = json.loads((folder / META_FILE).read_text())
        info = ToolInfo(
            sha256=meta["sha256"],
            abi=meta["abi"],
            version=meta.get("version"),
            path=str(folder / TOOL_FILE),
            builtin=False,
            source=meta.get("source"),
        )
        return CachedTool(info, meta.get("platform"), datetime.fromisoformat(meta["added_at"]), False)
    except (OSError, ValueError, KeyError):
        return None  # a half-written or foreign folder is not a tool


def remove_tool(home: Path, sha256_prefix: str) -> ToolInfo:
    """Deletes a cached tool (the next newest of its ABI becomes the default).

    Raises:
        UsageError: the prefix matches no cached tool, or several (they are named).
    """
    prefix = sha256_prefix.strip().lower()
    matches = [t for t in list_tools(home) if prefix and t.info.sha256.startswith(prefix)]
    if not matches:
        raise UsageError(f"no cached tool's sha256 starts with {sha256_prefix!r}: `lab tools list` shows them")
    if len(matches) > 1:
        names = ", ".join(f"{t.info.abi} {t.info.sha256[:16]}" for t in matches)
        raise UsageError(f"{sha256_prefix!r} matches {len(matches)} tools ({names}): give more of the sha256")
    info = matches[0].info
    folder = Path(info.path or "").parent
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        raise ToolError(f"cannot remove {folder}: {exc.strerror}") from exc
    return info


def list_tools(home: Path) -> list[CachedTool]:
    """Every cached tool, by ABI, newest first; the newest of each ABI is marked default."""
    root = _tools_root(home)
    if not root.is_dir():
        return []
    tools: list[CachedTool] = []
    for abi_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        metas = (_read_meta(p) for p in abi_dir.iterdir() if p.is_dir())
        found = [t for t in metas if t and (abi_dir / t.info.sha256 / TOOL_FILE).is_file()]
        found.sort(key=lambda t: t.added_at, reverse=True)
        tools += [CachedTool(t.info, t.platform, t.added_at, i == 0) for i, t in enumerate(found)]
    return tools


def fetch_tool(
    home: Path,
    abi: str,
    *,
    plus_flex: bool = False,
    platform: Platform | None = None,
    base_url: str = NIGHTLY_URL,
    timeout_s: float = _DOWNLOAD_TIMEOUT_S,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> ToolInfo:
    """Downloads Google's nightly benchmark_model for ``abi`` into the cache and records its sha256.

    Raises:
        UsageError: no nightly build for that ABI.
        ToolError: the download failed (offline, HTTP error), or the file is not for ``abi``.
    """
    name, chosen = nightly_name(abi, platform, plus_flex)
    url = base_url.rstrip("/") + "/" + name
    root = _tools_root(home)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        target = Path(tmp) / name
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response, target.open("wb") as out:
                total = response.headers.get("Content-Length")
                size = int(total) if total and total.isdigit() else None
                done = 0
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, size)
        except urllib.error.HTTPError as exc:
            raise ToolError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ToolError(
                f"cannot download {url}: {reason}; check the network, or add a binary you have with "
                f"`lab tools add PATH --abi {abi}`"
            ) from exc
        found = binary_abi(target)
        if found != abi:
            raise ToolError(f"{url} is not a benchmark_model for {abi} (its header says {found})")
        return _install(home, target, abi, chosen, f"fetched:{url}", _probe_version(target, found))


def _platform_fits(tool: CachedTool, facts: DeviceFacts) -> bool:
    if tool.platform is None:
        return True
    return tool.platform == ("linux" if facts.kind == "emulated" else "android")


def cached_tool_for(home: Path, facts: DeviceFacts) -> ToolInfo | None:
    """The cached tool for the device's ABIs, in the device's ABI preference order, or None.

    A Linux build is only chosen for the lab's emulated device, an Android build only for real
    Android; hand-added tools (platform unknown) for either.
    """
    tools = list_tools(home)
    for abi in facts.abis:
        for tool in tools:  # newest first within an ABI
            if tool.info.abi == abi and _platform_fits(tool, facts):
                return tool.info
    return None


def check_binary_for(path: Path, facts: DeviceFacts) -> str:
    """The binary's ABI if the device can run it (``SCRIPT`` for scripts).

    Raises:
        ToolError: unreadable or not an executable.
        WrongAbiError: built for an ABI the device does not list.
    """
    found = binary_abi(path)
    if found != SCRIPT and found not in facts.abis:
        raise WrongAbiError(
            f"{path.name} is built for {found}, but {facts.serial} runs {', '.join(facts.abis) or 'an unknown ABI'}: "
            f"use a benchmark_model for {facts.abi} (`lab tools fetch --abi {facts.abi}`)",
            found,
            facts.abis,
        )
    return found


def missing_tool_message(facts: DeviceFacts) -> str:
    """The one-line error for a device with no usable benchmark_model."""
    abi = facts.abi
    return (
        f"no benchmark_model for {facts.serial} ({abi}): download one with `lab tools fetch --abi {abi}` "
        f"or add your own with `lab tools add PATH --abi {abi}` (or pass --binary PATH)"
    )
