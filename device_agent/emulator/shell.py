"""The emulated device's shell: runs command lines with the builtin table, never the host's /bin/sh.

It behaves like Android's ``/system/bin/sh`` for what adb users and the lab type: exit statuses
(``$?``; 127 and ``/system/bin/sh: X: inaccessible or not found`` for unknown commands), ``;``,
``&&``, ``||``, pipes (each stage runs to completion, its output buffered for the next), globs
against the device's file system, redirections into the sandbox and ``/dev/null`` (bounded by
``ulimit -f`` and by the device's ``--storage``), and ``cd``.
A word containing ``/`` as a command runs a pushed executable (see ``process``).
"""

from __future__ import annotations

import glob
import itertools
import posixpath
import signal
import subprocess
import threading
from typing import TYPE_CHECKING

from device_agent.emulator.commands import COMMANDS
from device_agent.emulator.process import run_executable
from device_agent.emulator.sandbox import DEVICE_TMP, SandboxError
from device_agent.emulator.shio import (
    BufferSink, BytesSource, Call, ExitShell, FileSink, FileSizeExceeded, NullSink, Sink, Source,
)
from device_agent.emulator.shparse import Command, Pipeline, Redirect, ShellSyntaxError, Word, parse

if TYPE_CHECKING:
    from device_agent.emulator.device import Device

__all__ = ["Shell", "SH"]

SH = "/system/bin/sh"
_ENVIRONMENT = {
    "PATH": "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin:/odm/bin:/vendor/bin",
    "HOME": "/",
    "SHELL": SH,
    "TMPDIR": DEVICE_TMP,
    "ANDROID_DATA": "/data",
    "USER": "shell",
}
_SYSTEM_BIN = ("/system/bin", "/system/xbin")
_PIDS = itertools.count(4000)  # shells' $$, as a phone's shell PIDs: small numbers of the device's own
_ABORTED = 255


