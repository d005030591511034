"""The emulated device's system properties (``getprop``) and its CNXN banner, in one table.

The values describe the real machine the device runs on: its ABI comes from
``platform.machine()`` and ``ro.soc.model`` from /proc/cpuinfo. A later variant (an arm64 userland
under QEMU) overrides ``abi``, ``soc_model`` and ``emulation`` through :func:`device_props`.
"""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["DEFAULT_MODEL", "FEATURES", "abi_for_machine", "cpuinfo_fields", "device_props", "banner"]

DEFAULT_MODEL = "lab emulated device"
# Only what this device implements: the shell v2 protocol, the `cmd` command (a phone profile's
# `cmd power`; answered with 127, "not found", on the plain device, as on devices without it) and
# STA2/LST2 in sync.
FEATURES = ("shell_v2", "cmd", "stat_v2")

_ABIS = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64-v8a", "arm64": "arm64-v8a",
         "i386": "x86", "i686": "x86", "armv7l": "armeabi-v7a", "armv8l": "armeabi-v7a"}
_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}


def abi_for_machine(machine: str) -> str:
    """Android's ABI name for a ``platform.machine()`` value (unknown machines keep their name)."""
    return _ABIS.get(machine.lower(), machine.lower())


def cpuinfo_fields(text: str) -> dict[str, str]:
    """The first value of each ``key : value`` field of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def _read_cpuinfo(facts_root: Path) -> dict[str, str]:
    try:
        return cpuinfo_fields((facts_root / "proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return {}


def device_props(
    model: str | None = None,
    *,
    facts_root: Path = Path("/"),
    abi: str | None = None,
    soc_model: str | None = None,
    soc_manufacturer: str | None = None,
    emulation: str = "native",
) -> dict[str, str]:
    """Every property ``getprop`` lists, keyed by name."""
    cpu = _read_cpuinfo(facts_root)
    abi = abi or abi_for_machine(platform.machine())
    soc_model = soc_model or cpu.get("model name") or cpu.get("Hardware") or platform.processor() or "unknown"
    soc_manufacturer = soc_manufacturer or _VENDORS.get(cpu.get("vendor_id", ""), cpu.get("vendor_id") or "unknown")
    name = "lab_emulated"
    return {
        "ro.build.version.release": "14",
        "ro.build.version.sdk": "34",
        "ro.hardware": "lab",
        "ro.lab.emulated": "1",
        "ro.lab.emulation": emulation,
        "ro.product.cpu.abi": abi,
        "ro.product.cpu.abilist": abi,
        "ro.product.device": name,
        "ro.product.manufacturer": "lab",
        "ro.product.model": model or DEFAULT_MODEL,
        "ro.product.name": name,
        "ro.soc.manufacturer": soc_manufacturer,
        "ro.soc.model": soc_model,
    }


def banner(props: dict[str, str], features: tuple[str, ...] = FEATURES) -> bytes:
    """The device's CNXN payload: ``device::ro.product.name=…;…;features=…``."""
    keys = ("ro.product.name", "ro.product.model", "ro.product.device")
    fields = "".join(f"{key}={props[key].replace(';', ',')};" for key in keys)
    return f"device::{fields}features={','.join(features)}".encode()
