"""A device's state at one moment (temperatures, battery, governors, frequencies), and the
fixed-performance mode that Android 11+ offers for steadier clocks.

Which files a device has is discovered once per device (``StateReader.discover``), with the
zones' trip points (``trip_point_N_temp`` of type passive or hot: where the kernel starts to
throttle); each snapshot after that is one shell round trip. A snapshot also reads each core's
``scaling_max_freq``, the cap the thermal framework (or fixed-performance mode) puts on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from host.devices.facts import cpu_path
from host.devices.shell import DeviceShell, run_sections
from host.records import DeviceFacts, DeviceState

__all__ = ["StateReader", "parse_battery", "millidegrees_to_c", "FIXED_PERFORMANCE_MIN_SDK"]

FIXED_PERFORMANCE_MIN_SDK = 30  # `cmd power set-fixed-performance-mode-enabled` exists from Android 11
_NOT_FOUND = 127  # the shell's status for a command it does not have
_THERMAL_GLOB = "/sys/class/thermal/thermal_zone*"
_ZONE_RE = re.compile(r"^/sys/class/thermal/thermal_zone\d+$")
_TRIPS = 3  # trip points read per zone: the first passive one is almost always among them
_THROTTLING_TRIPS = ("passive", "hot")
_BATTERY_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?):\s*(.+?)\s*$")


def millidegrees_to_c(raw: str) -> float | None:
    """A thermal zone's ``temp`` in °C: most kernels report millidegrees, some whole degrees."""
    try:
        value = float(raw.split()[0])
    except (ValueError, IndexError):
        return None
    return value / 1000.0 if abs(value) >= 1000 else value


