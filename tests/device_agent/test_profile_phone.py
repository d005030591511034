"""Phone profiles in the emulated device: the shipped profiles load and name their sources, the
shell answers as the phone (getprop, /proc/cpuinfo, cpufreq, thermal zones, dumpsys, cmd power,
taskset), and the thermal model heats, throttles with hysteresis, cools and pins (a fake clock:
no sleeps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_agent.emulator.device import Device
from device_agent.emulator.phone import HYSTERESIS_C, Phone
from device_agent.facts import format_cpu_list, parse_cpu_list
from device_agent.emulator.sandbox import Sandbox
from device_agent.emulator.shell import Shell
from device_agent.emulator.shio import BufferSink
from device_agent.errors import AgentError
from device_agent.profiles import load_profile, profile_names
from host.devices.state import parse_battery

PROFILES = ["galaxy_a50", "galaxy_j2_core", "pixel4"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class PhoneShell:
    """A profiled device's shell in-process, on a clock the test moves."""

    def __init__(self, tmp_path: Path, name: str, **options: float) -> None:
        self.clock = Clock()
        self.phone = Phone(load_profile(name), tmp_path / "state", clock=self.clock, **options)
        props = {**self.phone.profile.props, "ro.lab.emulated": "1"}
        self.device = Device(Sandbox(tmp_path / "root", overlay=self.phone), props, phone=self.phone)
        (tmp_path / "root").mkdir(parents=True, exist_ok=True)

    def __call__(self, text: str) -> tuple[int, str, str]:
        out, err = BufferSink(), BufferSink()
        status = Shell(self.device, out, err).run(text)
        return status, out.getvalue().decode(), err.getvalue().decode()

    def out(self, text: str) -> str:
        status, out, err = self(text)
        assert status == 0, err
        return out


def test_shipped_profiles_load_and_name_their_sources() -> None:
    assert profile_names() == PROFILES
    for name in PROFILES:
        profile = load_profile(name)
        assert profile.sources and all(len(s) > 20 for s in profile.sources)
        assert profile.props["ro.product.model"] and profile.sdk >= 27
        assert sorted(c for cluster in profile.clusters for c in cluster.cpus) == list(range(profile.cpu_count))
    assert load_profile("pixel4").sdk == 33 and load_profile("galaxy_a50").sdk == 28
    assert load_profile("galaxy_j2_core").props["ro.product.cpu.abilist"] == "armeabi-v7a,armeabi"
    assert [len(c.cpus) for c in load_profile("pixel4").clusters] == [4, 3, 1]


def test_unknown_and_broken_profiles(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="no phone profile 'nokia'.*pixel4"):
        load_profile("nokia")
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x"}')
    with pytest.raises(AgentError, match="broken.json is not valid: missing key"):
        load_profile(str(broken))


def test_cpu_lists() -> None:
    assert format_cpu_list([7, 4, 5, 6, 0]) == "0,4-7" and parse_cpu_list("0,4-7") == [0, 4, 5, 6, 7]


@pytest.mark.parametrize("name", PROFILES)
def test_the_shell_answers_as_the_phone(tmp_path: Path, name: str) -> None:
    run = PhoneShell(tmp_path, name)
    profile = run.phone.profile
    assert run.out("getprop ro.product.model").strip() == profile.props["ro.product.model"]
    assert run.out("nproc").strip() == str(profile.cpu_count)
    assert run.out("cat /sys/devices/system/cpu/possible").strip() == f"0-{profile.cpu_count - 1}"
    cpuinfo = run.out("cat /proc/cpuinfo")
    assert cpuinfo.count("processor\t:") == profile.cpu_count and profile.cpuinfo_hardware in cpuinfo
    for cluster in profile.clusters:
        cpu = cluster.cpus[-1]
        base = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
        assert int(run.out(f"cat {base}/cpuinfo_max_freq")) == cluster.max_khz
        assert int(run.out(f"cat {base}/scaling_max_freq")) == cluster.max_khz  # cool: no cap
        assert int(run.out(f"cat {base}/scaling_cur_freq")) == cluster.freqs_khz[0]  # idle
        assert run.out(f"cat {base}/scaling_governor").strip() == cluster.governor
        assert run.out(f"cat {base}/scaling_available_frequencies").split() == [str(f) for f in cluster.freqs_khz]
    zones = run.out("echo /sys/class/thermal/thermal_zone*").split()
    assert len(zones) == len(profile.thermal.zones)
    assert [run.out(f"cat {z}/type").strip() for z in zones] == [z.type for z in profile.thermal.zones]
    assert run.out(f"cat {zones[0]}/trip_point_0_type").strip() == "passive"
    level, temp, charging = parse_battery(run.out("dumpsys battery"))
    assert (level, charging) == (profile.battery["level"], True) and temp == pytest.approx(30.0)
    thermalservice = run.out("dumpsys thermalservice")
    if "thermalservice" in profile.services:  # Android 10+
        assert "Current temperatures from HAL:" in thermalservice and f"mName={profile.thermal.zones[0].type}" in thermalservice
    else:
        assert thermalservice == "Can't find service: thermalservice\n"


