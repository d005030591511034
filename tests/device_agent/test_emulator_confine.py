"""Confined execution: pushed programs and the built-in benchmark_model run for real, but with a
clean environment, resource limits and, where the kernel allows it, in namespaces where only the
sandbox is writable. Each attack runs against a device started as root and as an unprivileged user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import adbutils
import pytest

from device_agent.emulator.auth import default_key_path
from device_agent.emulator.launch import DeviceProcess, _first_line
from tests.device_agent.test_emulator_security import host_pids

MODEL = Path(__file__).parents[1] / "fixtures/models/add.tflite"
NOBODY = 65534


@pytest.fixture
def outside():
    """A host folder outside every sandbox, world-writable (so that only confinement stops a write)."""
    folder = Path(tempfile.mkdtemp(prefix="lab-outside-"))
    folder.chmod(0o777)
    (folder / "victim.txt").write_text("untouched\n")
    (folder / "victim.txt").chmod(0o666)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _start_as_nobody(adb_server, extra: tuple[str, ...] = ()) -> tuple[DeviceProcess, adbutils.AdbDevice, Path]:
    """The device run by an unprivileged user (setpriv), with the adb server's key authorized."""
    base = Path(tempfile.mkdtemp(prefix="lab-nobody-"))
    base.chmod(0o755)
    (base / "root").mkdir()
    keys = base / "keys"
    shutil.copy(default_key_path().with_name("adbkey.pub"), keys)
    shutil.chown(base / "root", NOBODY, NOBODY)
    log_path = base / "log"
    log_path.touch()
    shutil.chown(log_path, NOBODY, NOBODY)
    args = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-m",
            "device_agent", "emulator", "--port", "0", "--root", str(base / "root"), "--authorized-keys", str(keys),
            *extra]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                   env={**os.environ, "HOME": str(base)})
    line = _first_line(process, 30)
    if not line.startswith("listening on "):
        process.kill()
        raise AssertionError(f"device as nobody did not start: {line!r} {log_path.read_text()}")
    launched = DeviceProcess(process, "127.0.0.1", int(line.rsplit(":", 1)[1]), base / "root", log_path)
    serial = launched.address
    assert "connected" in adb_server.client.connect(serial, timeout=20)
    adb_server.client.wait_for(serial, state="device", timeout=20)
    return launched, adb_server.client.device(serial), base


@pytest.fixture(params=["root", "nobody"])
def confined(request, emulated_device_factory, adb_server):
    """(adb device, sandbox root, as whom) for a device run as root and one run as nobody."""
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("the device runs as this user; the 'nobody' case covers an unprivileged device")
        device = emulated_device_factory(extra_args=getattr(request, "extra", ()))
        yield device.device, device.root.resolve(), "root"
        return
    if os.geteuid() != 0:
        device = emulated_device_factory()
        yield device.device, device.root.resolve(), "user"
        return
    if not _nobody_can_run(sys.executable):
        pytest.skip(f"nobody cannot run {sys.executable} here (test_the_helper_confines_an_unprivileged_user "
                    "covers the unprivileged case with the system Python)")
    launched, adb_device, base = _start_as_nobody(adb_server)
    try:
        yield adb_device, (base / "root").resolve(), "nobody"
    finally:
        adb_server.client.disconnect(launched.address)
        launched.stop()
        shutil.rmtree(base, ignore_errors=True)


def _nobody_can_run(python: str) -> bool:
    result = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-c",
                             "import subprocess, sys; subprocess.run([sys.executable, '-c', ''], check=True)"],
                            capture_output=True, timeout=60)
    return result.returncode == 0


def test_the_helper_confines_an_unprivileged_user(outside):
    """What an unprivileged device does for each command (a user namespace), run as nobody with the
    system Python: /etc/shadow stays unreadable, nothing outside the sandbox is writable, the
    environment is what the device gives, limits hold."""
    from device_agent.emulator.confine import HELPER, Confinement, Limits, base_environment

    python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or python is None or not _nobody_can_run(python):
        pytest.skip("needs root (to become nobody) and a system python3 that nobody can run")
    sandbox = outside / "sandbox"
    sandbox.mkdir()
    shutil.chown(sandbox, NOBODY, NOBODY)
    # a copy of the helper (standard library only) where nobody can read it: the checkout may sit in a private folder
    helper_dir = Path(tempfile.mkdtemp(prefix="lab-helper-"))
    helper_dir.chmod(0o755)
    helper = Path(shutil.copy(HELPER, helper_dir / HELPER.name))
    helper.chmod(0o644)
    confinement = Confinement("userns", sandbox, Limits(cpu_s=20, processes=32), read_only=[str(helper_dir)])
    victim = outside / "victim.txt"
    script = f"""
import os
print(os.getuid(), os.getcwd(), sorted(k for k in os.environ))
for path in ("/etc/shadow", {str(victim)!r}):
    try:
        open(path).read(); print("READ", path)
    except OSError as e:
        print("no read", path)
for path in ({str(victim)!r}, "/tmp/evil.txt", "/etc/evil"):
    try:
        open(path, "w").write("pwned"); print("WROTE", path)
    except OSError as e:
        print("no write", path, e.errno)
open("mine.txt", "w").write("ok")
"""
    argv = [str(helper) if part == str(HELPER) else part for part in confinement.command([python, "-c", script], sandbox)]
    argv[0] = python  # the helper itself, run by the system Python too
    env = base_environment(sandbox)
    try:
        result = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
                                capture_output=True, text=True, timeout=120, env=env, cwd=sandbox)
    finally:
        shutil.rmtree(helper_dir, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"2000 {sandbox} ")
    assert "READ /etc/shadow" not in result.stdout and "WROTE" not in result.stdout
    assert "no read " + str(victim) in result.stdout  # outside the sandbox nothing is even visible
    assert victim.read_text() == "untouched\n" and (sandbox / "mine.txt").read_text() == "ok"


