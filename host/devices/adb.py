"""The adb server: find it, start it when none answers (saying so), and hand out a client.

The server address follows adb's own rules: ``ANDROID_ADB_SERVER_PORT`` (default 5037) and
``ANDROID_ADB_SERVER_HOST`` (default 127.0.0.1). The adb executable is adbutils' choice:
``ADBUTILS_ADB_PATH``, else ``adb`` on PATH, else the adb bundled with adbutils.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from collections.abc import Callable

import adbutils

from host.errors import ConfigError, DeviceError

__all__ = ["adb_client", "adb_executable", "server_address"]

_log = logging.getLogger(__name__)

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_START_TIMEOUT_S = 30.0


def server_address() -> tuple[str, int]:
    """(host, port) of the adb server from the environment, as adb itself reads them.

    Raises:
        ConfigError: ``ANDROID_ADB_SERVER_PORT`` is not a port number.
    """
    host = os.environ.get("ANDROID_ADB_SERVER_HOST") or "127.0.0.1"
    raw = os.environ.get("ANDROID_ADB_SERVER_PORT") or "5037"
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(f"ANDROID_ADB_SERVER_PORT={raw!r} is not a TCP port: set it to a number such as 5037")
    return host, port


def adb_executable() -> str:
    """Path of the adb executable adbutils would run.

    Raises:
        ConfigError: none found (names ADBUTILS_ADB_PATH and PATH as the fixes).
    """
    try:
        return adbutils.adb_path()
    except adbutils.AdbError as exc:
        raise ConfigError(
            "no adb executable found: install Android platform-tools (adb on PATH) or set ADBUTILS_ADB_PATH"
        ) from exc


def _listening(host: str, port: int) -> bool:
    """Whether something accepts connections there. Checked with a plain socket, because
    adbutils' own connect starts a server silently when none answers."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _answers(client: adbutils.AdbClient) -> bool:
    if not _listening(client.host, client.port):
        return False
    try:
        client.server_version()
    except (adbutils.AdbError, OSError):
        return False
    return True


def adb_client(on_start: Callable[[str], None] | None = None) -> adbutils.AdbClient:
    """A client for the adb server, starting a local server when none answers.

    Starting a server is never silent: ``on_start`` gets one line saying so (the CLI prints it on
    stderr); without a callback the line goes to this module's logger at WARNING level, which
    Python prints on stderr when logging is not configured.

    Raises:
        ConfigError: the port setting is bad, or no adb executable exists.
        DeviceError: a remote server does not answer, or the local one fails to start.
    """
    host, port = server_address()
    client = adbutils.AdbClient(host=host, port=port)
    if _answers(client):
        return client
    if host not in _LOCAL_HOSTS:
        raise DeviceError(f"no adb server answers at {host}:{port} (ANDROID_ADB_SERVER_HOST): start it there first")
    exe = adb_executable()
    message = f"no adb server on port {port}: starting one ({exe})"
    if on_start is not None:
        on_start(message)
    else:
        _log.warning(message)
    try:
        proc = subprocess.run(
            [exe, "-P", str(port), "start-server"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceError(f"could not start the adb server with {exe}: {exc}") from exc
    if proc.returncode != 0 or not _answers(client):  # adb start-server returns once the server listens
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit code {proc.returncode}"
        raise DeviceError(f"the adb server on port {port} did not start: {reason}")
    return client
