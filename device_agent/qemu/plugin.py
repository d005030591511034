"""The instruction-counting QEMU plugin: its C source (package data), building it, checking it loads.

Debian's ``qemu-user`` (dynamically linked) can load TCG plugins; ``qemu-user-static`` cannot.
Debian ships no plugin headers, so ``insn_count.c`` declares the API it uses and gcc builds it at
prepare time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from importlib import resources
from pathlib import Path

from device_agent.qemu.errors import PrepareError

__all__ = ["PLUGIN_NAME", "plugin_source", "source_sha256", "build_plugin", "plugin_load_error"]

PLUGIN_NAME = "libinsn_count.so"
_SOURCE = "insn_count.c"

# (qemu, plugin, the plugin file's size and mtime) → None (it loads) or why it does not
_load_checks: dict[tuple[str, str, int, int], str | None] = {}


def plugin_source() -> bytes:
    return resources.files("device_agent.qemu").joinpath(_SOURCE).read_bytes()


def source_sha256() -> str:
    return hashlib.sha256(plugin_source()).hexdigest()


def build_plugin(folder: Path, gcc: str) -> Path:
    """Compile the plugin into ``folder`` (kept when it was built from the same source).

    Raises:
        PrepareError: gcc failed (quotes its message).
    """
    folder.mkdir(parents=True, exist_ok=True)
    source, library = folder / _SOURCE, folder / PLUGIN_NAME
    code = plugin_source()
    if library.is_file() and source.is_file() and source.read_bytes() == code:
        return library
    source.write_bytes(code)
    partial = folder / f".{PLUGIN_NAME}.partial"
    done = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(partial), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise PrepareError("building the instruction-counting plugin with gcc", done.stderr)
    os.replace(partial, library)
    return library


def plugin_load_error(qemu: str, plugin: Path, prefix: Path, program: Path) -> str | None:
    """None when ``qemu`` loads ``plugin`` (running ``program`` under ``-L prefix``), else QEMU's reason.

    The answer is remembered for this process until the plugin file changes: a run whose plugin
    does not load is started without it, so it still gives times.
    """
    try:
        stat = plugin.stat()
    except OSError as exc:
        return f"the QEMU counting plugin did not load: {plugin}: {exc.strerror}"
    key = (qemu, str(plugin), stat.st_size, stat.st_mtime_ns)
    if key not in _load_checks:
        done = subprocess.run(
            [qemu, "-L", str(prefix), "-plugin", str(plugin), str(program)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        message = " ".join(done.stderr.split()) or f"qemu exited with status {done.returncode}"
        _load_checks[key] = None if done.returncode == 0 else f"the QEMU counting plugin did not load: {message}"
    return _load_checks[key]