class Shell:
    """One shell session: its working folder, variables and last status persist across :meth:`run`."""

    def __init__(self, device: Device, stdout: Sink, stderr: Sink, stdin: Source | None = None) -> None:
        self.device = device
        self.stdout = stdout
        self.stderr = stderr
        self.stdin: Source = stdin or BytesSource()
        self.cwd = "/"
        self.status = 0
        self.exited = False  # `exit` ran
        self.vars = dict(_ENVIRONMENT)
        self.pid = next(_PIDS)  # $$: a device-side number, never the host's PID
        self.file_size_limit: int | None = None  # `ulimit -f`, in bytes: what redirections may write
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[bytes]] = set()

    # -- lifetime ----------------------------------------------------------------------------

    def abort(self) -> None:
        """The host went away: kill what runs and run nothing more."""
        self._aborted.set()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            self.device.processes.kill(process)

    def wait(self, seconds: float) -> None:
        """Sleep, waking early on :meth:`abort`."""
        self._aborted.wait(seconds)

    def track(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._processes.add(process)
        self.device.processes.add(process)
        if self._aborted.is_set():
            self.device.processes.kill(process)

    def untrack(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._processes.discard(process)
        self.device.processes.discard(process)

    # -- running -----------------------------------------------------------------------------

    def run(self, text: str) -> int:
        """Run a command line; return its exit status (0-255)."""
        try:
            script = parse(text)
        except ShellSyntaxError as e:
            self.stderr.write(f"{SH}: syntax error: {e}\n".encode())
            self.status = 2
            return self.status
        try:
            for and_or in script:
                for joiner, pipeline in and_or:
                    if (joiner == "&&" and self.status != 0) or (joiner == "||" and self.status == 0):
                        continue
                    self.status = self._run_pipeline(pipeline) & 0xFF
        except ExitShell as e:
            self.status = e.code & 0xFF
            self.exited = True
        return self.status

    def _run_pipeline(self, pipeline: Pipeline) -> int:
        stdin = self.stdin
        status = 0
        for index, command in enumerate(pipeline):
            if self._aborted.is_set():
                raise ExitShell(_ABORTED)
            last = index == len(pipeline) - 1
            stdout: Sink = self.stdout if last else BufferSink()
            status = self._run_command(command, stdin, stdout)
            if isinstance(stdout, BufferSink):
                stdin = BytesSource(stdout.getvalue())
        return status

    def _run_command(self, command: Command, stdin: Source, stdout: Sink) -> int:
        opened: list[FileSink] = []
        try:
            argv = [field for word in command.words for field in self._expand(word)]
            env = {name: self._expand_text(value) for name, value in command.assigns}
            stdin, stdout, stderr = self._redirect(command.redirects, stdin, stdout, self.stderr, opened)
        except _RedirectError as e:
            self.stderr.write(f"{SH}: {e}\n".encode("utf-8", "surrogateescape"))
            return 1
        try:
            if not argv:
                self.vars.update(env)
                return 0
            call = Call(self, argv[0], argv[1:], env, stdin, stdout, stderr)
            try:
                return self.dispatch(call)
            except FileSizeExceeded:  # the kernel's SIGXFSZ: the command dies, the shell goes on
                return 128 + signal.SIGXFSZ
        finally:
            for sink in opened:
                sink.file.close()

    def dispatch(self, call: Call) -> int:
        """Run one command: a builtin, or a pushed executable when its name holds a ``/``."""
        name = call.name
        if "/" in name:
            try:
                folder, base = posixpath.split(self.device.sandbox.normalize(name, self.cwd))
            except SandboxError:
                folder, base = "", ""
            if folder in _SYSTEM_BIN and base in COMMANDS:
                call.name = base
                return COMMANDS[base](call)
            return run_executable(call)
        builtin = COMMANDS.get(name)
        if builtin is None:
            call.stderr.write(f"{SH}: {name}: inaccessible or not found\n".encode("utf-8", "surrogateescape"))
            return 127
        return builtin(call)

    # -- words and redirections ----------------------------------------------------------------

    def _value(self, name: str) -> str:
        if name == "?":
            return str(self.status)
        if name == "$":
            return str(self.pid)
        if name == "#":
            return "0"
        return self.vars.get(name, "")

    def _expand_text(self, word: Word) -> str:
        return "".join(self._value(s.text) if s.var else s.text for s in word)

    def _expand(self, word: Word) -> list[str]:
        """A word's fields: variables substituted, then globbed against the device's files.

        An unquoted expansion that comes out empty disappears, as in sh; a pattern that matches
        nothing stays as it is. (Unlike sh, an unquoted variable is not split at spaces.)
        """
        text, pattern, magic = [], [], False
        for segment in word:
            value = self._value(segment.text) if segment.var else segment.text
            text.append(value)
            if segment.quoted or segment.var:
                pattern.append(glob.escape(value))
            else:
                pattern.append(value)
                magic = magic or any(c in value for c in "*?[")
        joined = "".join(text)
        if not joined and all(s.var and not s.quoted for s in word):
            return []
        if magic:
            matches = self.device.sandbox.glob("".join(pattern), self.cwd)
            if matches:
                return matches
        return [joined]

    def _redirect(
        self, redirects: list[Redirect], stdin: Source, stdout: Sink, stderr: Sink, opened: list[FileSink]
    ) -> tuple[Source, Sink, Sink]:
        sinks = {1: stdout, 2: stderr}
        for redirect in redirects:
            target = self._expand_text(redirect.target)
            if redirect.op == ">&":
                if redirect.fd not in (1, 2) or int(target) not in (1, 2):
                    raise _RedirectError(f"{redirect.fd}>&{target}: bad file descriptor")
                sinks[redirect.fd] = sinks[int(target)]
            elif redirect.op == "<":
                stdin = BytesSource(self._read_input(target))
            else:
                sink: Sink = NullSink() if target == "/dev/null" else self._open_output(target, redirect.op == ">>", opened)
                for fd in ((1, 2) if redirect.fd == -1 else (redirect.fd,)):
                    if fd == 0:
                        raise _RedirectError(f"0{redirect.op}{target}: bad file descriptor")
                    sinks[fd] = sink
        return stdin, sinks[1], sinks[2]

    def _read_input(self, target: str) -> bytes:
        if target == "/dev/null":
            return b""
        try:
            with self.device.sandbox.open_read(target, self.cwd) as f:
                return f.read()
        except SandboxError as e:
            raise _RedirectError(f"can't open {target}: {e.detail}") from e

    def _open_output(self, target: str, append: bool, opened: list[FileSink]) -> FileSink:
        try:
            sandbox = self.device.sandbox
            sink = FileSink(sandbox.open_write(target, self.cwd, append=append), self.file_size_limit,
                            sandbox.free_bytes())
        except SandboxError as e:
            raise _RedirectError(f"can't create {target}: {e.detail}") from e
        opened.append(sink)
        return sink


class _RedirectError(Exception):
    pass