def parse_battery(text: str) -> tuple[int | None, float | None, bool | None]:
    """(level %, temperature °C, charging) from ``dumpsys battery``::

        Current Battery Service state:
          AC powered: false
          USB powered: true
          status: 2
          level: 85
          temperature: 290

    ``temperature`` is in tenths of a degree; charging is ``status: 2`` (BATTERY_STATUS_CHARGING),
    or any power source when there is no status line.
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _BATTERY_LINE.match(line)
        if match:
            fields[match.group(1).strip().lower()] = match.group(2)

    def number(key: str) -> float | None:
        try:
            return float(fields[key])
        except (KeyError, ValueError):
            return None

    level = number("level")
    temp = number("temperature")
    status = number("status")
    powered = [fields[k].lower() == "true" for k in fields if k.endswith(" powered")]
    charging: bool | None = (status == 2) if status is not None else (any(powered) if powered else None)
    return (int(level) if level is not None else None, temp / 10.0 if temp is not None else None, charging)


def _zone_name(zone: str, zone_type: str, taken: dict[str, float]) -> str:
    """A zone's name in the state: its type (``cpu-1-0-usr``), or its folder name without one; a
    type two zones share gets the folder name added."""
    name = zone_type.splitlines()[0].strip() if zone_type.strip() else zone.rsplit("/", 1)[1]
    return name if name not in taken else f"{name}({zone.rsplit('/', 1)[1]})"


class StateReader:
    """Snapshots of one device's state; knows which of its files and commands exist."""

    def __init__(self, shell: DeviceShell, facts: DeviceFacts, clock: Callable[[], datetime] | None = None) -> None:
        self.shell = shell
        self.facts = facts
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._zones: list[str] = []
        self._cores: list[int] = []
        self._has_dumpsys = False
        self._discovered = False
        self.trips_c: dict[str, float] = {}  # zone name -> the lowest trip point where throttling starts
        self.fixed_performance_refusal: str | None = None  # what `cmd power` answered when it refused

    def discover(self, timeout: float = 30.0) -> None:
        """Finds the thermal zones, whether the cores have cpufreq files, and whether ``dumpsys
        battery`` works (one round trip). What a device lacks is never asked for again."""
        cores = list(range(self.facts.cores or 0))
        probes: list[str | list[str]] = [f"echo {_THERMAL_GLOB}", ["dumpsys", "battery"]]
        probes += [["cat", cpu_path(core, "scaling_governor")] for core in cores]
        listing, battery, *governors = run_sections(self.shell, probes, timeout=timeout)
        self._zones = sorted((p for p in listing.split() if _ZONE_RE.match(p)), key=lambda p: int(p.rsplit("e", 1)[1]))
        self._has_dumpsys = parse_battery(battery)[0] is not None
        # A core that is offline now may come back: keep every core when any has cpufreq.
        self._cores = cores if any(g.strip() for g in governors) else []
        self._discovered = True
        self.trips_c = self._read_trips(timeout) if self._zones else {}

    def _read_trips(self, timeout: float) -> dict[str, float]:
        """Zone name -> its lowest passive or hot trip point (°C), for the zones that have one."""
        probes: list[str | list[str]] = []
        for zone in self._zones:
            probes.append(["cat", f"{zone}/type"])
            for n in range(_TRIPS):
                probes += [["cat", f"{zone}/trip_point_{n}_type"], ["cat", f"{zone}/trip_point_{n}_temp"]]
        values = run_sections(self.shell, probes, timeout=timeout)
        trips: dict[str, float] = {}
        per_zone = 1 + 2 * _TRIPS
        for i, zone in enumerate(self._zones):
            chunk = values[i * per_zone:(i + 1) * per_zone]
            name = _zone_name(zone, chunk[0], trips)
            found = [millidegrees_to_c(chunk[1 + 2 * n + 1]) for n in range(_TRIPS)
                     if chunk[1 + 2 * n].strip() in _THROTTLING_TRIPS]
            temps = [t for t in found if t is not None and t > 0]
            if temps:
                trips[name] = min(temps)
        return trips

    def _commands(self) -> list[list[str]]:
        commands: list[list[str]] = []
        for zone in self._zones:
            commands += [["cat", f"{zone}/type"], ["cat", f"{zone}/temp"]]
        for core in self._cores:
            commands += [["cat", cpu_path(core, "scaling_governor")], ["cat", cpu_path(core, "scaling_cur_freq")],
                         ["cat", cpu_path(core, "scaling_max_freq")]]
        if self._has_dumpsys:
            commands.append(["dumpsys", "battery"])
        return commands

    def snapshot(self, fixed_performance_mode: bool | None = None, timeout: float = 30.0) -> DeviceState:
        """The state now. Files the device lacks are left out, never reported as zero.

        Raises:
            DeviceGoneError, ShellTimeoutError: the device stopped answering.
        """
        return self.snapshot_with([], fixed_performance_mode, timeout)[0]

    def snapshot_with(
        self, extra: Sequence[str | Sequence[str]], fixed_performance_mode: bool | None = None, timeout: float = 30.0,
        max_output: int | None = None,
    ) -> tuple[DeviceState, list[str]]:
        """The state now, and the stdout of ``extra`` commands run in the same round trip (of at
        most ``max_output`` bytes together).

        Raises:
            DeviceGoneError, ShellTimeoutError: the device stopped answering.
            OutputTooLargeError: the commands printed more than ``max_output``.
        """
        if not self._discovered:
            self.discover(timeout)
        taken_at = self._clock()
        commands: list[str | Sequence[str]] = [*self._commands(), *extra]
        values = run_sections(self.shell, commands, timeout=timeout, max_output=max_output) if commands else []
        split = len(values) - len(extra)
        return self._parse(values[:split], taken_at, fixed_performance_mode), values[split:]

    def _parse(self, values: list[str], taken_at: datetime, fixed_performance_mode: bool | None) -> DeviceState:
        thermal: dict[str, float] = {}
        for i, zone in enumerate(self._zones):
            zone_type, temp = values[2 * i], millidegrees_to_c(values[2 * i + 1])
            if temp is None:
                continue
            thermal[_zone_name(zone, zone_type, thermal)] = temp
        offset = 2 * len(self._zones)
        governors: dict[str, str] = {}
        freqs: dict[str, int] = {}
        caps: dict[str, int] = {}
        for i, core in enumerate(self._cores):
            governor, freq, cap = (values[offset + 3 * i + k].strip() for k in range(3))
            if governor and " " not in governor:
                governors[f"cpu{core}"] = governor
            if freq.isdigit():
                freqs[f"cpu{core}"] = int(freq)
            if cap.isdigit():
                caps[f"cpu{core}"] = int(cap)
        level = battery_temp = charging = None
        if self._has_dumpsys:
            level, battery_temp, charging = parse_battery(values[-1])
        return DeviceState(
            taken_at=taken_at,
            thermal_c=thermal,
            battery_level=level,
            battery_temp_c=battery_temp,
            charging=charging,
            governors=governors,
            cur_freqs_khz=freqs,
            fixed_performance_mode=fixed_performance_mode,
            cap_freqs_khz=caps,
            trips_c=dict(self.trips_c),
        )

    def set_fixed_performance(self, enabled: bool, timeout: float = 30.0) -> bool | None:
        """Turns Android's fixed-performance mode on or off.

        Returns True when the device accepted, None where it is not supported (SDK < 30, or no
        ``cmd``/power service, as on the emulated device); ``fixed_performance_refusal`` then holds
        the device's answer when it has ``cmd`` but refused (None without ``cmd``, exit 127).
        """
        self.fixed_performance_refusal = None
        if self.facts.sdk is None or self.facts.sdk < FIXED_PERFORMANCE_MIN_SDK:
            return None
        result = self.shell.run(
            ["cmd", "power", "set-fixed-performance-mode-enabled", "true" if enabled else "false"], timeout=timeout
        )
        if result.returncode != 0 or "unknown command" in result.output.lower():
            if result.returncode != _NOT_FOUND:
                self.fixed_performance_refusal = result.output.strip() or f"exit {result.returncode}"
            return None
        return True
