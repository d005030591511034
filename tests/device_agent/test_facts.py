"""Device facts from /proc and /sys: this machine for real, and folders laid out like a phone's."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from device_agent.facts import CoreFacts, MachineFacts, ThermalZone, collect, main

ARM_CPUINFO = """\
Processor\t: AArch64 Processor rev 13 (aarch64)
processor\t: 0
BogoMIPS\t: 38.40
CPU implementer\t: 0x41
CPU part\t: 0xd05

processor\t: 1
CPU implementer\t: 0x41
CPU part\t: 0xd05

processor\t: 2
CPU implementer\t: 0x41
CPU part\t: 0xd0b

processor\t: 3
CPU implementer\t: 0x51
CPU part\t: 0x804

Hardware\t: Qualcomm Technologies, Inc SM8150
"""

MEMINFO = "MemTotal:        7729152 kB\nMemFree:          123456 kB\nMemAvailable:    3141592 kB\n"


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def phone(tmp_path: Path) -> Path:
    """A phone-like tree with the gaps real phones have: an offline core, unreadable files, odd units."""
    write(tmp_path, "proc/cpuinfo", ARM_CPUINFO)
    write(tmp_path, "proc/meminfo", MEMINFO)
    cpu = "sys/devices/system/cpu"
    write(tmp_path, f"{cpu}/present", "0-3\n")
    write(tmp_path, f"{cpu}/online", "0-1,3\n")
    for n, (max_khz, cur_khz, governor) in enumerate(
        [("1785600", "576000", "schedutil"), ("1785600", "1785600", "performance")]
    ):
        write(tmp_path, f"{cpu}/cpu{n}/cpufreq/cpuinfo_max_freq", max_khz + "\n")
        write(tmp_path, f"{cpu}/cpu{n}/cpufreq/scaling_cur_freq", cur_khz + "\n")
        write(tmp_path, f"{cpu}/cpu{n}/cpufreq/scaling_governor", governor + "\n")
    # cpu2: offline, no cpufreq at all. cpu3: only the scaling_* files, one of them garbage.
    write(tmp_path, f"{cpu}/cpu3/cpufreq/scaling_max_freq", "2841600\n")
    write(tmp_path, f"{cpu}/cpu3/cpufreq/scaling_cur_freq", "n/a\n")
    thermal = "sys/class/thermal"
    write(tmp_path, f"{thermal}/thermal_zone0/type", "cpu-0-0-usr\n")
    write(tmp_path, f"{thermal}/thermal_zone0/temp", "45300\n")
    write(tmp_path, f"{thermal}/thermal_zone1/type", "battery\n")  # temp unreadable
    write(tmp_path, f"{thermal}/thermal_zone2/temp", "38\n")  # whole degrees, no type
    write(tmp_path, f"{thermal}/thermal_zone10/type", "skin-therm\n")
    write(tmp_path, f"{thermal}/thermal_zone10/temp", "-2500\n")
    write(tmp_path, f"{thermal}/cooling_device0/type", "fan\n")  # not a zone
    return tmp_path


def test_phone_layout(phone: Path) -> None:
    assert collect(phone) == MachineFacts(
        cpu_model="Arm Cortex-A55 + Arm Cortex-A76 + implementer 0x51 part 0x804",
        cores=4,
        per_core=(
            CoreFacts(cpu=0, online=True, max_freq_khz=1785600, cur_freq_khz=576000, governor="schedutil"),
            CoreFacts(cpu=1, online=True, max_freq_khz=1785600, cur_freq_khz=1785600, governor="performance"),
            CoreFacts(cpu=2, online=False, max_freq_khz=None, cur_freq_khz=None, governor=None),
            CoreFacts(cpu=3, online=True, max_freq_khz=2841600, cur_freq_khz=None, governor=None),
        ),
        thermal_zones=(
            ThermalZone(zone="thermal_zone0", type="cpu-0-0-usr", temp_c=45.3),
            ThermalZone(zone="thermal_zone1", type="battery", temp_c=None),
            ThermalZone(zone="thermal_zone2", type=None, temp_c=38.0),
            ThermalZone(zone="thermal_zone10", type="skin-therm", temp_c=-2.5),
        ),
        mem_total_kb=7729152,
        mem_available_kb=3141592,
    )


def test_empty_root_is_all_unknown(tmp_path: Path) -> None:
    assert collect(tmp_path) == MachineFacts(
        cpu_model=None, cores=None, per_core=(), thermal_zones=(), mem_total_kb=None, mem_available_kb=None
    )


def test_garbage_files_are_unknown(tmp_path: Path) -> None:
    write(tmp_path, "proc/cpuinfo", "\x00\x01 not cpuinfo\n")
    write(tmp_path, "proc/meminfo", "MemTotal: lots\n")
    write(tmp_path, "sys/devices/system/cpu/present", "zero to three\n")
    write(tmp_path, "sys/devices/system/cpu/online", "0-x\n")
    facts = collect(tmp_path)
    assert (facts.cpu_model, facts.cores, facts.mem_total_kb) == (None, None, None)


def test_cores_without_present_file(tmp_path: Path) -> None:
    """Older kernels: count the cpuN folders, else the processor blocks."""
    for n in (0, 1, 2):
        (tmp_path / f"sys/devices/system/cpu/cpu{n}").mkdir(parents=True)
    (tmp_path / "sys/devices/system/cpu/cpufreq").mkdir()  # not a core
    assert collect(tmp_path).cores == 3
    write(tmp_path / "other", "proc/cpuinfo", "processor\t: 0\nmodel name\t: Some CPU\n\nprocessor\t: 1\nmodel name\t: Some CPU\n")
    other = collect(tmp_path / "other")
    assert (other.cores, other.cpu_model, [c.online for c in other.per_core]) == (2, "Some CPU", [None, None])


def test_this_machine() -> None:
    """Whatever this machine has, read for real; checked against the files read independently."""
    facts = collect()
    assert facts.cores is not None and facts.cores == len(facts.per_core) >= 1
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    assert facts.mem_total_kb == int(meminfo["MemTotal"].split()[0])
    assert facts.mem_available_kb is not None and 0 < facts.mem_available_kb <= facts.mem_total_kb
    cpuinfo = Path("/proc/cpuinfo").read_text()
    if "model name" in cpuinfo:
        assert facts.cpu_model is not None and facts.cpu_model in cpuinfo
    for core in facts.per_core:
        governor = Path(f"/sys/devices/system/cpu/cpu{core.cpu}/cpufreq/scaling_governor")
        assert core.governor == (governor.read_text().strip() if governor.exists() else None)
    zones = sorted(Path("/sys/class/thermal").glob("thermal_zone*")) if Path("/sys/class/thermal").exists() else []
    assert len(facts.thermal_zones) == len(zones)


def test_cli_json_on_this_machine(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "device_agent", "facts", "--json"],
        capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    data = json.loads(proc.stdout)
    assert set(data) == {"cpu_model", "cores", "per_core", "thermal_zones", "mem_total_kb", "mem_available_kb"}
    assert data["cores"] == len(data["per_core"]) and data["mem_total_kb"] > 0


def test_cli_with_root(phone: Path) -> None:
    out = io.StringIO()
    assert main(["--json", f"--root={phone}"], out=out) == 0
    assert json.loads(out.getvalue()) == collect(phone).to_dict()
    out = io.StringIO()
    assert main(["--root", str(phone)], out=out) == 0
    text = out.getvalue()
    assert "cpu2: offline, max unknown, cur unknown, governor unknown" in text
    assert "thermal_zone1: battery unknown" in text


def test_cli_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--verbose"]) == 2
    assert "unknown argument '--verbose'" in capsys.readouterr().err
    assert main(["--root", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["--root"]) == 2
