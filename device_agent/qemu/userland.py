"""A prepared arm64 userland: finding it, and the command that runs the runner inside it under QEMU.

Layout of a prepared folder (``prepare`` builds it)::

    DIR/rootfs/                   Debian arm64 (minbase + python3), unpacked without chroot or binfmt
    DIR/rootfs/opt/lab/site-packages/   aarch64 wheels: ai-edge-litert, numpy and their dependencies
    DIR/views/<cpu>/              one -L prefix per emulated core: links into rootfs + its /proc/cpuinfo
    DIR/plugin/libinsn_count.so   the instruction-counting plugin (and its source)
    DIR/userland.json             written last: what was prepared (versions, time taken)

Nothing runs chrooted: ``qemu-aarch64 -L DIR/views/<cpu>`` resolves the guest's absolute paths in
the view first and on the host otherwise, so the guest reads its own /usr and /proc/cpuinfo and the
host's files everywhere else (models, the sandbox, the device agent's checkout).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import device_agent
from device_agent.qemu.counter import COUNTING_PLUGIN, ENV_COUNTING, ENV_EMULATION
from device_agent.qemu.cpus import CPUS, DEFAULT_CPU, cpu_model
from device_agent.qemu.errors import MissingToolError, MissingUserlandError, QemuError
from device_agent.qemu.plugin import PLUGIN_NAME, plugin_load_error

__all__ = [
    "Userland",
    "find_userland",
    "require_userland",
    "default_dest",
    "which",
    "CACHE_ENV",
    "FORMAT",
    "MANIFEST",
    "ROOTFS",
    "SITE_PACKAGES",
    "VIEWS",
    "PLUGIN_DIR",
]

CACHE_ENV = "LAB_QEMU_CACHE"
FORMAT = 1  # of userland.json and the layout; another value is not a usable userland
MANIFEST = "userland.json"
ROOTFS = "rootfs"
SITE_PACKAGES = "opt/lab/site-packages"  # inside rootfs
VIEWS = "views"
PLUGIN_DIR = "plugin"

QEMU = "qemu-aarch64"  # Debian's qemu-user: dynamically linked, loads plugins
QEMU_STATIC = "qemu-aarch64-static"  # Debian's qemu-user-static: no plugins
TOOL_PACKAGES = {
    QEMU: "qemu-user",
    QEMU_STATIC: "qemu-user-static",
    "debootstrap": "debootstrap",
    "dpkg-deb": "dpkg",
    "gcc": "gcc",
}
# Host variables that would send the guest's Python to the host's (x86) installation.
_HOST_ONLY_ENV = ("PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "PYTHONSAFEPATH", "VIRTUAL_ENV")


def default_dest() -> Path:
    """``$LAB_QEMU_CACHE``, else ~/.cache/lab/qemu-arm64 (kept between CI runs)."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "lab" / "qemu-arm64"


def which(tool: str, why: str) -> str:
    """The path of a host tool, or MissingToolError naming its Debian package."""
    found = shutil.which(tool)
    if found is None:
        raise MissingToolError({tool: TOOL_PACKAGES.get(tool, tool)}, why)
    return found


def _checkout() -> Path:
    """The folder that holds the ``device_agent`` package (the guest imports it from the host)."""
    return Path(device_agent.__file__).resolve().parent.parent


