"""ADB authentication: the device asks for AUTH, accepts only its authorized keys, and stays
``unauthorized`` (opening nothing) for any other key, as a phone does. Real adb servers throughout."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import adbutils
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from device_agent.emulator.auth import (
    decode_public_key, default_key_path, encode_public_key, ensure_key_pair, load_private_key, sign_token,
    verify_signature,
)
from tests.device_agent.test_emulator_protocol import AUTH, CNXN, MIB, OPEN, RawPeer, packet, wait_for_log


def _other_key_file(folder: Path) -> Path:
    """An authorized-keys file holding one key that is not the adb server's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "authorized_keys"
    path.write_text(encode_public_key(key.public_key(), "someone@elsewhere") + "\n")
    return path


def _state(adb_server, serial: str) -> str:
    return next((info.state for info in adb_server.client.list() if info.serial == serial), "absent")


def _wait_for_state(adb_server, serial: str, wanted: str) -> None:
    deadline = time.monotonic() + 20
    while _state(adb_server, serial) != wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"{serial} never became {wanted!r} (last {_state(adb_server, serial)!r})")
        time.sleep(0.05)


def test_our_key_format_is_adbs(adb_server):
    # The adb server made ~/.android/adbkey(.pub) when it started: our encoding of its private key's
    # public half must be byte for byte its adbkey.pub, and decoding must give the same key back.
    private = load_private_key(default_key_path())
    theirs = default_key_path().with_name("adbkey.pub").read_text().split()[0]
    assert encode_public_key(private.public_key()) == theirs
    assert decode_public_key(theirs).public_numbers() == private.public_key().public_numbers()
    token = os.urandom(20)
    assert verify_signature(decode_public_key(theirs), token, sign_token(private, token))
    assert not verify_signature(decode_public_key(theirs), os.urandom(20), sign_token(private, token))


def test_a_key_we_create_is_one_adb_uses(tmp_path):
    """ensure_key_pair writes what adb writes; an adb server whose HOME holds it signs with it."""
    home = tmp_path / "home"
    pub = ensure_key_pair(home / ".android" / "adbkey")
    private = home / ".android" / "adbkey"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    text, _, comment = pub.read_text().strip().partition(" ")
    assert "@" in comment and decode_public_key(text).key_size == 2048
    assert ensure_key_pair(private) == pub and pub.read_text().startswith(text)  # kept, not remade


def test_authorized_key_works_and_the_handshake_asks_for_auth(emulated_device):
    peer = RawPeer(emulated_device.port)
    peer.send(packet(CNXN, 0x01000001, MIB, b"host::features=shell_v2\0"))
    command, kind, _, token = peer.recv()
    assert (command, kind, len(token)) == (AUTH, 1, 20)
    peer.close()
    assert emulated_device.device.shell("echo authorized") == "authorized"
    assert "authenticated with key" in emulated_device.log_text()


def test_an_unknown_key_leaves_the_device_unauthorized(emulated_device_factory, adb_server, tmp_path, lab_process):
    keys = _other_key_file(tmp_path)
    device = emulated_device_factory(extra_args=("--authorized-keys", str(keys)), connect=False)
    # adb's answer for a TCP device that does not take its key, as for a phone over Wi-Fi
    assert adb_server.client.connect(device.serial, timeout=20) == f"failed to authenticate to {device.serial}"
    device.connected = True
    _wait_for_state(adb_server, device.serial, "unauthorized")
    assert f"{device.serial}\tunauthorized" in adb_server.run("devices").stdout
    shell = adb_server.run("-s", device.serial, "shell", "echo never")
    assert shell.returncode != 0 and "unauthorized" in shell.stderr
    with pytest.raises(adbutils.AdbError):
        device.device.shell("echo never")
    log = wait_for_log(device, "unauthorized key")
    assert str(keys) in log and "--accept-new-keys" in log
    assert not list(device.root.iterdir())
    listed = lab_process(tmp_path / "home", "devices", "--json")
    entry = next(e for e in json.loads(listed.stdout)["devices"] if e["serial"] == device.serial)
    assert entry["state"] == "unauthorized" and not entry["ready"]
    assert "an emulated device: its authorized keys lack this adb server's key" in entry["problem"]

    # The user adds the adb server's key (as tapping "Always allow"): a new connection is a device.
    keys.write_text(keys.read_text() + default_key_path().with_name("adbkey.pub").read_text())
    adb_server.client.disconnect(device.serial)
    assert "connected" in adb_server.client.connect(device.serial, timeout=20)
    _wait_for_state(adb_server, device.serial, "device")
    assert device.device.shell("echo now") == "now"


def test_an_unauthorized_connection_can_open_nothing(emulated_device_factory, tmp_path):
    device = emulated_device_factory(extra_args=("--authorized-keys", str(_other_key_file(tmp_path))), connect=False)
    peer = RawPeer(device.port)
    peer.send(packet(CNXN, 0x01000001, MIB, b"host::\0"))
    _, _, _, token = peer.recv()
    peer.send(packet(AUTH, 2, 0, sign_token(load_private_key(default_key_path()), token)))
    command, kind, _, fresh = peer.recv()
    assert (command, kind) == (AUTH, 1) and fresh != token  # a wrong key gets a new token, as from adbd
    public = default_key_path().with_name("adbkey.pub").read_bytes().strip() + b"\0"
    peer.send(packet(AUTH, 3, 0, public))
    peer.sock.settimeout(1.0)
    with pytest.raises(TimeoutError):
        peer.sock.recv(1)  # no CNXN: the device waits for a decision that never comes
    peer.sock.settimeout(10)
    peer.send(packet(OPEN, 1, 0, b"shell:echo pwned > /data/local/tmp/x\0"))
    assert peer.closed_by_device()
    assert "OPEN before authentication (the device is unauthorized)" in wait_for_log(device, "OPEN before")
    assert not (device.root / "x").exists()


def test_accept_new_keys_adds_the_key(emulated_device_factory, tmp_path):
    keys = tmp_path / "keys"
    device = emulated_device_factory(extra_args=("--authorized-keys", str(keys), "--accept-new-keys"))
    assert device.device.shell("echo in") == "in"
    ours = default_key_path().with_name("adbkey.pub").read_text().split()[0]
    assert keys.read_text().split()[0] == ours
    assert "accepted new key" in device.log_text()


def test_no_auth_warns_and_needs_no_key(emulated_device_factory):
    device = emulated_device_factory(extra_args=("--no-auth",))
    assert "WARNING: --no-auth" in device.log_text()
    peer = RawPeer(device.port)
    peer.send(packet(CNXN, 0x01000001, MIB, b"host::\0"))
    assert peer.recv()[0] == CNXN
    peer.close()
    assert device.device.shell("echo open") == "open"


def test_a_missing_authorized_keys_file_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "device_agent", "emulator", "--port", "0", "--authorized-keys",
                             str(tmp_path / "none")], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "does not exist" in result.stderr and "listening" not in result.stdout


def test_the_default_key_is_made_when_missing(tmp_path):
    """With no ~/.android/adbkey the device makes one, as adb would, and trusts its .pub."""
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "device_agent", "emulator", "--port", "0", "--root",
                                str(tmp_path / "root")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env=env)
    try:
        assert process.stdout.readline().startswith(b"listening on ")
        key = load_private_key(home / ".android/adbkey")
        pub = (home / ".android/adbkey.pub").read_text().split()[0]
        assert pub == encode_public_key(key.public_key())
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert key.key_size == 2048 and isinstance(key, rsa.RSAPrivateKey)
    assert serialization.load_pem_private_key((home / ".android/adbkey").read_bytes(), None).key_size == 2048
