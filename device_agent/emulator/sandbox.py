"""The emulated device's file system: /data/local/tmp in a host folder, a few read-only views, nothing else.

Device paths are resolved lexically first (``..`` never climbs above ``/``), then:

* ``/data/local/tmp`` and below map into the sandbox root. Symbolic links are resolved on the
  host and the result must stay inside the root, otherwise :class:`PathEscapeError`.
* A short allowlist of /proc and /sys files (see :data:`VIEWS`) are read-only views of the
  machine's real files (or of a captured tree, ``facts_root``); their parent folders exist as
  read-only virtual directories, as do ``/``, ``/data`` and ``/data/local``.
* Every other path does not exist, and nothing outside the root can be written.

Writes of whole files go to a temporary name beside the target and are renamed on commit, so an
interrupted push never leaves a file under its final name.

Errors (all :class:`SandboxError`, an ``AgentError``) carry the device path and an errno, so each
service can phrase them as the device would.
"""

from __future__ import annotations

import errno
import io
import fnmatch
import glob as host_glob
import os
import posixpath
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Protocol

from device_agent.errors import AgentError

__all__ = [
    "DEVICE_TMP", "SHELL_UID", "VIEWS", "ViewOverlay", "SandboxError", "PathEscapeError", "Entry", "PendingFile", "Sandbox",
]

DEVICE_TMP = "/data/local/tmp"
SHELL_UID = 2000  # AID_SHELL: the owner of everything in /data/local/tmp, as adb's shell user
# Read-only views of real files; "{N}" stands for a decimal number.
VIEWS = (
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/version",
    "/sys/devices/system/cpu/online",
    "/sys/devices/system/cpu/possible",
    "/sys/devices/system/cpu/present",
    "/sys/devices/system/cpu/cpu{N}/cpufreq/cpuinfo_max_freq",
    "/sys/devices/system/cpu/cpu{N}/cpufreq/cpuinfo_min_freq",
    "/sys/devices/system/cpu/cpu{N}/cpufreq/scaling_cur_freq",
    "/sys/devices/system/cpu/cpu{N}/cpufreq/scaling_governor",
    "/sys/class/thermal/thermal_zone{N}/temp",
    "/sys/class/thermal/thermal_zone{N}/type",
)
_OVERLAID = ("/sys/devices/system/cpu/", "/sys/class/thermal/")  # a phone overlay replaces these folders whole


class ViewOverlay(Protocol):
    """Live read-only files that stand in for views (a phone profile: ``emulator.phone.Phone``)."""

    def view_paths(self) -> list[str]: ...

    def read_view(self, vpath: str) -> bytes | None: ...


_VIEW_RE = re.compile("|".join(re.escape(v).replace(re.escape("{N}"), "[0-9]+") for v in VIEWS))
_MAX_PATH = 4096
_STARTED = int(time.time())


class SandboxError(AgentError):
    """A device path that cannot be used as asked. ``errno`` says why, as the device's kernel would."""

    def __init__(self, path: str, err: int, detail: str | None = None) -> None:
        self.path = path
        self.errno = err
        self.detail = detail or os.strerror(err)
        super().__init__(f"{path}: {self.detail}")


class PathEscapeError(SandboxError):
    """A path that would lead out of the sandbox root (through a symbolic link)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, errno.EACCES, f"path escapes the sandbox: a symbolic link leads outside {DEVICE_TMP}")


@dataclass(frozen=True)
class Entry:
    """What ``stat`` reports for a device path (times in whole seconds)."""

    mode: int
    size: int
    mtime: int
    atime: int = 0
    ctime: int = 0
    dev: int = 0
    ino: int = 0
    nlink: int = 1
    uid: int = 0
    gid: int = 0

    @classmethod
    def from_stat(cls, st: os.stat_result, *, mode: int | None = None, owner: int = 0) -> Entry:
        """``owner`` is the device's uid/gid for the file (whoever owns it on the host)."""
        return cls(
            mode=st.st_mode if mode is None else mode, size=st.st_size, mtime=int(st.st_mtime),
            atime=int(st.st_atime), ctime=int(st.st_ctime), dev=st.st_dev, ino=st.st_ino,
            nlink=st.st_nlink, uid=owner, gid=owner,
        )

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


