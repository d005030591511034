"""A captured /proc + /sys tree for an emulated device (``--facts-root``): known temperatures,
governors and frequencies, so state snapshots can be checked value by value."""

from __future__ import annotations

import os
from pathlib import Path


def write_facts_tree(root: Path, zones: dict[str, str], cpus: int | None = None) -> Path:
    """Thermal zones ``{type: raw temp}`` and ``cpus`` cores (default: as many as this machine's
    ``nproc``) with governor schedutil, cur 1200000 + N kHz and max 2400000 kHz."""
    cores = cpus if cpus is not None else len(os.sched_getaffinity(0))
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Test SoC 9000\n")
    for index, (zone_type, temp) in enumerate(zones.items()):
        zone = root / "sys" / "class" / "thermal" / f"thermal_zone{index}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(zone_type + "\n")
        (zone / "temp").write_text(temp + "\n")
    for core in range(cores):
        freq = root / "sys" / "devices" / "system" / "cpu" / f"cpu{core}" / "cpufreq"
        freq.mkdir(parents=True)
        (freq / "scaling_governor").write_text("schedutil\n")
        (freq / "scaling_cur_freq").write_text(f"{1200000 + core}\n")
        (freq / "cpuinfo_max_freq").write_text("2400000\n")
    return root
