"""``python -m device_agent facts [--json] [--root DIR]``: this machine's CPU, clocks, temperatures, memory.

Read from /proc and /sys only, so it works the same on a phone (through ``adb shell``), a
Linux board, a container or the emulated device. Any file that is missing or unreadable (no
cpufreq in a VM, no thermal zones in a container, SELinux on a phone) leaves its fact unknown
(``None``, ``null`` in JSON); nothing here raises for a missing file. Units are in the names:
``_khz`` (as cpufreq prints), ``_c`` degrees Celsius, ``_kb`` kibibytes (as /proc/meminfo prints).
"""

from __future__ import annotations

from collections.abc import Iterable

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = ["CoreFacts", "ThermalZone", "MachineFacts", "collect", "render", "main", "parse_cpu_list", "format_cpu_list"]


@dataclass(frozen=True)
class CoreFacts:
    cpu: int  # the N of /sys/devices/system/cpu/cpuN
    online: bool | None
    max_freq_khz: int | None  # cpuinfo_max_freq: what the hardware allows
    cur_freq_khz: int | None
    governor: str | None


@dataclass(frozen=True)
class ThermalZone:
    zone: str  # thermal_zoneN
    type: str | None  # e.g. "x86_pkg_temp", "cpu-0-0-usr", "battery"
    temp_c: float | None


@dataclass(frozen=True)
class MachineFacts:
    cpu_model: str | None
    cores: int | None
    per_core: tuple[CoreFacts, ...]
    thermal_zones: tuple[ThermalZone, ...]
    mem_total_kb: int | None
    mem_available_kb: int | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: lists for the per-core and thermal tuples, None for unknown."""
        data = dataclasses.asdict(self)
        data["per_core"] = list(data["per_core"])
        data["thermal_zones"] = list(data["thermal_zones"])
        return data


# Arm's CPU part numbers (/proc/cpuinfo "CPU part" with "CPU implementer : 0x41"): arm64 kernels
# print no "model name", so this is how a phone's cores get a name.
_ARM_PARTS = {
    0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57",
    0xD08: "Cortex-A72", 0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD40: "Neoverse-V1", 0xD41: "Cortex-A78",
    0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710", 0xD48: "Cortex-X2",
    0xD49: "Neoverse-N2", 0xD4D: "Cortex-A715", 0xD4E: "Cortex-X3", 0xD80: "Cortex-A520",
    0xD81: "Cortex-A720", 0xD82: "Cortex-X4",
}  # fmt: skip
_CPUINFO_LINE = re.compile(r"^(?P<key>[^:\t]+?)\s*:\s*(?P<value>.*?)\s*$")
_MEMINFO_LINE = re.compile(r"^(?P<key>\w+):\s+(?P<kb>\d+)\s*kB\s*$")
_ZONE = re.compile(r"^thermal_zone(?P<n>\d+)$")


def _read(path: Path) -> str | None:
    """A /proc or /sys file's text, or None if it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:  # missing, permission denied, EINVAL/ENODATA from a driver
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def parse_cpu_list(text: str) -> list[int]:
    """The kernel's CPU list form (/sys/devices/system/cpu/present, taskset's argument):
    ``0,4-7`` → ``[0, 4, 5, 6, 7]``, sorted, each once.

    Raises:
        ValueError: not a list of numbers and upward ranges.
    """
    cpus: set[int] = set()
    for part in text.strip().split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"{part!r} is not a CPU number or range")
        first, last = int(low), int(high or low)
        if last < first:
            raise ValueError(f"{part}: a range must go upwards")
        cpus.update(range(first, last + 1))
    return sorted(cpus)


def format_cpu_list(cpus: Iterable[int]) -> str:
    """``[4, 5, 6, 7, 0]`` → ``0,4-7``: the kernel's CPU list form."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def _cpu_list(text: str | None) -> list[int] | None:
    """A CPU list file's CPUs, or None when it is missing or unreadable."""
    try:
        return parse_cpu_list(text) if text else None
    except ValueError:
        return None


def _cpuinfo(text: str | None) -> tuple[list[dict[str, str]], dict[str, str]]:
    """/proc/cpuinfo → (one dict per "processor" block, the keys outside any block)."""
    blocks: list[dict[str, str]] = []
    general: dict[str, str] = {}
    for line in (text or "").splitlines():
        match = _CPUINFO_LINE.match(line)
        if not match:
            continue
        key, value = match["key"].strip(), match["value"]
        if key == "processor":
            blocks.append({})
        elif blocks and key not in ("Hardware", "Revision", "Serial", "Model"):
            blocks[-1][key] = value
        else:
            general[key] = value
    return blocks, general


def _first(key: str, blocks: list[dict[str, str]], general: dict[str, str]) -> str | None:
    return next((block[key] for block in blocks if block.get(key)), None) or general.get(key) or None


def _cpu_model(blocks: list[dict[str, str]], general: dict[str, str]) -> str | None:
    """x86 "model name", MIPS "cpu model", RISC-V "uarch", Arm part names, then the SoC ("Hardware")."""
    for key in ("model name", "cpu model", "uarch"):
        if value := _first(key, blocks, general):
            return value
    names: list[str] = []
    for block in blocks:
        part, implementer = _int_hex(block.get("CPU part")), _int_hex(block.get("CPU implementer"))
        if part is None:
            continue
        name = _ARM_PARTS.get(part) if implementer == 0x41 else None
        name = f"Arm {name}" if name else f"implementer {block.get('CPU implementer')} part {block.get('CPU part')}"
        if name not in names:
            names.append(name)
    if names:
        return " + ".join(names)
    return general.get("Hardware") or _first("Processor", blocks, general)


