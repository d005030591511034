"""What a device is: model, SoC, ABIs, Android version, cores and their maximum frequencies.

Read with two shell round trips (properties, then per-core files), so listing devices stays fast.
"""

from __future__ import annotations

from host.devices.shell import DeviceShell, run_sections
from host.records import DeviceFacts, DeviceKind

__all__ = ["read_facts", "device_kind", "cpu_path"]

_PROPS = (
    "ro.product.model",
    "ro.product.manufacturer",
    "ro.soc.model",
    "ro.board.platform",
    "ro.hardware",
    "ro.product.cpu.abilist",
    "ro.product.cpu.abi",
    "ro.build.version.sdk",
    "ro.build.version.release",
    "ro.lab.emulated",
    "ro.lab.emulation",
    "ro.kernel.qemu",
    "ro.boot.qemu",
)
_EMULATOR_HARDWARE = {"goldfish", "ranchu", "cutf_cvm", "vsoc_x86_64", "vsoc_x86"}


def cpu_path(core: int, name: str) -> str:
    """``/sys/devices/system/cpu/cpuN/cpufreq/NAME``."""
    return f"/sys/devices/system/cpu/cpu{core}/cpufreq/{name}"


def device_kind(props: dict[str, str]) -> DeviceKind:
    """emulated (the lab's device agent: ro.lab.emulated=1), emulator (Android's), or physical."""
    if props.get("ro.lab.emulated") == "1":
        return "emulated"
    if "1" in (props.get("ro.kernel.qemu"), props.get("ro.boot.qemu")) or props.get("ro.hardware") in _EMULATOR_HARDWARE:
        return "emulator"
    return "physical"


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").split()[0])
    except (ValueError, IndexError):
        return None


def read_facts(shell: DeviceShell, timeout: float = 30.0) -> DeviceFacts:
    """The device's facts; a property or file the device does not have is left unknown (None).

    Raises:
        DeviceGoneError, ShellTimeoutError: the device stopped answering.
    """
    values = run_sections(shell, [["getprop", key] for key in _PROPS] + [["nproc"]], timeout=timeout)
    props = {key: value.strip() for key, value in zip(_PROPS, values) if value.strip()}
    cores = _int(values[-1])
    abilist = props.get("ro.product.cpu.abilist") or props.get("ro.product.cpu.abi") or ""
    abis = tuple(abi.strip() for abi in abilist.split(",") if abi.strip())
    max_freqs: tuple[int | None, ...] = ()
    if cores:
        freqs = run_sections(shell, [["cat", cpu_path(core, "cpuinfo_max_freq")] for core in range(cores)], timeout=timeout)
        max_freqs = tuple(_int(text) for text in freqs)
    return DeviceFacts(
        serial=shell.serial,
        kind=device_kind(props),
        abis=abis,
        model=props.get("ro.product.model"),
        manufacturer=props.get("ro.product.manufacturer"),
        soc=props.get("ro.soc.model") or props.get("ro.board.platform") or props.get("ro.hardware"),
        sdk=_int(props.get("ro.build.version.sdk")),
        release=props.get("ro.build.version.release"),
        cores=cores,
        max_freqs_khz=max_freqs,
        emulation=props.get("ro.lab.emulation"),
    )