@dataclass(frozen=True)
class Userland:
    """A prepared arm64 userland in ``root``; ``info`` is its userland.json."""

    root: Path
    python: str  # the guest's Python version, "3.11"
    plugin: Path
    info: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def rootfs(self) -> Path:
        return self.root / ROOTFS

    @property
    def site_packages(self) -> Path:
        return self.rootfs / SITE_PACKAGES

    def view(self, cpu: str) -> Path:
        """The -L prefix of one emulated core (rootfs plus that core's /proc/cpuinfo)."""
        return self.root / VIEWS / cpu

    def python_command(
        self, python_args: list[str], *, cpu: str = DEFAULT_CPU, count_instructions: bool = False
    ) -> tuple[list[str], dict[str, str]]:
        """argv and extra environment that run the guest's ``python3 PYTHON_ARGS`` under QEMU on ``cpu``.

        With ``count_instructions`` QEMU loads the counting plugin, when it can; when it cannot,
        the run goes ahead without it and ``LAB_QEMU_COUNTING`` carries the reason (the runner
        then prints times and says counts are unavailable).

        Raises:
            QemuError: an unknown CPU. MissingToolError: qemu-user / qemu-user-static is missing.
        """
        try:
            cpu_model(cpu)
        except KeyError as exc:
            raise QemuError(exc.args[0]) from None
        view = self.view(cpu)
        env = {
            "PYTHONPATH": os.pathsep.join([str(self.site_packages), str(_checkout())]),
            "PYTHONNOUSERSITE": "1",
            "PYTHONUNBUFFERED": "1",
            ENV_EMULATION: f"qemu-user {cpu}",
        }
        if count_instructions:
            qemu = which(QEMU, "counting instructions under QEMU")
            error = plugin_load_error(qemu, self.plugin, view, view / "bin" / "true")
            head = [qemu] if error else [qemu, "-plugin", str(self.plugin)]
            env[ENV_COUNTING] = f"unavailable: {error}" if error else COUNTING_PLUGIN
        else:
            head = [which(QEMU_STATIC, "running the arm64 userland"), "-U", ENV_COUNTING]
        for name in _HOST_ONLY_ENV:
            head += ["-U", name]
        python = view / "usr" / "bin" / f"python{self.python}"
        return [*head, "-L", str(view), "-cpu", cpu, str(python), *python_args], env

    def bench_command(
        self, args: list[str], *, cpu: str = DEFAULT_CPU, count_instructions: bool = True
    ) -> tuple[list[str], dict[str, str]]:
        """argv and extra environment that run ``python -m device_agent bench ARGS`` on an emulated ``cpu``.

        ``args`` are benchmark_model flags with host paths (``--graph=/abs/m.tflite``): the guest
        sees the host's files. Run it with ``os.environ`` updated by the returned environment.
        With ``count_instructions`` the runner prints one ``Instructions per inference (emulated,
        qemu-user CPU): …`` line (or why counts are unavailable).

        Raises:
            QemuError: an unknown CPU. MissingToolError: qemu-user / qemu-user-static is missing.
        """
        return self.python_command(
            ["-m", "device_agent", "bench", *args], cpu=cpu, count_instructions=count_instructions
        )


def _inspect(dest: Path) -> Userland | str:
    """The userland in ``dest``, or what is missing."""
    manifest = dest / MANIFEST
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{MANIFEST} is missing"
    except (OSError, ValueError) as exc:
        return f"{MANIFEST} is unreadable: {exc}"
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        return f"{MANIFEST} is of another format than {FORMAT}"
    python = str(info.get("python", ""))
    userland = Userland(root=dest, python=python, plugin=dest / PLUGIN_DIR / PLUGIN_NAME, info=info)
    needed = [userland.rootfs / "usr" / "bin" / f"python{python}", userland.site_packages / "ai_edge_litert"]
    needed += [userland.view(cpu) / "proc" / "cpuinfo" for cpu in CPUS]
    missing = [path for path in needed if not path.exists()]
    if missing:
        return f"{missing[0]} is missing"
    return userland


def find_userland(dest: Path) -> Userland | None:
    """The prepared userland in ``dest``, or None when there is none (or an incomplete one)."""
    found = _inspect(Path(dest).expanduser().absolute())
    return found if isinstance(found, Userland) else None


def require_userland(dest: Path) -> Userland:
    """The prepared userland in ``dest``.

    Raises:
        MissingUserlandError: there is none; its message gives the command that prepares one.
    """
    dest = Path(dest).expanduser().absolute()
    found = _inspect(dest)
    if isinstance(found, str):
        raise MissingUserlandError(dest, found)
    return found