_VIRTUAL_DIR = Entry(mode=stat.S_IFDIR | 0o755, size=0, mtime=_STARTED, atime=_STARTED, ctime=_STARTED, nlink=2)


class PendingFile:
    """A file being written under a temporary name; :meth:`commit` renames it, :meth:`discard` removes it."""

    def __init__(self, final: Path, owner: tuple[int, int] | None = None, room: int | None = None) -> None:
        """``room``: bytes the device's storage has left (None: the host's disk decides)."""
        self.final = final
        self.owner = owner
        self.room = room
        fd, temp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".partial")
        self.temp = Path(temp)
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, data: bytes | memoryview) -> None:
        if self.room is not None:
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= len(data)
        self.file.write(data)

    def commit(self, mode: int, mtime: int | None = None) -> None:
        self.file.close()
        os.chmod(self.temp, mode & 0o7777)
        if self.owner is not None:
            os.chown(self.temp, *self.owner)
        if mtime:
            os.utime(self.temp, (mtime, mtime))
        os.replace(self.temp, self.final)

    def discard(self) -> None:
        self.file.close()
        try:
            self.temp.unlink()
        except FileNotFoundError:
            pass


class Sandbox:
    """Maps device paths onto ``root`` (for /data/local/tmp) and ``facts_root`` (for the views)."""

    def __init__(self, root: Path, facts_root: Path = Path("/"), capacity: int | None = None,
                 overlay: ViewOverlay | None = None) -> None:
        """``capacity``: the size of the device's /data in bytes (``--storage``); None reports the
        host's file system, as the device always did. ``overlay``: a phone profile's live files,
        which replace /proc/cpuinfo and every real view under the CPU and thermal folders."""
        self.capacity = capacity
        self.overlay = overlay
        self._overlay_paths = frozenset(overlay.view_paths()) if overlay is not None else frozenset()
        self._root = os.path.realpath(root)
        self.root = Path(self._root)
        self.facts_root = facts_root
        self._views: dict[str, Path] | None = None
        self.owner: tuple[int, int] | None = None  # (uid, gid) to give what the device creates

    def adopt_tree(self, owner: tuple[int, int]) -> None:
        """Give everything under the root to ``owner`` (the user confined commands run as), and
        everything created from now on. Symbolic links are changed, never followed."""
        self.owner = owner
        os.lchown(self._root, *owner)
        for folder, dirs, files in os.walk(self._root):
            for name in dirs + files:
                try:
                    os.lchown(os.path.join(folder, name), *owner)
                except OSError:
                    pass

    def _adopt(self, real: str) -> None:
        """Give ``real`` and the folders above it, up to the root, to the owner (if one is set)."""
        if self.owner is None:
            return
        path = real
        while path == self._root or path.startswith(self._root + os.sep):
            try:
                st = os.lstat(path)
                if (st.st_uid, st.st_gid) != self.owner:
                    os.lchown(path, *self.owner)
            except OSError:
                return
            if path == self._root:
                return
            path = os.path.dirname(path)

    # -- resolving -------------------------------------------------------------------------

    @staticmethod
    def normalize(path: str, cwd: str = "/") -> str:
        """The absolute, lexically normalized device path (``..`` stops at ``/``)."""
        if "\0" in path:
            raise SandboxError(repr(path), errno.EINVAL, "path contains a NUL byte")
        if len(path) > _MAX_PATH:
            raise SandboxError(path[:64] + "…", errno.ENAMETOOLONG)
        joined = posixpath.join(cwd, path) if path else cwd
        parts: list[str] = []
        for part in joined.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part and part != ".":
                parts.append(part)
        return "/" + "/".join(parts)

    @staticmethod
    def in_sandbox(vpath: str) -> bool:
        return vpath == DEVICE_TMP or vpath.startswith(DEVICE_TMP + "/")

    def _real(self, vpath: str, *, follow: bool = True) -> str:
        """The host path of a sandbox path; symbolic links resolved (the last one only if ``follow``)."""
        rel = vpath[len(DEVICE_TMP):].lstrip("/")
        candidate = os.path.join(self._root, rel) if rel else self._root
        if follow or not rel:
            real = os.path.realpath(candidate)
        else:
            parent, name = os.path.split(candidate)
            real = os.path.join(os.path.realpath(parent), name)
        if real != self._root and not real.startswith(self._root + os.sep):
            raise PathEscapeError(vpath)
        return real

    def host_path(self, path: str, cwd: str = "/") -> Path:
        """The host path behind a sandbox path (it need not exist). Raises SandboxError outside the sandbox."""
        vpath = self.normalize(path, cwd)
        if not self.in_sandbox(vpath):
            raise SandboxError(vpath, errno.EACCES)
        return Path(self._real(vpath))

    def host_cwd(self, cwd: str) -> Path:
        """Where a process started from device folder ``cwd`` runs: that folder if sandboxed, else the root."""
        try:
            return self.host_path(cwd)
        except SandboxError:
            return self.root

    def host_arg(self, arg: str, cwd: str) -> str:
        """A command-line argument for a real process: device paths (also in ``--flag=PATH``) become host paths.

        Sandbox paths map into the root, views to their real files, ``/dev/null`` stays; any other
        absolute path, or a path whose ``..`` or symbolic link leads out, raises SandboxError.
        """
        if arg.startswith("-") and "=" in arg:
            flag, _, value = arg.partition("=")
            return f"{flag}={self._host_value(value, cwd)}"
        return arg if arg.startswith("-") else self._host_value(arg, cwd)

    def _host_value(self, value: str, cwd: str) -> str:
        if value == "/dev/null" or not value:
            return value
        if "/" not in value and value not in (".", ".."):
            # A bare name is relative to the process's cwd: only a symbolic link there could lead out.
            if not self.in_sandbox(cwd) or not os.path.islink(os.path.join(self.host_cwd(cwd), value)):
                return value
        vpath = self.normalize(value, cwd)
        if self.in_sandbox(vpath):
            return self._real(vpath)
        view = self._view_paths().get(vpath)
        if view is not None:
            return str(view)
        raise SandboxError(vpath, errno.ENOENT, f"no such file on the emulated device (only {DEVICE_TMP} is writable)")

    def _view_paths(self) -> dict[str, Path]:
        """Device path -> real file, for every allowlisted view present on this machine (computed once)."""
        if self._views is None:
            views: dict[str, Path] = {}
            for pattern in VIEWS:
                base = host_glob.escape(str(self.facts_root))
                for real in host_glob.glob(base + pattern.replace("{N}", "[0-9]*")):
                    vpath = "/" + os.path.relpath(real, self.facts_root).replace(os.sep, "/")
                    if _VIEW_RE.fullmatch(vpath) and os.path.isfile(real) and not self._shadowed(vpath):
                        views[vpath] = Path(real)
            self._views = views
        return self._views

    def _shadowed(self, vpath: str) -> bool:
        """A real view the overlay replaces (all of the host's CPU and thermal files, for a phone)."""
        return self.overlay is not None and (vpath in self._overlay_paths or vpath.startswith(_OVERLAID))

    def _virtual_children(self, vpath: str) -> list[str] | None:
        """Names inside a virtual (read-only, synthesized) folder, or None if ``vpath`` is not one."""
        prefix = vpath.rstrip("/") + "/"
        children: set[str] = set()
        found = False
        for path in (DEVICE_TMP, *self._view_paths(), *self._overlay_paths):
            if path.startswith(prefix):
                children.add(path[len(prefix):].split("/", 1)[0])
                found = True
        return sorted(children) if found or vpath == "/" else None

    # -- reading ---------------------------------------------------------------------------

    def stat(self, path: str, cwd: str = "/", *, follow: bool = True) -> Entry:
        """Raises SandboxError (ENOENT, or EACCES for an escape)."""
        vpath = self.normalize(path, cwd)
        if self.in_sandbox(vpath):
            try:
                st = os.stat(self._real(vpath, follow=follow), follow_symlinks=follow)
            except OSError as e:
                raise SandboxError(vpath, e.errno or errno.EIO) from e
            return Entry.from_stat(st, owner=SHELL_UID)
        if vpath in self._overlay_paths:
            return Entry(mode=stat.S_IFREG | 0o444, size=4096, mtime=int(time.time()), uid=0, nlink=1)
        view = self._view_paths().get(vpath)
        if view is not None:
            try:
                st = os.stat(view)
            except OSError as e:
                raise SandboxError(vpath, e.errno or errno.EIO) from e
            return Entry.from_stat(st, mode=stat.S_IFREG | (st.st_mode & 0o444))
        if self._virtual_children(vpath) is not None:
            return _VIRTUAL_DIR
        raise SandboxError(vpath, errno.ENOENT)

    def exists(self, path: str, cwd: str = "/") -> bool:
        try:
            self.stat(path, cwd)
        except SandboxError:
            return False
        return True

    def listdir(self, path: str, cwd: str = "/") -> list[tuple[str, Entry]]:
        """The entries of a folder, sorted by name, each as ``lstat`` sees it (``.`` and ``..`` left out)."""
        vpath = self.normalize(path, cwd)
        if self.in_sandbox(vpath):
            real = self._real(vpath)
            try:
                with os.scandir(real) as it:
                    found = [(e.name, Entry.from_stat(e.stat(follow_symlinks=False), owner=SHELL_UID)) for e in it]
            except OSError as e:
                raise SandboxError(vpath, e.errno or errno.EIO) from e
            return sorted(found)
        children = self._virtual_children(vpath)
        if children is None:
            if vpath in self._view_paths() or vpath in self._overlay_paths:
                raise SandboxError(vpath, errno.ENOTDIR)
            raise SandboxError(vpath, errno.ENOENT)
        return [(name, self.stat(posixpath.join(vpath, name))) for name in children]

    def open_read(self, path: str, cwd: str = "/") -> BinaryIO:
        """Open a file for reading. Raises SandboxError (ENOENT, EISDIR, EACCES, escapes)."""
        vpath = self.normalize(path, cwd)
        if self.in_sandbox(vpath):
            real = self._real(vpath)
            try:
                fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as e:
                raise SandboxError(vpath, e.errno or errno.EIO) from e
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.close(fd)
                raise SandboxError(vpath, errno.EISDIR)
            return os.fdopen(fd, "rb")
        if self.overlay is not None and vpath in self._overlay_paths:
            content = self.overlay.read_view(vpath)
            if content is not None:
                return io.BytesIO(content)
        view = self._view_paths().get(vpath)
        if view is not None:
            try:
                return open(view, "rb")
            except OSError as e:
                raise SandboxError(vpath, e.errno or errno.EIO) from e
        if self._virtual_children(vpath) is not None:
            raise SandboxError(vpath, errno.EISDIR)
        raise SandboxError(vpath, errno.ENOENT)

    def glob(self, pattern: str, cwd: str = "/") -> list[str]:
        """The paths matching a shell pattern (``*``, ``?``, ``[...]`` per component), sorted, as sh does.

        Relative patterns give relative paths; a leading ``.`` must be matched explicitly; a
        literal ``*``, ``?`` or ``[`` is written ``[*]``, ``[?]``, ``[[]`` (``glob.escape``).
        """
        absolute = pattern.startswith("/")
        matches = ["/" if absolute else ""]
        for part in [p for p in pattern.split("/") if p]:
            following: list[str] = []
            for base in matches:
                if not any(c in part for c in "*?["):
                    following.append(posixpath.join(base, part) if base else part)
                    continue
                try:
                    names = [name for name, _ in self.listdir(base or ".", cwd)]
                except SandboxError:
                    continue
                for name in names:
                    if name.startswith(".") and not part.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(name, part):
                        following.append(posixpath.join(base, name) if base else name)
            matches = following
        try:
            return sorted(m for m in matches if m not in ("", "/") and self._lexists(m, cwd))
        except SandboxError:
            return []

    def _lexists(self, path: str, cwd: str) -> bool:
        try:
            self.stat(path, cwd, follow=False)
        except SandboxError:
            return False
        return True

    # -- writing (sandbox only) ---------------------------------------------------------------

    def _writable(self, path: str, cwd: str, *, follow: bool = True) -> tuple[str, str]:
        vpath = self.normalize(path, cwd)
        if not self.in_sandbox(vpath):
            if self.exists(vpath):
                raise SandboxError(vpath, errno.EACCES, "Read-only file system")
            raise SandboxError(vpath, errno.EACCES)
        return vpath, self._real(vpath, follow=follow)

    def begin_write(self, path: str, cwd: str = "/", *, make_parents: bool = True) -> PendingFile:
        """Start writing a whole file (created under a temporary name until committed).

        Missing parent folders are created, as adbd does for a push.
        """
        vpath, real = self._writable(path, cwd)
        if vpath == DEVICE_TMP or os.path.isdir(real):
            raise SandboxError(vpath, errno.EISDIR)
        try:
            if make_parents:
                os.makedirs(os.path.dirname(real), exist_ok=True)
                self._adopt(os.path.dirname(real))
            return PendingFile(Path(real), self.owner, self.free_bytes())
        except OSError as e:
            raise SandboxError(vpath, e.errno or errno.EIO) from e

    def open_write(self, path: str, cwd: str = "/", *, append: bool = False) -> BinaryIO:
        """Open a file for writing in place (a shell redirection); its folder must exist."""
        vpath, real = self._writable(path, cwd)
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        try:
            fd = os.open(real, flags, 0o666)
            if self.owner is not None:
                os.fchown(fd, *self.owner)
            return os.fdopen(fd, "ab" if append else "wb")
        except OSError as e:
            raise SandboxError(vpath, e.errno or errno.EIO) from e

    def mkdir(self, path: str, cwd: str = "/", *, parents: bool = False, mode: int = 0o771) -> None:
        vpath = self.normalize(path, cwd)
        if not self.in_sandbox(vpath) and self.exists(vpath):
            if parents and self.stat(vpath).is_dir:
                return
            raise SandboxError(vpath, errno.EEXIST)
        vpath, real = self._writable(vpath, cwd)
        try:
            if parents:
                os.makedirs(real, mode=mode, exist_ok=True)
            else:
                os.mkdir(real, mode)
            self._adopt(real)
        except FileExistsError as e:
            raise SandboxError(vpath, errno.EEXIST) from e
        except OSError as e:
            raise SandboxError(vpath, e.errno or errno.EIO) from e

    def remove(self, path: str, cwd: str = "/", *, recursive: bool = False) -> None:
        """Remove a file, a symbolic link (not its target) or, with ``recursive``, a folder tree."""
        vpath, real = self._writable(path, cwd, follow=False)
        if vpath == DEVICE_TMP:
            raise SandboxError(vpath, errno.EACCES, f"refusing to remove {DEVICE_TMP} itself")
        try:
            st = os.lstat(real)
            if stat.S_ISDIR(st.st_mode):
                if not recursive:
                    raise SandboxError(vpath, errno.EISDIR)
                shutil.rmtree(real)
            else:
                os.unlink(real)
        except OSError as e:
            raise SandboxError(vpath, e.errno or errno.EIO) from e

    def chmod(self, path: str, cwd: str, new_mode: Callable[[int], int]) -> None:
        """Change a file's permission bits to ``new_mode(old_mode)``."""
        vpath, real = self._writable(path, cwd)
        try:
            os.chmod(real, new_mode(os.stat(real).st_mode) & 0o7777)
        except OSError as e:
            raise SandboxError(vpath, e.errno or errno.EIO) from e

    def disk_usage(self) -> tuple[int, int, int]:
        """(total, used, free) bytes of the device's /data: the ``capacity`` when one was set (used:
        what the sandbox's files hold), else the file system holding the root."""
        if self.capacity is None:
            total, used, free = shutil.disk_usage(self._root)
            return total, used, free
        used = sum(os.lstat(os.path.join(folder, name)).st_size
                   for folder, _, names in os.walk(self._root) for name in names)
        return self.capacity, used, max(0, self.capacity - used)

    def free_bytes(self) -> int | None:
        """Bytes a file opened now may grow by before the device's storage is full; None without a
        ``capacity``. Each open file counts from this figure alone (an approximate quota: two files
        written at once may together pass it by one file's share)."""
        return None if self.capacity is None else self.disk_usage()[2]