def _int_hex(text: str | None) -> int | None:
    try:
        return int(text, 0) if text else None
    except ValueError:
        return None


def _cores(root: Path, blocks: list[dict[str, str]]) -> list[int] | None:
    cpu_dir = root / "sys/devices/system/cpu"
    present = _cpu_list(_read(cpu_dir / "present"))
    if present is not None:
        return present
    try:
        listed = sorted(int(p.name[3:]) for p in cpu_dir.iterdir() if re.fullmatch(r"cpu\d+", p.name))
    except OSError:
        listed = []
    if listed:
        return listed
    return list(range(len(blocks))) if blocks else None


def _core(root: Path, cpu: int, online: list[int] | None) -> CoreFacts:
    freq = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
    max_khz = _int(_read(freq / "cpuinfo_max_freq"))
    cur_khz = _int(_read(freq / "scaling_cur_freq"))
    return CoreFacts(
        cpu=cpu,
        online=None if online is None else cpu in online,
        max_freq_khz=max_khz if max_khz is not None else _int(_read(freq / "scaling_max_freq")),
        cur_freq_khz=cur_khz if cur_khz is not None else _int(_read(freq / "cpuinfo_cur_freq")),
        governor=_read(freq / "scaling_governor") or None,
    )


def _temp_c(text: str | None) -> float | None:
    """A thermal zone's ``temp``: millidegrees by the kernel's ABI; some phone drivers print degrees."""
    raw = _int(text)
    if raw is None:
        return None
    return raw / 1000.0 if abs(raw) >= 1000 else float(raw)


def _thermal_zones(root: Path) -> tuple[ThermalZone, ...]:
    base = root / "sys/class/thermal"
    try:
        zones = sorted((int(m["n"]), p) for p in base.iterdir() if (m := _ZONE.match(p.name)))
    except OSError:
        return ()
    return tuple(
        ThermalZone(zone=path.name, type=_read(path / "type") or None, temp_c=_temp_c(_read(path / "temp")))
        for _, path in zones
    )


def _meminfo(root: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in (_read(root / "proc/meminfo") or "").splitlines():
        if match := _MEMINFO_LINE.match(line):
            values[match["key"]] = int(match["kb"])
    return values


def collect(root: Path = Path("/")) -> MachineFacts:
    """Read the facts under ``root`` (``/`` on a device; a folder laid out like it in tests)."""
    blocks, general = _cpuinfo(_read(root / "proc/cpuinfo"))
    cpus = _cores(root, blocks)
    online = _cpu_list(_read(root / "sys/devices/system/cpu/online"))
    memory = _meminfo(root)
    return MachineFacts(
        cpu_model=_cpu_model(blocks, general),
        cores=len(cpus) if cpus else None,
        per_core=tuple(_core(root, cpu, online) for cpu in cpus or ()),
        thermal_zones=_thermal_zones(root),
        mem_total_kb=memory.get("MemTotal"),
        mem_available_kb=memory.get("MemAvailable"),
    )


def render(facts: MachineFacts) -> str:
    """Plain text, one fact a line; ``unknown`` where a file was missing."""

    def show(value: object, unit: str = "") -> str:
        return "unknown" if value is None else f"{value}{unit}"

    lines = [
        f"cpu model: {show(facts.cpu_model)}",
        f"cores: {show(facts.cores)}",
        f"memory: total {show(facts.mem_total_kb, ' kB')}, available {show(facts.mem_available_kb, ' kB')}",
    ]
    for core in facts.per_core:
        online = "unknown" if core.online is None else ("online" if core.online else "offline")
        lines.append(
            f"cpu{core.cpu}: {online}, max {show(core.max_freq_khz, ' kHz')}, "
            f"cur {show(core.cur_freq_khz, ' kHz')}, governor {show(core.governor)}"
        )
    for zone in facts.thermal_zones:
        lines.append(f"{zone.zone}: {show(zone.type)} {show(zone.temp_c, ' C')}")
    if not facts.thermal_zones:
        lines.append("thermal zones: none readable")
    return "\n".join(lines) + "\n"


_USAGE = "usage: python -m device_agent facts [--json] [--root DIR]\n"


def main(argv: list[str], out: TextIO | None = None) -> int:
    """Print the facts (text, or JSON with ``--json``). Exit status 0, or 2 for a bad argument."""
    stream = out if out is not None else sys.stdout
    as_json, root = False, Path("/")
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--json":
            as_json = True
        elif arg in ("-h", "--help"):
            stream.write(_USAGE)
            return 0
        elif arg == "--root" and args:
            root = Path(args.pop(0))
        elif arg.startswith("--root="):
            root = Path(arg.split("=", 1)[1])
        else:
            sys.stderr.write(f"facts: unknown argument {arg!r}\n{_USAGE}")
            return 2
    if not root.is_dir():
        sys.stderr.write(f"facts: --root {str(root)!r} is not a directory\n")
        return 2
    facts = collect(root)
    stream.write(json.dumps(facts.to_dict(), indent=2) + "\n" if as_json else render(facts))
    return 0
