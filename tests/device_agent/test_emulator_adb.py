"""The emulated device through the real adb server: adbutils and the adb command line."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import threading
from pathlib import Path

import adbutils
import pytest


def test_listed_as_device_with_its_banner(emulated_device, adb_server):
    infos = {info.serial: info.state for info in adb_server.client.list()}
    assert infos[emulated_device.serial] == "device"
    assert emulated_device.serial in [d.serial for d in adb_server.client.device_list()]
    assert emulated_device.device.get_state() == "device"
    features = set(emulated_device.device.get_features().split(","))
    assert features == {"shell_v2", "cmd", "stat_v2"}
    listing = adb_server.run("devices", "-l").stdout
    assert f"{emulated_device.serial}" in listing and "model:lab_emulated_device" in listing


@pytest.mark.parametrize("v2", [False, True], ids=["shell-v1", "shell-v2"])
@pytest.mark.parametrize(
    ("command", "status", "output"),
    [
        ("echo hello", 0, "hello\n"),
        ("false", 1, ""),
        ("false || echo x", 0, "x\n"),
        ("true && false; echo $?", 0, "1\n"),
        ("nosuchcommand", 127, "/system/bin/sh: nosuchcommand: inaccessible or not found\n"),
        ("dumpsys battery", 127, "/system/bin/sh: dumpsys: inaccessible or not found\n"),
        ("cmd package list packages", 127, "/system/bin/sh: cmd: inaccessible or not found\n"),
    ],
)
def test_shell_exit_codes(emulated_device, v2, command, status, output):
    result = emulated_device.device.shell2(command, v2=v2)
    assert (result.returncode, result.output) == (status, output)


def test_exit_ends_the_shell_with_its_status(emulated_device):
    # Over v1, adbutils appends "; echo X4EXIT:$?", which `exit` never reaches (as on a phone).
    result = emulated_device.device.shell2("echo before; exit 3; echo after", v2=True)
    assert (result.returncode, result.output) == (3, "before\n")


def test_shell_v2_keeps_stdout_and_stderr_apart(emulated_device):
    result = emulated_device.device.shell2("echo out; ls /nope; echo $?", v2=True)
    assert result.stdout == "out\n1\n"
    assert result.stderr == "ls: /nope: No such file or directory\n"
    assert result.returncode == 0


def test_shell_v1_merges_streams(emulated_device):
    assert emulated_device.device.shell("echo a; ls /nope; echo b") == "a\nls: /nope: No such file or directory\nb"


@pytest.mark.parametrize(
    "args",
    [
        ["echo", "a b", "it's", '"q"', "$HOME", "*", "x;y", "&&"],
        ["echo", "tab\there", "back\\slash", "", "end"],
    ],
)
def test_quoting_round_trips_arguments(emulated_device, args):
    # adbutils quotes each argument with shlex.quote; the device's shell must undo exactly that.
    result = emulated_device.device.shell2(args, v2=True)
    assert result.stdout == " ".join(args[1:]) + "\n"


def test_push_and_pull_multi_mib_file_by_sha256(emulated_device, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 123)
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    sync = emulated_device.device.sync
    assert sync.push(source, "/data/local/tmp/blob.bin", mode=0o644) == len(data)
    pulled = tmp_path / "pulled.bin"
    assert sync.pull("/data/local/tmp/blob.bin", pulled) == len(data)
    assert hashlib.sha256(pulled.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    on_device = emulated_device.device.shell("sha256sum /data/local/tmp/blob.bin")
    assert on_device == f"{hashlib.sha256(data).hexdigest()}  /data/local/tmp/blob.bin"
    assert stat.S_IMODE((emulated_device.root / "blob.bin").stat().st_mode) == 0o644


def test_push_into_a_folder_creates_missing_parents(emulated_device):
    emulated_device.device.sync.push(b"abc", "/data/local/tmp/lab/models/m.bin")
    assert (emulated_device.root / "lab/models/m.bin").read_bytes() == b"abc"
    assert emulated_device.device.sync.read_text("/data/local/tmp/lab/models/m.bin") == "abc"


def test_stat_and_list(emulated_device):
    sync = emulated_device.device.sync
    sync.push(b"12345", "/data/local/tmp/a.txt", mode=0o600)
    sync.push(b"", "/data/local/tmp/sub/b.txt")
    info = sync.stat("/data/local/tmp/a.txt")
    assert stat.S_ISREG(info.mode) and info.size == 5 and info.mtime is not None
    assert stat.S_ISDIR(sync.stat("/data/local/tmp").mode)
    missing = sync.stat("/data/local/tmp/missing")
    assert (missing.mode, missing.size, missing.mtime) == (0, 0, None)
    assert not sync.exists("/data/local/tmp/missing")
    entries = {e.path: e for e in sync.list("/data/local/tmp")}
    assert set(entries) == {".", "..", "a.txt", "sub"}
    assert entries["a.txt"].size == 5 and stat.S_ISDIR(entries["sub"].mode)
    assert stat.S_ISREG(sync.stat("/proc/cpuinfo").mode)


def test_pull_of_a_missing_file_fails_with_the_reason(emulated_device):
    with pytest.raises(adbutils.AdbError, match="No such file or directory"):
        emulated_device.device.sync.read_bytes("/data/local/tmp/nothing")


def test_adb_command_line_push_pull_shell(emulated_device, adb_server, tmp_path):
    data = os.urandom(300_000)
    local = tmp_path / "m.tflite"
    local.write_bytes(data)
    serial = emulated_device.serial
    pushed = adb_server.run("-s", serial, "push", str(local), "/data/local/tmp/")
    assert pushed.returncode == 0, pushed.stderr
    assert (emulated_device.root / "m.tflite").read_bytes() == data
    pulled = tmp_path / "back.tflite"
    result = adb_server.run("-s", serial, "pull", "/data/local/tmp/m.tflite", str(pulled))
    assert result.returncode == 0, result.stderr
    assert pulled.read_bytes() == data
    shell = adb_server.run("-s", serial, "shell", "ls /data/local/tmp; exit 4")
    assert (shell.returncode, shell.stdout) == (4, "m.tflite\n")
    failed = adb_server.run("-s", serial, "push", str(local), "/proc/cpuinfo")
    assert failed.returncode != 0 and "couldn't create file" in failed.stderr


def test_getprop(emulated_device_factory):
    device = emulated_device_factory(model="Pixel Lab").device
    machine = os.uname().machine
    expected_abi = {"x86_64": "x86_64", "aarch64": "arm64-v8a"}.get(machine, machine)
    assert device.shell("getprop ro.product.cpu.abi") == expected_abi
    assert device.shell("getprop ro.product.model") == "Pixel Lab"
    assert device.prop.model == "Pixel Lab"
    assert device.shell("getprop ro.lab.emulated") == "1"
    assert device.shell("getprop no.such.prop fallback") == "fallback"
    listing = device.shell("getprop").splitlines()
    assert "[ro.build.version.sdk]: [34]" in listing and "[ro.product.manufacturer]: [lab]" in listing
    assert listing == sorted(listing)
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model_name = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), None)
    if model_name:
        assert device.shell("getprop ro.soc.model") == model_name


def test_glob_expands_against_the_device_files(emulated_device):
    device = emulated_device.device
    for name in ("a.txt", "b.txt", "c.log"):
        device.sync.push(name.encode(), f"/data/local/tmp/lab/{name}")
    assert device.shell("ls /data/local/tmp/lab/*") == "/data/local/tmp/lab/a.txt\n/data/local/tmp/lab/b.txt\n/data/local/tmp/lab/c.log"
    assert device.shell("cat /data/local/tmp/lab/*.txt") == "a.txtb.txt"
    assert device.shell("cd /data/local/tmp/lab && echo ?.log") == "c.log"
    assert device.shell("echo '/data/local/tmp/lab/*'") == "/data/local/tmp/lab/*"
    no_match = device.shell2("ls /data/local/tmp/lab/*.bin", v2=True)
    assert no_match.returncode == 1 and "/data/local/tmp/lab/*.bin: No such file" in no_match.stderr


def test_glob_over_thermal_zones_of_a_captured_tree(emulated_device_factory, tmp_path):
    facts = tmp_path / "facts"
    for zone, (kind, temp) in enumerate([("cpu-thermal", "45000"), ("battery", "31000")]):
        folder = facts / f"sys/class/thermal/thermal_zone{zone}"
        folder.mkdir(parents=True)
        (folder / "type").write_text(kind + "\n")
        (folder / "temp").write_text(temp + "\n")
        (folder / "policy").write_text("step_wise\n")  # not allowlisted
    (facts / "proc").mkdir()
    (facts / "proc/cpuinfo").write_text("processor\t: 0\nmodel name\t: Test SoC X1\nvendor_id\t: GenuineIntel\n")
    device = emulated_device_factory(facts_root=facts).device
    assert device.shell("cat /sys/class/thermal/thermal_zone*/temp") == "45000\n31000"
    assert device.shell("cat /sys/class/thermal/thermal_zone*/type") == "cpu-thermal\nbattery"
    assert device.shell("ls /sys/class/thermal/thermal_zone0") == "temp\ntype"
    assert device.shell2("cat /sys/class/thermal/thermal_zone0/policy").returncode == 1
    assert device.shell("getprop ro.soc.model") == "Test SoC X1"
    assert device.shell("getprop ro.soc.manufacturer") == "Intel"
    refused = device.shell2("echo 1 > /sys/class/thermal/thermal_zone0/temp", v2=True)
    assert refused.returncode == 1 and "can't create" in refused.stderr
    assert (facts / "sys/class/thermal/thermal_zone0/temp").read_text() == "45000\n"


def test_missing_sys_files_do_not_exist(emulated_device_factory, tmp_path):
    (tmp_path / "empty").mkdir()
    device = emulated_device_factory(facts_root=tmp_path / "empty").device
    result = device.shell2("cat /sys/class/thermal/thermal_zone*/temp", v2=True)
    assert result.returncode == 1 and "No such file or directory" in result.stderr
    assert device.shell("ls /") == "data"


def test_ten_concurrent_streams(emulated_device):
    device = emulated_device.device
    payloads = {i: os.urandom(200_000 + i) for i in range(10)}
    for i, data in payloads.items():
        device.sync.push(data, f"/data/local/tmp/f{i}")
    results: dict[int, tuple[str, bytes]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            out = device.shell2(f"echo start {i}; sha256sum /data/local/tmp/f{i}", v2=True).stdout
            results[i] = (out, device.sync.read_bytes(f"/data/local/tmp/f{i}"))
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for i, data in payloads.items():
        digest = hashlib.sha256(data).hexdigest()
        assert results[i] == (f"start {i}\n{digest}  /data/local/tmp/f{i}\n", data)


def test_pushed_executable_runs_for_real_in_the_sandbox(emulated_device):
    script = (
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "graph = sys.argv[1].split('=', 1)[1]\n"
        "print('graph', graph, open(graph).read()); print('args', sys.argv[2:]); sys.stdout.flush()\n"
        "print('cwd', os.getcwd(), sorted(os.listdir('.')), file=sys.stderr)\n"
        "sys.exit(7)\n"
    )
    device = emulated_device.device
    device.sync.push(script.encode(), "/data/local/tmp/tool", mode=0o755)
    device.sync.push(b"model", "/data/local/tmp/m.tflite")
    result = device.shell2("cd /data/local/tmp && ./tool --graph=/data/local/tmp/m.tflite plain 5", v2=True)
    # the process opened the translated path; its output names device paths, as on a phone
    assert result.returncode == 7
    assert result.stdout == "graph /data/local/tmp/m.tflite model\nargs ['plain', '5']\n"
    assert result.stderr == "cwd /data/local/tmp ['m.tflite', 'tool']\n"
    device.sync.push(b"\x7fELF" + b"\0" * 60, "/data/local/tmp/foreign", mode=0o755)
    foreign = device.shell2("/data/local/tmp/foreign", v2=True)
    assert foreign.returncode == 126 and "can't execute" in foreign.stderr
    device.sync.push(b"x", "/data/local/tmp/plain", mode=0o644)
    not_executable = device.shell2("/data/local/tmp/plain", v2=True)
    assert not_executable.returncode == 126 and "Permission denied" in not_executable.stderr


def test_benchmark_model_runs_the_device_agent_runner(emulated_device):
    from device_agent.output import parse

    model = Path(__file__).parents[1] / "fixtures/models/add.tflite"
    device = emulated_device.device
    device.sync.push(model, "/data/local/tmp/add.tflite")
    result = device.shell2(["benchmark_model", "--graph=/data/local/tmp/add.tflite", "--num_runs=20",
                            "--warmup_runs=2"], v2=True)
    assert result.returncode == 0, result.stderr
    assert "Graph: [/data/local/tmp/add.tflite]" in result.output
    parsed = parse(result.output)
    assert parsed.runs is not None and parsed.runs.count >= 20