def test_fixed_performance_mode_only_from_android_11(tmp_path: Path) -> None:
    pixel = PhoneShell(tmp_path / "p", "pixel4")
    assert pixel("cmd power set-fixed-performance-mode-enabled true") == (0, "", "")
    prime = "/sys/devices/system/cpu/cpu7/cpufreq"
    assert int(pixel.out(f"cat {prime}/scaling_max_freq")) == 1612800  # pinned
    assert int(pixel.out(f"cat {prime}/scaling_cur_freq")) == 1612800
    assert "lab emulated phone: fixed-performance mode on" in pixel.out("dumpsys power")
    assert pixel("cmd power set-fixed-performance-mode-enabled false")[0] == 0
    assert int(pixel.out(f"cat {prime}/scaling_max_freq")) == 2841600
    assert pixel("cmd power set-fixed-performance-mode-enabled maybe")[0] == 255
    a50 = PhoneShell(tmp_path / "a", "galaxy_a50")
    status, _, err = a50("cmd power set-fixed-performance-mode-enabled true")
    assert status == 255 and err == "Unknown command: set-fixed-performance-mode-enabled\n"


def test_taskset_checks_the_mask_against_the_topology(tmp_path: Path) -> None:
    run = PhoneShell(tmp_path, "pixel4")
    assert run.out("taskset 80 nproc").strip() == "1"
    assert run.out("taskset f0 nproc").strip() == "4"
    assert run("taskset 100 nproc") == (1, "", "taskset: sched_setaffinity: Invalid argument\n")
    assert run("taskset zz nproc")[2] == "taskset: bad mask 'zz'\n"


def test_a_plain_emulated_device_has_no_phone_commands(tmp_path: Path) -> None:
    device = Device(Sandbox(tmp_path), {"ro.product.model": "x"})
    out, err = BufferSink(), BufferSink()
    for command in ("dumpsys battery", "cmd power", "taskset 1 true"):
        assert Shell(device, out, err).run(command) == 127
    assert b"dumpsys: inaccessible or not found" in err.getvalue()


def test_heating_throttles_the_big_clusters_and_cooling_gives_the_caps_back(tmp_path: Path) -> None:
    run = PhoneShell(tmp_path, "pixel4")
    phone, clock = run.phone, run.clock
    thermal = phone.profile.thermal
    prime = "/sys/devices/system/cpu/cpu7/cpufreq/scaling_max_freq"
    little = "/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq"
    with phone.running(None) as cluster:
        assert cluster.name == "prime"  # a task the scheduler may place anywhere goes to the fastest core
        clock.now += 10.0
        assert thermal.ambient_c < phone.temperature() < thermal.trip_c
        assert int(run.out(f"cat {prime}")) == 2841600
        assert int(run.out("cat /sys/devices/system/cpu/cpu7/cpufreq/scaling_cur_freq")) == 2841600  # busy
        clock.now += 60.0
        hot = phone.temperature()
        assert hot >= thermal.trip_c - 2  # settles around the trip point: capped, it heats less
        assert int(run.out(f"cat {prime}")) < 2841600
        assert int(run.out(f"cat {little}")) == 1785600  # the little cluster does not throttle
        assert "mStatus=3" in run.out("dumpsys thermalservice")
    clock.now += 0.5  # idle, barely cooler: the cap stays (hysteresis)
    assert phone.temperature() > thermal.trip_c - HYSTERESIS_C and int(run.out(f"cat {prime}")) < 2841600
    clock.now += 120.0
    assert phone.temperature() < thermal.ambient_c + 1
    assert int(run.out(f"cat {prime}")) == 2841600


def test_fixed_performance_mode_warms_less_and_never_throttles(tmp_path: Path) -> None:
    run = PhoneShell(tmp_path, "pixel4")
    phone, clock = run.phone, run.clock
    phone.set_fixed_performance(True)
    with phone.running(None):
        clock.now += 600.0
        assert phone.temperature() < phone.profile.thermal.trip_c
    assert int(run.out("cat /sys/devices/system/cpu/cpu7/cpufreq/scaling_max_freq")) == 1612800


def test_little_cores_heat_less_than_big_ones(tmp_path: Path) -> None:
    big, little = PhoneShell(tmp_path / "b", "pixel4"), PhoneShell(tmp_path / "l", "pixel4")
    with big.phone.running({7}), little.phone.running({0, 1, 2, 3}) as cluster:
        assert cluster.name == "little"
        big.clock.now = little.clock.now = 10.0
        assert little.phone.temperature() < big.phone.temperature() - 5


def test_initial_temperature(tmp_path: Path) -> None:
    run = PhoneShell(tmp_path, "galaxy_a50", initial_temp_c=80.0)
    assert run.out("cat /sys/class/thermal/thermal_zone0/temp").strip() == "80000"