def _push_script(device: adbutils.AdbDevice, name: str, body: str) -> None:
    device.sync.push(f"#!{sys.executable}\n{body}".encode(), f"/data/local/tmp/{name}", mode=0o755)


def test_confinement_is_in_the_facts(confined):
    device, _, who = confined
    facts = device.shell("getprop ro.lab.confinement")
    expected = {"root": "namespaces(mount,pid),uid=2000", "nobody": "userns(user,mount,pid),uid=2000"}.get(who)
    if expected:
        assert facts.startswith(expected), facts
    assert "rlimits(cpu=600s,as=8GiB,fsize=4GiB,nproc=256)" in facts


def test_a_pushed_script_cannot_read_secrets_or_write_outside(confined, outside):
    device, root, _ = confined
    victim = outside / "victim.txt"
    _push_script(device, "evil", f"""
import os
for path in ("/etc/shadow", {str(victim)!r}):
    try:
        print("READ", path, open(path).read()[:20])
    except OSError as e:
        print("no read", path, e.errno)
for path in ({str(victim)!r}, {str(outside / "new.txt")!r}, "/tmp/evil.txt", "/etc/evil", "/usr/evil"):
    try:
        open(path, "w").write("pwned")
        print("WROTE", path)
    except OSError as e:
        print("no write", path, e.errno)
open("mine.txt", "w").write("ok")
print("done")
""")
    result = device.shell2("cd /data/local/tmp && ./evil", v2=True)
    assert result.returncode == 0 and result.stdout.endswith("done\n"), result
    assert "READ /etc/shadow" not in result.stdout and "WROTE" not in result.stdout
    assert victim.read_text() == "untouched\n" and not (outside / "new.txt").exists()
    assert not Path("/tmp/evil.txt").exists() and not Path("/etc/evil").exists()
    assert (root / "mine.txt").read_text() == "ok"  # the sandbox itself is writable


def test_pythonpath_and_ld_preload_are_refused(confined, outside):
    device, _, _ = confined
    device.sync.push(MODEL, "/data/local/tmp/add.tflite")
    for prefix in ("PYTHONPATH=/data/local/tmp", "LD_PRELOAD=/data/local/tmp/x.so", "PYTHONHOME=/data/local/tmp",
                   "PYTHONSTARTUP=/data/local/tmp/s.py"):
        result = device.shell2(f"{prefix} benchmark_model --graph=/data/local/tmp/add.tflite", v2=True)
        assert result.returncode == 1, prefix
        assert "not passed to programs on the emulated device" in result.stderr


def test_sitecustomize_and_a_fake_agent_in_the_sandbox_are_never_imported(confined, outside):
    device, _, _ = confined
    marker = outside / f"imported-{uuid.uuid4().hex}"
    payload = f"open({str(marker)!r}, 'w').write('pwned')\nprint('PWNED')\n"
    device.sync.push(payload.encode(), "/data/local/tmp/sitecustomize.py")
    device.sync.push(payload.encode(), "/data/local/tmp/usercustomize.py")
    device.sync.push(payload.encode(), "/data/local/tmp/device_agent/__init__.py")
    device.sync.push(payload.encode(), "/data/local/tmp/device_agent/__main__.py")
    device.sync.push(MODEL, "/data/local/tmp/add.tflite")
    result = device.shell2("cd /data/local/tmp && benchmark_model --graph=add.tflite --num_runs=3 --warmup_runs=1",
                           v2=True)
    assert result.returncode == 0, result
    assert "PWNED" not in result.output and not marker.exists()
    assert "Graph: [add.tflite]" in result.output or "Graph: [/data/local/tmp/add.tflite]" in result.output


def test_the_native_benchmark_model_still_runs(confined):
    from device_agent.output import parse

    device, _, _ = confined
    device.sync.push(MODEL, "/data/local/tmp/add.tflite")
    result = device.shell2(["benchmark_model", "--graph=/data/local/tmp/add.tflite", "--num_runs=10",
                            "--warmup_runs=1"], v2=True)
    assert result.returncode == 0, result.stderr
    assert parse(result.output).runs.count >= 10


@pytest.fixture
def limited(emulated_device_factory):
    return emulated_device_factory(extra_args=("--cpu-seconds", "4", "--processes", "24", "--memory", "512M"))


def test_a_fork_bomb_is_stopped_by_its_limits(limited):
    device = limited.device
    _push_script(device, "bomb", """
import os, sys
print("start", flush=True)
while True:
    try:
        os.fork()
    except OSError:
        pass
""")
    result = device.shell2("/data/local/tmp/bomb", v2=True)
    assert result.returncode == 128 + 24, result  # killed for CPU time (SIGXCPU's status)
    assert "CPU time limit of 4 s reached" in result.stderr
    assert host_pids(str(limited.root.resolve() / "bomb")) == []  # every fork died with the command
    assert device.shell("echo alive") == "alive"


def test_an_allocation_loop_is_stopped_by_its_limits(limited):
    device = limited.device
    _push_script(device, "hog", """
chunks = []
while True:
    chunks.append(bytearray(32 * 1024 * 1024))
""")
    result = device.shell2("/data/local/tmp/hog", v2=True)
    assert result.returncode == 1 and "MemoryError" in result.stderr, result


def test_dollar_dollar_is_not_the_hosts_pid(emulated_device):
    value = int(emulated_device.device.shell("echo $$"))
    assert value != emulated_device.process.pid and value != os.getpid()
