"""What a device is: model, SoC, ABIs, Android version, cores and their maximum frequencies, and
the clusters those make (big.LITTLE: cores that share a maximum frequency).

Read with two shell round trips (properties, then per-core files), so listing devices stays fast.
Shells without ``nproc`` (toolbox, before Android 6) count the cores from
``/sys/devices/system/cpu/possible``.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_agent.facts import format_cpu_list, parse_cpu_list
from host.devices.shell import DeviceShell, run_sections
from host.errors import UsageError
from host.records import DeviceFacts, DeviceKind

__all__ = ["read_facts", "read_facts_and_notes", "device_kind", "cpu_path", "Cluster", "clusters",
           "resolve_cores"]

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
    "ro.lab.profile",
    "ro.lab.slowdown",
)
_POSSIBLE = "/sys/devices/system/cpu/possible"
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


def _possible_count(text: str) -> int | None:
    """The number of CPUs in ``/sys/devices/system/cpu/possible`` (``0-7``), or None."""
    try:
        return len(parse_cpu_list(text.strip())) or None
    except ValueError:
        return None


def read_facts(shell: DeviceShell, timeout: float = 30.0) -> DeviceFacts:
    """The device's facts; a property or file the device does not have is left unknown (None).

    Raises:
        DeviceGoneError, ShellTimeoutError: the device stopped answering.
    """
    return read_facts_and_notes(shell, timeout)[0]


def read_facts_and_notes(shell: DeviceShell, timeout: float = 30.0) -> tuple[DeviceFacts, tuple[str, ...]]:
    """The device's facts, and what a user should know about its figures: an emulated phone profile
    says how it simulates the phone's speed (``ro.lab.profile``, ``ro.lab.slowdown``).

    Raises:
        DeviceGoneError, ShellTimeoutError: the device stopped answering.
    """
    commands = [["getprop", key] for key in _PROPS] + [["nproc"], ["cat", _POSSIBLE]]
    values = run_sections(shell, commands, timeout=timeout)
    props = {key: value.strip() for key, value in zip(_PROPS, values) if value.strip()}
    cores = _int(values[-2]) or _possible_count(values[-1])
    abilist = props.get("ro.product.cpu.abilist") or props.get("ro.product.cpu.abi") or ""
    abis = tuple(abi.strip() for abi in abilist.split(",") if abi.strip())
    max_freqs: tuple[int | None, ...] = ()
    if cores:
        freqs = run_sections(shell, [["cat", cpu_path(core, "cpuinfo_max_freq")] for core in range(cores)], timeout=timeout)
        max_freqs = tuple(_int(text) for text in freqs)
    facts = DeviceFacts(
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
    notes: tuple[str, ...] = ()
    if "ro.lab.profile" in props:
        notes = (f"emulated phone profile {props['ro.lab.profile']}: {props.get('ro.lab.slowdown', 'simulated speed')}",)
    return facts, notes


@dataclass(frozen=True)
class Cluster:
    """Cores that share a maximum frequency: one cluster of a big.LITTLE CPU."""

    cores: tuple[int, ...]
    max_freq_khz: int

    @property
    def cpus(self) -> str:
        """``4-6`` or ``7``: the kernel's list form."""
        return format_cpu_list(self.cores)


def clusters(facts: DeviceFacts) -> list[Cluster]:
    """The device's clusters, slowest first; empty when no core's maximum frequency is known."""
    by_freq: dict[int, list[int]] = {}
    for core, khz in enumerate(facts.max_freqs_khz):
        if khz:
            by_freq.setdefault(khz, []).append(core)
    return [Cluster(tuple(cores), khz) for khz, cores in sorted(by_freq.items())]


def resolve_cores(facts: DeviceFacts, cores: str) -> tuple[tuple[int, ...], str]:
    """``--cores`` on this device: (core numbers, a label such as ``big: 7``).

    ``big`` is the cluster with the highest maximum frequency, ``little`` the one with the lowest.

    Raises:
        UsageError: the device's topology is unknown, or a core it does not have was named.
    """
    if cores in ("big", "little"):
        found = clusters(facts)
        if not found:
            raise UsageError(f"--cores {cores}: {facts.serial} reports no per-core maximum frequency, so its clusters "
                             "are unknown; name the CPUs instead (e.g. --cores 4-7)")
        chosen = found[-1] if cores == "big" else found[0]
        return chosen.cores, f"{cores}: {chosen.cpus}"
    try:
        wanted = parse_cpu_list(cores)
    except ValueError as exc:
        raise UsageError(f"--cores {cores}: {exc}; give big, little or CPUs such as 4-7") from exc
    if facts.cores is not None and wanted[-1] >= facts.cores:
        raise UsageError(f"--cores {cores}: {facts.serial} has CPUs 0-{facts.cores - 1} only (see `lab devices`)")
    return tuple(wanted), format_cpu_list(wanted)
