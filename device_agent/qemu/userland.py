"""A prepared arm64 userland: finding it, and the command that runs the runner inside it under QEMU.

Layout of a folder that ``prepare`` made without root (format 2)::

    DIR/rootfs/                   Debian arm64: python3 and what it needs, unpacked from the mirror's .debs
    DIR/site-packages/            aarch64 wheels: ai-edge-litert, numpy and their dependencies
    DIR/host/                     QEMU user-mode for this machine (Debian's qemu-user: qemu-aarch64 and the
                                  libraries it needs, with their own dynamic loader: no system QEMU needed)
    DIR/views/<cpu>/              one -L prefix per emulated core: links into rootfs + its /proc/cpuinfo
    DIR/plugin/libinsn_count.so   the instruction-counting plugin (and its source), when a C compiler was found
    DIR/userland.json             written last: what was prepared (versions, sizes, time taken, why no plugin)

Each of rootfs, site-packages and host holds a ``.lab-complete`` file listing its files with their
sizes and sha256 (see ``seal``); a folder without one is half-made and is rebuilt. A folder made
by root with debootstrap (format 1: ``rootfs/opt/lab/site-packages``, the system's ``qemu-aarch64``
and ``qemu-aarch64-static``) is still used as it is.

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
    "HOST",
    "SITE_PACKAGES_DIR",
]

CACHE_ENV = "LAB_QEMU_CACHE"
FORMAT = 2  # of userland.json and the layout that prepare makes (rootless)
FORMATS = (1, 2)  # the ones find_userland uses; 1: made by root with debootstrap and the system's QEMU
MANIFEST = "userland.json"
ROOTFS = "rootfs"
SITE_PACKAGES = "opt/lab/site-packages"  # inside rootfs, format 1
SITE_PACKAGES_DIR = "site-packages"  # beside rootfs, format 2
HOST = "host"  # format 2: QEMU for this machine, with its libraries and loader
VIEWS = "views"
PLUGIN_DIR = "plugin"
COMPLETE = ".lab-complete"  # in each part of a format-2 folder: its files, sizes and sha256

QEMU = "qemu-aarch64"  # Debian's qemu-user: dynamically linked, loads plugins
QEMU_STATIC = "qemu-aarch64-static"  # Debian's qemu-user-static: no plugins
TOOL_PACKAGES = {
    QEMU: "qemu-user",
    QEMU_STATIC: "qemu-user-static",
    "cc": "gcc",
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
    def format(self) -> int:
        return int(self.info.get("format", FORMAT))

    @property
    def rootfs(self) -> Path:
        return self.root / ROOTFS

    @property
    def site_packages(self) -> Path:
        return self.rootfs / SITE_PACKAGES if self.format == 1 else self.root / SITE_PACKAGES_DIR

    def view(self, cpu: str) -> Path:
        """The -L prefix of one emulated core (rootfs plus that core's /proc/cpuinfo)."""
        return self.root / VIEWS / cpu

    def qemu_head(self, *, static: bool = False) -> list[str]:
        """The argv that starts ``qemu-aarch64`` (its options follow).

        Format 2: the folder's own QEMU, started through its own dynamic loader with its own
        libraries (``ld.so --library-path``), so nothing of the machine's is needed and no
        variable leaks into the guest. Format 1: the system's ``qemu-aarch64``, or with ``static``
        ``qemu-aarch64-static`` (which loads no plugins).

        Raises:
            MissingToolError: format 1 and the system's QEMU is missing.
        """
        if self.format == 1:
            if static:
                return [which(QEMU_STATIC, "running the arm64 userland")]
            return [which(QEMU, "counting instructions under QEMU")]
        host = self.root / HOST
        return [
            str(host / str(self.info.get("host_loader", ""))),
            "--library-path",
            os.pathsep.join(str(host / part) for part in self.info.get("host_libraries", [])),
            str(host / str(self.info.get("host_qemu", ""))),
        ]

    def counting_unavailable(self) -> str | None:
        """Why instructions cannot be counted (no plugin could be built, or it does not load), or None."""
        reason = self.info.get("plugin_error")
        if reason and not self.plugin.is_file():
            return str(reason)
        view = self.view(DEFAULT_CPU)
        return plugin_load_error(self.qemu_head(), self.plugin, view, view / "bin" / "true")

    def python_command(
        self, python_args: list[str], *, cpu: str = DEFAULT_CPU, count_instructions: bool = False
    ) -> tuple[list[str], dict[str, str]]:
        """argv and extra environment that run the guest's ``python3 PYTHON_ARGS`` under QEMU on ``cpu``.

        With ``count_instructions`` QEMU loads the counting plugin, when it can; when it cannot
        (no C compiler built it, or it does not load), the run goes ahead without it and
        ``LAB_QEMU_COUNTING`` carries the reason (the runner then prints times and says counts are
        unavailable).

        Raises:
            QemuError: an unknown CPU. MissingToolError: a format-1 folder and the system's QEMU is missing.
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
            error = self.counting_unavailable()
            head = self.qemu_head() if error else [*self.qemu_head(), "-plugin", str(self.plugin)]
            env[ENV_COUNTING] = f"unavailable: {error}" if error else COUNTING_PLUGIN
        else:
            head = [*self.qemu_head(static=True), "-U", ENV_COUNTING]
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
            QemuError: an unknown CPU. MissingToolError: a format-1 folder and the system's QEMU is missing.
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
    if not isinstance(info, dict) or info.get("format") not in FORMATS:
        return f"{MANIFEST} is of another format than {' or '.join(map(str, FORMATS))}"
    python = str(info.get("python", ""))
    userland = Userland(root=dest, python=python, plugin=dest / PLUGIN_DIR / PLUGIN_NAME, info=info)
    needed = [userland.rootfs / "usr" / "bin" / f"python{python}", userland.site_packages / "ai_edge_litert"]
    needed += [userland.view(cpu) / "proc" / "cpuinfo" for cpu in CPUS]
    if userland.format >= 2:
        needed += [dest / part / COMPLETE for part in (ROOTFS, SITE_PACKAGES_DIR, HOST)]
        head = userland.qemu_head()
        needed += [Path(head[0]), Path(head[-1])]  # its loader and qemu-aarch64
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
