"""Devices through the real adb server and emulated devices: discovery, facts, shell, pushes,
state snapshots, and the emulated devices the lab starts itself."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from host.cli.main import app
from host.devices import (
    DeviceShell,
    PushItem,
    StateReader,
    list_devices,
    list_emulated_devices,
    push_files,
    read_facts,
    select_devices,
    start_emulated_device,
    stop_emulated_device,
)
from host.devices.errors import DeviceGoneError, OutputTooLargeError, ShellTimeoutError
from host.devices.push import REMOTE_DIR
from host.errors import DeviceError, DeviceNotFoundError, NotFoundError

from .facts_tree import write_facts_tree

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"


def test_list_devices_reads_facts(adb_server: Any, emulated_device: Any) -> None:
    entries = {e.serial: e for e in list_devices(adb_server.client)}
    entry = entries[emulated_device.serial]
    assert entry.state == "device" and entry.problem is None and entry.ready
    facts = entry.facts
    assert facts is not None
    assert facts.kind == "emulated" and facts.abis == ("x86_64",) and facts.abi == "x86_64"
    assert (facts.manufacturer, facts.model, facts.sdk, facts.release) == ("lab", "lab emulated device", 34, "14")
    assert facts.cores == len(os.sched_getaffinity(0))
    assert len(facts.max_freqs_khz) == facts.cores
    assert facts.soc  # the host CPU's name from /proc/cpuinfo


def test_facts_from_a_captured_tree(adb_server: Any, emulated_device_factory: Callable[..., Any], tmp_path: Path) -> None:
    tree = write_facts_tree(tmp_path / "facts", {"cpu-big": "61500"})
    device = emulated_device_factory(facts_root=tree, model="Pixel Test")
    facts = read_facts(DeviceShell(adb_server.client, device.serial))
    assert facts.model == "Pixel Test" and facts.soc == "Test SoC 9000"
    assert facts.max_freqs_khz == (2400000,) * (facts.cores or 0)


def test_lab_devices_json_and_table(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--home", str(tmp_path), "devices", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["adb_server"] == f"127.0.0.1:{adb_server.port}"
    (mine,) = [d for d in document["devices"] if d["serial"] == emulated_device.serial]
    assert mine["ready"] and mine["state"] == "device" and mine["problem"] is None
    assert mine["facts"]["kind"] == "emulated" and mine["facts"]["abis"] == ["x86_64"]
    table = runner.invoke(app, ["--home", str(tmp_path), "devices"])
    assert table.exit_code == 0 and emulated_device.serial in table.stdout and "emulated" in table.stdout


def test_offline_device_is_listed_with_what_to_do(adb_server: Any, emulated_device_factory: Callable[..., Any]) -> None:
    device = emulated_device_factory()
    device.launched.stop()  # the device dies; adb keeps its serial, offline, until it is disconnected
    entry = {e.serial: e for e in list_devices(adb_server.client)}[device.serial]
    assert entry.state == "offline" and entry.facts is None and not entry.ready
    assert entry.problem is not None and entry.problem.startswith("offline: reconnect the cable")
    with pytest.raises(DeviceNotFoundError, match=f"device {device.serial} is offline: "):
        select_devices(adb_server.client, [device.serial])


def test_select_devices_rule(adb_server: Any, emulated_device_factory: Callable[..., Any]) -> None:
    a, b = emulated_device_factory(), emulated_device_factory()
    chosen = select_devices(adb_server.client, [b.serial])
    assert [f.serial for f in chosen] == [b.serial]
    everything = {f.serial for f in select_devices(adb_server.client, None)}
    assert {a.serial, b.serial} <= everything
    os.environ["ANDROID_SERIAL"] = a.serial
    try:
        assert [f.serial for f in select_devices(adb_server.client, None)] == [a.serial]
        assert [f.serial for f in select_devices(adb_server.client, [b.serial])] == [b.serial]  # explicit wins
    finally:
        del os.environ["ANDROID_SERIAL"]
    with pytest.raises(DeviceNotFoundError, match=r"device 127\.0\.0\.1:1 \(--device\) is not attached") as info:
        select_devices(adb_server.client, ["127.0.0.1:1"])
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_shell_exit_codes_streams_and_quoting(adb_server: Any, emulated_device: Any) -> None:
    shell = DeviceShell(adb_server.client, emulated_device.serial)
    result = shell.run("echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    odd = "it's a \"model\" $HOME; rm -rf / `x`"
    assert shell.run(["echo", odd]).stdout == odd + "\n"
    assert shell.run(["no_such_command"]).returncode == 127


def test_shell_v1_fallback(adb_server: Any, emulated_device: Any) -> None:
    """Devices without shell_v2: one stream, the exit code from the `; echo X4EXIT:$?` trailer."""
    shell = DeviceShell(adb_server.client, emulated_device.serial, v2=False)
    result = shell.run("echo out; ls /data/local/tmp/nope")
    assert result.returncode == 1 and result.stdout.startswith("out\n") and "nope" in result.stdout  # stderr mixed in
    with pytest.raises(DeviceError, match="ended the shell before its exit code could be read"):
        shell.run("exit 3")
    odd = "it's a \"model\" $HOME; `x`"
    assert shell.run(["echo", odd]).stdout == odd + "\n"
    with pytest.raises(ShellTimeoutError) as info:
        shell.run("echo started; sleep 30", timeout=0.5)
    assert info.value.output == "started\n"
    assert shell.run(["true"]).returncode == 0


def test_shell_deadline_and_the_device_stays_usable(adb_server: Any, emulated_device: Any) -> None:
    shell = DeviceShell(adb_server.client, emulated_device.serial)
    with pytest.raises(ShellTimeoutError, match="did not finish in 0.5 s") as info:
        shell.run("echo started; sleep 30", timeout=0.5)
    assert info.value.output == "started\n"
    assert shell.run(["echo", "still here"]).stdout == "still here\n"


@pytest.mark.parametrize("v2", [True, False])
def test_shell_stops_reading_past_max_output(adb_server: Any, emulated_device: Any, v2: bool) -> None:
    """A command that prints more than ``max_output`` (a device whose shell ignored ``ulimit -f``)
    is cut off by the host, keeping the first bytes; the device answers the next command."""
    (emulated_device.root / "big").write_bytes(b"0123456789" * 50_000)
    shell = DeviceShell(adb_server.client, emulated_device.serial, v2=v2)
    with pytest.raises(OutputTooLargeError, match="printed more than 100,000 bytes; stopped reading") as info:
        shell.run("cat /data/local/tmp/big", max_output=100_000)
    assert info.value.output == "0123456789" * 10_000
    assert shell.run("cat /data/local/tmp/big", max_output=500_000).stdout == "0123456789" * 50_000
    assert shell.run(["echo", "still here"]).stdout == "still here\n"


def test_shell_on_a_vanished_device(adb_server: Any, emulated_device_factory: Callable[..., Any]) -> None:
    device = emulated_device_factory()
    shell = DeviceShell(adb_server.client, device.serial)
    assert shell.run(["true"]).returncode == 0
    device.stop()
    with pytest.raises(DeviceGoneError, match=device.serial):
        shell.run(["true"], timeout=10)


def test_push_skips_what_the_device_has(adb_server: Any, emulated_device: Any, tmp_path: Path) -> None:
    shell = DeviceShell(adb_server.client, emulated_device.serial)
    local = tmp_path / "m.tflite"
    shutil.copyfile(MODELS / "conv.tflite", local)
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    odd_remote = f"{REMOTE_DIR}/odd dir/it's \"quoted\".bin"
    items = [PushItem(local, sha, f"{REMOTE_DIR}/{sha}.tflite"), PushItem(local, sha, odd_remote, executable=True)]
    first = push_files(shell, items)
    assert [r.pushed for r in first] == [True, True]
    on_device = emulated_device.root / "lab" / f"{sha}.tflite"
    assert hashlib.sha256(on_device.read_bytes()).hexdigest() == sha
    odd_local = emulated_device.root / "lab" / "odd dir" / "it's \"quoted\".bin"
    assert odd_local.stat().st_mode & 0o777 == 0o755
    second = push_files(shell, items)
    assert [r.pushed for r in second] == [False, False]
    on_device.write_bytes(b"damaged")  # a changed file on the device is pushed again
    assert [r.pushed for r in push_files(shell, items)] == [True, False]
    assert hashlib.sha256(on_device.read_bytes()).hexdigest() == sha


def test_state_snapshot_values(adb_server: Any, emulated_device_factory: Callable[..., Any], tmp_path: Path) -> None:
    tree = write_facts_tree(tmp_path / "facts", {"cpu-big": "61500", "battery": "31", "cpu-big ": "40000"})
    device = emulated_device_factory(facts_root=tree)
    shell = DeviceShell(adb_server.client, device.serial)
    facts = read_facts(shell)
    reader = StateReader(shell, facts)
    state = reader.snapshot()
    assert state.thermal_c == {"cpu-big": 61.5, "battery": 31.0, "cpu-big(thermal_zone2)": 40.0}
    assert state.max_temp_c == 61.5
    cores = facts.cores or 0
    assert state.governors == {f"cpu{n}": "schedutil" for n in range(cores)}
    assert state.cur_freqs_khz == {f"cpu{n}": 1200000 + n for n in range(cores)}
    assert (state.battery_level, state.charging) == (None, None)  # no dumpsys on the emulated device
    assert reader.set_fixed_performance(True) is None  # SDK 34, but no `cmd power` there


def test_state_snapshot_on_a_bare_machine(
    adb_server: Any, emulated_device_factory: Callable[..., Any], tmp_path: Path
) -> None:
    device = emulated_device_factory(facts_root=write_facts_tree(tmp_path / "facts", {}, cpus=0))
    shell = DeviceShell(adb_server.client, device.serial)
    state = StateReader(shell, read_facts(shell)).snapshot()
    assert state.thermal_c == {} and state.max_temp_c is None and state.governors == {} and state.cur_freqs_khz == {}


def test_lab_starts_and_stops_emulated_devices(adb_server: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    handle = start_emulated_device(home, client=adb_server.client)
    try:
        assert handle.running and handle.serial == f"127.0.0.1:{handle.port}"
        assert [h.serial for h in list_emulated_devices(home)] == [handle.serial]
        facts = select_devices(adb_server.client, [handle.serial])[0]
        assert facts.kind == "emulated"
        second = start_emulated_device(home, client=adb_server.client)
        assert second.slot == handle.slot + 1 and second.root != handle.root
        stop_emulated_device(second.serial, home=home, client=adb_server.client)
        assert not second.running
    finally:
        stop_emulated_device(handle, client=adb_server.client)
    assert not handle.running
    assert list_emulated_devices(home) == []
    assert handle.serial not in {info.serial for info in adb_server.client.list()}
    assert Path(handle.root).is_dir()  # its files stay for the next start
    with pytest.raises(NotFoundError, match="no emulated device 127.0.0.1:1 is running"):
        stop_emulated_device("127.0.0.1:1", home=home, client=adb_server.client)
