"""Running real processes for the emulated shell: the built-in benchmark_model and pushed executables.

A process runs on the host, in its own process group, with its working folder in the sandbox.
Device paths in its arguments (``/data/local/tmp/m.tflite``, ``--graph=/data/local/tmp/m.tflite``)
and in ``NAME=value`` prefixes are translated to host paths first; a path that would lead out of
the sandbox stops the command before it starts. What the process itself may then open is up to
the device's confinement (``confine``): it starts with a fixed environment, under resource limits
and, where the kernel allows it, in namespaces where only the sandbox is writable.

Output is streamed line by line: stdout and stderr separately (shell v2) or merged into one
pipe when the shell's stdout and stderr are the same sink (shell v1, ``2>&1``). The sandbox's host
folder is written back as /data/local/tmp in it, so the output reads as it would on a phone
(benchmark_model's ``Graph: [/data/local/tmp/m.tflite]``) and does not change from run to run.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import threading
from typing import IO

from device_agent.emulator.confine import base_environment, unsafe_env_name
from device_agent.emulator.device import ProcessRegistry
from device_agent.emulator.sandbox import DEVICE_TMP, SandboxError
from device_agent.emulator.shio import BytesSource, Call, Sink

__all__ = ["run_process", "run_executable"]

_SH = "/system/bin/sh"
_DEVICE_TMP = DEVICE_TMP.encode()


def run_executable(call: Call) -> int:
    """Run ``call.name``, a path to a pushed executable in the sandbox, as the device would."""
    sandbox = call.sandbox
    try:
        vpath = sandbox.normalize(call.name, call.cwd)
    except SandboxError as e:
        return call.error(e.detail, 127)
    if not sandbox.in_sandbox(vpath):
        if sandbox.exists(vpath):
            return _sh_error(call, "can't execute: Permission denied", 126)
        return _sh_error(call, "inaccessible or not found", 127)
    try:
        entry = sandbox.stat(vpath)
        host = sandbox.host_path(vpath)
    except SandboxError as e:
        if e.errno == errno.ENOENT:
            return _sh_error(call, "No such file or directory", 127)
        return _sh_error(call, e.detail, 126)
    if entry.is_dir:
        return _sh_error(call, "can't execute: Is a directory", 126)
    if not os.access(host, os.X_OK):
        return _sh_error(call, "can't execute: Permission denied", 126)
    return run_process(call, [str(host)])


def run_process(call: Call, head: list[str], extra_env: dict[str, str] | None = None, *,
                address_space: bool = True) -> int:
    """Run ``head + call.args`` (device paths translated) and stream its output to the call's sinks.

    Returns the exit status (128 + N for a process killed by signal N); 126 when the file cannot
    be executed here (another CPU architecture: "Exec format error"); 1 for a ``NAME=value``
    prefix that would change how code is loaded (``LD_PRELOAD``, ``PYTHONPATH``…). ``extra_env``
    is the runner's own (trusted); ``address_space`` False leaves RLIMIT_AS unset (QEMU).

    Raises:
        whatever a sink raises (StreamClosed when the host went away), after killing the process.
    """
    sandbox = call.sandbox
    refused = sorted(name for name in call.env if unsafe_env_name(name))
    if refused:
        return call.error(f"{', '.join(refused)}: not passed to programs on the emulated device (their "
                          "environment is fixed: variables that change how code is loaded are refused)")
    try:
        argv = head + [sandbox.host_arg(arg, call.cwd) for arg in call.args]
        env = base_environment(sandbox.root)
        env.update({name: _host_env_value(call, value) for name, value in call.env.items()})
    except SandboxError as e:
        return call.error(str(e))
    env.update(extra_env or {})
    cwd = sandbox.host_cwd(call.cwd)
    confinement = call.shell.device.confinement
    if confinement is not None:
        argv = confinement.command(argv, cwd, address_space=address_space)
    stdin_data = call.stdin.data if isinstance(call.stdin, BytesSource) else None
    merged = call.stdout is call.stderr
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        return _sh_error(call, f"can't execute: {e.strerror}", 126)
    shell = call.shell
    shell.track(process)
    failures: list[BaseException] = []
    to_device = re.compile(re.escape(str(sandbox.root).encode()) + rb"(?![\w.-])")
    outputs = [(process.stdout, call.stdout)] + ([] if merged else [(process.stderr, call.stderr)])
    try:
        pumps = [threading.Thread(target=_pump, args=(process, pipe, sink, to_device, failures), daemon=True)
                 for pipe, sink in outputs]
        if stdin_data is not None:
            pumps.append(threading.Thread(target=_feed, args=(process, stdin_data), daemon=True))
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()
        status = process.wait()
    finally:
        shell.untrack(process)
    if failures:
        raise failures[0]
    return 128 - status if status < 0 else status


def _pump(
    process: subprocess.Popen[bytes], pipe: IO[bytes], sink: Sink, to_device: re.Pattern[bytes],
    failures: list[BaseException],
) -> None:
    """Copy a pipe to a sink in whole lines (or 64 KiB pieces), host sandbox paths made device paths."""
    fd = pipe.fileno()
    pending = b""
    try:
        while True:
            chunk = os.read(fd, 65536)
            data = pending + chunk
            cut = len(data) if not chunk or len(data) >= 65536 else data.rfind(b"\n") + 1
            pending = data[cut:]
            try:
                if cut:
                    sink.write(to_device.sub(_DEVICE_TMP, data[:cut]))
            except BaseException as e:  # the host went away: nobody reads the output any more
                failures.append(e)
                ProcessRegistry.kill(process)
                return
            if not chunk:
                return
    finally:
        pipe.close()


def _feed(process: subprocess.Popen[bytes], data: bytes) -> None:
    stdin = process.stdin
    if stdin is None:
        return
    try:
        stdin.write(data)
    except BrokenPipeError:  # the process did not read all of its input
        pass
    try:
        stdin.close()
    except BrokenPipeError:
        pass


def _host_env_value(call: Call, value: str) -> str:
    """A ``NAME=value`` prefix for a real process: sandbox paths in a ``:`` list become host paths."""
    parts = []
    for part in value.split(":"):
        vpath = call.sandbox.normalize(part, call.cwd) if part.startswith((DEVICE_TMP, ".")) else None
        parts.append(str(call.sandbox.host_path(vpath)) if vpath and call.sandbox.in_sandbox(vpath) else part)
    return ":".join(parts)


def _sh_error(call: Call, message: str, status: int) -> int:
    call.stderr.write(f"{_SH}: {call.name}: {message}\n".encode("utf-8", "surrogateescape"))
    return status
