"""The instruction-counting QEMU plugin: its C source (package data), building it, checking it loads.

Debian's ``qemu-user`` (dynamically linked) can load TCG plugins; ``qemu-user-static`` cannot.
Debian ships no plugin headers, so ``insn_count.c`` declares the API it uses and the machine's C
compiler (``$CC``, ``cc``, ``gcc`` or ``clang``) builds it at prepare time. Without one, the
emulated device still runs and says why it counts no instructions (``NO_COMPILER``).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from device_agent.qemu.errors import PrepareError

__all__ = [
    "PLUGIN_NAME",
    "NO_COMPILER",
    "plugin_source",
    "source_sha256",
    "find_compiler",
    "build_plugin",
    "plugin_load_error",
]

PLUGIN_NAME = "libinsn_count.so"
_SOURCE = "insn_count.c"
_COMPILERS = ("cc", "gcc", "clang")
NO_COMPILER = (
    "no C compiler (cc, gcc or clang) on PATH to build the QEMU instruction-counting plugin: install one "
    "(Debian package gcc), then run `lab emulator prepare --arch arm64` again"
)

# (qemu argv, plugin, the plugin file's size and mtime) → None (it loads) or why it does not
_load_checks: dict[tuple[tuple[str, ...], str, int, int], str | None] = {}


def find_compiler() -> list[str] | None:
    """The C compiler's argv: ``$CC`` (split as a shell would) when it names a program, else cc, gcc or clang."""
    configured = shlex.split(os.environ.get("CC", ""))
    if configured and shutil.which(configured[0]):
        return [shutil.which(configured[0]) or configured[0], *configured[1:]]
    for name in _COMPILERS:
        found = shutil.which(name)
        if found:
            return [found]
    return None


def plugin_source() -> bytes:
    return resources.files("device_agent.qemu").joinpath(_SOURCE).read_bytes()


def source_sha256() -> str:
    return hashlib.sha256(plugin_source()).hexdigest()


def build_plugin(folder: Path, compiler: Sequence[str]) -> Path:
    """Compile the plugin into ``folder`` with ``compiler`` (kept when it was built from the same source).

    ``-std=gnu11``: a compiler defaulting to C23 would bind strtoul & co. to glibc 2.38 symbols,
    which the QEMU of the folder (Debian 12's, glibc 2.36) cannot load.

    Raises:
        PrepareError: the compiler failed (quotes its message).
    """
    folder.mkdir(parents=True, exist_ok=True)
    source, library = folder / _SOURCE, folder / PLUGIN_NAME
    code = plugin_source()
    if library.is_file() and source.is_file() and source.read_bytes() == code:
        return library
    source.write_bytes(code)
    partial = folder / f".{PLUGIN_NAME}.partial"
    done = subprocess.run(
        [*compiler, "-shared", "-fPIC", "-O2", "-std=gnu11", "-Wall", "-o", str(partial), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise PrepareError(f"building the instruction-counting plugin with {Path(compiler[0]).name}", done.stderr)
    os.replace(partial, library)
    return library


def plugin_load_error(qemu: Sequence[str], plugin: Path, prefix: Path, program: Path) -> str | None:
    """None when QEMU (the argv ``qemu`` starts it) loads ``plugin`` (running ``program`` under ``-L prefix``), else why not.

    The answer is remembered for this process until the plugin file changes: a run whose plugin
    does not load is started without it, so it still gives times.
    """
    try:
        stat = plugin.stat()
    except OSError as exc:
        return f"the QEMU counting plugin did not load: {plugin}: {exc.strerror}"
    key = (tuple(qemu), str(plugin), stat.st_size, stat.st_mtime_ns)
    if key not in _load_checks:
        try:
            done = subprocess.run(
                [*qemu, "-L", str(prefix), "-plugin", str(plugin), str(program)],
                capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
        except OSError as exc:
            return f"QEMU cannot start: {qemu[0]}: {exc.strerror}"
        message = " ".join(done.stderr.split()) or f"qemu exited with status {done.returncode}"
        _load_checks[key] = None if done.returncode == 0 else f"the QEMU counting plugin did not load: {message}"
    return _load_checks[key]
