"""Finding and starting the adb server (the real adb adbutils bundles, on a private port)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import adbutils
import pytest

from host.devices import adb_client, list_devices, server_address
from host.errors import ConfigError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_port() -> Iterator[int]:
    """ANDROID_ADB_SERVER_PORT set to a free port for one test; any server there is killed after."""
    port = _free_port()
    saved = os.environ.get("ANDROID_ADB_SERVER_PORT")
    os.environ["ANDROID_ADB_SERVER_PORT"] = str(port)
    try:
        yield port
    finally:
        adbutils.AdbClient(host="127.0.0.1", port=port).server_kill()
        if saved is None:
            del os.environ["ANDROID_ADB_SERVER_PORT"]
        else:
            os.environ["ANDROID_ADB_SERVER_PORT"] = saved


def test_starts_a_server_and_says_so(private_port: int) -> None:
    said: list[str] = []
    client = adb_client(on_start=said.append)
    assert client.port == private_port
    assert len(said) == 1 and f"no adb server on port {private_port}: starting one" in said[0]
    assert client.server_version() >= 39
    again: list[str] = []
    assert adb_client(on_start=again.append).port == private_port
    assert again == []  # a running server is used as is
    assert list_devices(client) == []


def test_starting_without_a_callback_logs_a_warning(private_port: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="host.devices.adb"):
        adb_client()
    assert any(f"no adb server on port {private_port}" in r.getMessage() for r in caplog.records)


def test_bad_port_setting(private_port: int) -> None:
    os.environ["ANDROID_ADB_SERVER_PORT"] = "fifty"
    with pytest.raises(ConfigError, match="ANDROID_ADB_SERVER_PORT='fifty' is not a TCP port"):
        server_address()
    os.environ["ANDROID_ADB_SERVER_PORT"] = "70000"
    with pytest.raises(ConfigError):
        adb_client()


def test_missing_adb_executable(private_port: int) -> None:
    saved = os.environ.get("ADBUTILS_ADB_PATH")
    os.environ["ADBUTILS_ADB_PATH"] = "/nonexistent/adb"
    try:
        with pytest.raises(Exception, match="adb"):
            adb_client()
    finally:
        if saved is None:
            del os.environ["ADBUTILS_ADB_PATH"]
        else:
            os.environ["ADBUTILS_ADB_PATH"] = saved
