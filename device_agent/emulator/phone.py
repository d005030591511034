"""A phone profile come alive: die temperature, frequency caps, fixed-performance mode, and the files
and command outputs that show them.

The model (the profile's ``thermal``): one die temperature T, Newton cooling towards ambient with
time constant tau, heated while benchmark_model runs in proportion to the square of the speed of
the cluster it runs on relative to the fastest one at full frequency (dynamic power ~ f·V², V
roughly following f; a little core's speed per GHz is lower, and so is its power)::

    dT/dt = heat · Σ_runners (speed / speed_max)² − (T − ambient) / tau

Past the trip point each throttling cluster's cap (scaling_max_freq) drops one frequency step per
``step_c`` degrees, which lowers the heating in turn, so a sustained run settles around the trip
like a phone's. As the kernel's step-wise governor does, the caps are given back only once the die
is ``HYSTERESIS_C`` below the trip point. Fixed-performance mode pins each cluster at its ``fixed_performance_khz``.
``thermal_speed`` runs the clock of this model that many times faster (tests and benchmarks).

The host CPU plays the fastest cluster at its maximum frequency. A runner on a slower or capped
cluster is padded: after each invoke it sleeps ``(factor − 1) ×`` the invoke's own time, factor =
fastest speed / its cluster's speed now. The runner learns its factor from a state file this
class rewrites every ``TICK_S`` (``phone_runner`` reads it), and says so in its output; the device
says so in ``ro.lab.slowdown``.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from device_agent.facts import format_cpu_list
from device_agent.profiles import Cluster, Profile, Zone

__all__ = ["Phone", "STATE_FILE", "TICK_S", "SLOWDOWN_NOTE"]

STATE_FILE = "state.json"
TICK_S = 0.05
_MAX_STEP_S = 0.25  # of model time per integration step
HYSTERESIS_C = 5.0  # the caps stay until the die is this far below the trip point
SLOWDOWN_NOTE = ("sleep padding per invoke: the host CPU plays the fastest cluster at full frequency; slower or "
                 "throttled clusters are simulated by sleeping after each invoke")
_CPU_ROOT = "/sys/devices/system/cpu"
_THERMAL_ROOT = "/sys/class/thermal"


class Phone:
    """The live state of one profiled device. Thread-safe: shells and the ticker share it."""

    def __init__(self, profile: Profile, state_dir: Path, *, thermal_speed: float = 1.0,
                 initial_temp_c: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.profile = profile
        self.state_dir = state_dir
        self.thermal_speed = thermal_speed
        self._clock = clock
        self._lock = threading.Lock()
        self._temp = profile.thermal.ambient_c if initial_temp_c is None else initial_temp_c
        self._steps = 0  # frequency steps the thermal caps take away now
        self._at = clock()
        self._runners: dict[int, int] = {}  # runner id -> index of the cluster it runs on
        self._next_id = 0
        self.fixed_performance = False
        self._ref_speed = max(c.speed_per_ghz * c.max_khz for c in profile.clusters)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._written = ""

    # -- lifetime --------------------------------------------------------------------------------

    def start(self) -> None:
        """Write the first state file and keep it current."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)  # the confined runner reads it as the device's shell user (uid 2000)
        self._write_state()
        self._ticker = threading.Thread(target=self._tick, name="phone-state", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(5)

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            self._write_state()

    def _write_state(self) -> None:
        with self._lock:
            self._advance()
            state = {"ref": self._ref_speed,
                     "clusters": [{"cpus": list(c.cpus), "speed": c.speed_per_ghz * self._cap(i)}
                                  for i, c in enumerate(self.profile.clusters)]}
        text = json.dumps(state)
        if text == self._written:
            return
        tmp = self.state_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.state_dir / STATE_FILE)
        self._written = text

    # -- the model -------------------------------------------------------------------------------

    def _power(self) -> float:
        total = 0.0
        for index in self._runners.values():
            cluster = self.profile.clusters[index]
            total += (cluster.speed_per_ghz * self._cap(index) / self._ref_speed) ** 2
        return total

    def _advance(self) -> None:
        """Integrate the temperature up to now (caller holds the lock)."""
        now = self._clock()
        remaining = (now - self._at) * self.thermal_speed
        self._at = now
        thermal = self.profile.thermal
        while remaining > 1e-9:
            dt = min(remaining, _MAX_STEP_S)
            equilibrium = thermal.ambient_c + thermal.heat_c_per_s * self._power() * thermal.cool_tau_s
            self._temp = equilibrium + (self._temp - equilibrium) * math.exp(-dt / thermal.cool_tau_s)
            remaining -= dt
            if self._temp >= thermal.trip_c:
                self._steps = max(self._steps, int((self._temp - thermal.trip_c) / thermal.step_c) + 1)
            elif self._temp < thermal.trip_c - HYSTERESIS_C:
                self._steps = 0

    def _cap(self, index: int) -> int:
        """scaling_max_freq of cluster ``index`` now (caller holds the lock)."""
        cluster = self.profile.clusters[index]
        freqs = cluster.freqs_khz
        base = cluster.max_khz
        if self.fixed_performance and cluster.fixed_performance_khz:
            base = cluster.fixed_performance_khz
        if not cluster.throttles or not self._steps:
            return base
        at = max(i for i, f in enumerate(freqs) if f <= base)
        floor = len(freqs) // 3  # thermal caps stop a third of the way up the ladder
        return freqs[max(floor, at - self._steps)] if at > floor else base

    def _best_cluster(self, cpus: set[int] | None) -> int:
        """The cluster the scheduler puts a busy single task on: the fastest one it may use."""
        allowed = [i for i, c in enumerate(self.profile.clusters) if cpus is None or cpus & set(c.cpus)]
        return max(allowed, key=lambda i: (self.profile.clusters[i].speed_per_ghz * self._cap(i), -i))

    @contextmanager
    def running(self, cpus: set[int] | None) -> Iterator[Cluster]:
        """benchmark_model is running (pinned to ``cpus``, or anywhere): the die heats meanwhile."""
        with self._lock:
            self._advance()
            index = self._best_cluster(cpus)
            runner = self._next_id
            self._next_id += 1
            self._runners[runner] = index
        try:
            yield self.profile.clusters[index]
        finally:
            with self._lock:
                self._advance()
                self._runners.pop(runner, None)

    def set_fixed_performance(self, enabled: bool) -> None:
        with self._lock:
            self._advance()
            self.fixed_performance = enabled

    def temperature(self) -> float:
        with self._lock:
            self._advance()
            return self._temp

    # -- what the device shows ---------------------------------------------------------------------

    def view_paths(self) -> list[str]:
        """Every file this phone adds under /proc and /sys."""
        paths = ["/proc/cpuinfo", f"{_CPU_ROOT}/online", f"{_CPU_ROOT}/possible", f"{_CPU_ROOT}/present"]
        names = ("cpuinfo_max_freq", "cpuinfo_min_freq", "scaling_cur_freq", "scaling_max_freq", "scaling_min_freq",
                 "scaling_governor", "scaling_available_frequencies", "scaling_available_governors", "related_cpus")
        for cpu in range(self.profile.cpu_count):
            paths += [f"{_CPU_ROOT}/cpu{cpu}/cpufreq/{name}" for name in names]
        for n in range(len(self.profile.thermal.zones)):
            paths += [f"{_THERMAL_ROOT}/thermal_zone{n}/{name}"
                      for name in ("type", "temp", "trip_point_0_temp", "trip_point_0_type")]
        return paths

    def read_view(self, vpath: str) -> bytes | None:
        """The content of one of :meth:`view_paths`, now; None for a path this phone lacks."""
        text = self._view_text(vpath)
        return None if text is None else text.encode()

    def _view_text(self, vpath: str) -> str | None:
        profile = self.profile
        every = format_cpu_list(range(profile.cpu_count))
        if vpath == "/proc/cpuinfo":
            return self._cpuinfo()
        if vpath in (f"{_CPU_ROOT}/online", f"{_CPU_ROOT}/possible", f"{_CPU_ROOT}/present"):
            return every + "\n"
        parts = vpath.split("/")
        if vpath.startswith(f"{_CPU_ROOT}/cpu") and len(parts) == 8 and parts[6] == "cpufreq":
            try:
                cpu = int(parts[5][3:])
            except ValueError:
                return None
            if cpu >= profile.cpu_count:
                return None
            return self._cpufreq(cpu, parts[7])
        if vpath.startswith(f"{_THERMAL_ROOT}/thermal_zone") and len(parts) == 6:
            try:
                n = int(parts[4][len("thermal_zone"):])
            except ValueError:
                return None
            if n >= len(profile.thermal.zones):
                return None
            return self._zone(profile.thermal.zones[n], parts[5])
        return None

    def _cpuinfo(self) -> str:
        profile = self.profile
        blocks = []
        for cpu in range(profile.cpu_count):
            c = profile.cluster_of(cpu)
            blocks.append(f"processor\t: {cpu}\nBogoMIPS\t: 38.40\nFeatures\t: {profile.cpuinfo_features}\n"
                          f"CPU implementer\t: {c.implementer}\nCPU architecture: {profile.cpuinfo_arch}\n"
                          f"CPU variant\t: 0x1\nCPU part\t: {c.cpu_part}\nCPU revision\t: 0\n")
        return "\n".join(blocks) + f"\nHardware\t: {profile.cpuinfo_hardware}\n"

    def _cpufreq(self, cpu: int, name: str) -> str | None:
        index = next(i for i, c in enumerate(self.profile.clusters) if cpu in c.cpus)
        cluster = self.profile.clusters[index]
        with self._lock:
            self._advance()
            cap = self._cap(index)
            busy = index in self._runners.values()
            pinned = self.fixed_performance and cluster.fixed_performance_khz is not None
        floor = cap if pinned else cluster.freqs_khz[0]
        values = {
            "cpuinfo_max_freq": cluster.max_khz,
            "cpuinfo_min_freq": cluster.freqs_khz[0],
            "scaling_max_freq": cap,
            "scaling_min_freq": floor,
            "scaling_cur_freq": cap if busy or pinned else cluster.freqs_khz[0],
            "scaling_governor": cluster.governor,
            "scaling_available_frequencies": " ".join(str(f) for f in cluster.freqs_khz) + " ",
            "scaling_available_governors": f"{cluster.governor} performance powersave",
            "related_cpus": " ".join(str(c) for c in cluster.cpus),
        }
        value = values.get(name)
        return None if value is None else f"{value}\n"

    def _zone(self, zone: Zone, name: str) -> str | None:
        thermal = self.profile.thermal
        if name == "type":
            return zone.type + "\n"
        if name == "temp":
            rise = self.temperature() - thermal.ambient_c
            return f"{round((thermal.ambient_c + zone.share * rise) * 1000)}\n"
        if name == "trip_point_0_temp":
            return f"{round((thermal.trip_c if zone.trip else 95.0) * 1000)}\n"
        if name == "trip_point_0_type":
            return ("passive" if zone.trip else "hot") + "\n"
        return None

    def dumpsys(self, service: str) -> tuple[str, int]:
        """``dumpsys SERVICE``'s output and exit status, in the profile's Android version's format."""
        if service not in self.profile.services:
            return f"Can't find service: {service}\n", 0
        if service == "battery":
            return self._battery(), 0
        if service == "thermalservice":
            return self._thermalservice(), 0
        # Not Android's dump (whose fields this profile does not record): the lab's own line, labelled.
        return (f"POWER MANAGER (dumpsys power)\n  lab emulated phone: fixed-performance mode "
                f"{'on' if self.fixed_performance else 'off'}\n"), 0

    def _battery(self) -> str:
        b = self.profile.battery
        rise = self.temperature() - self.profile.thermal.ambient_c
        tenths = round((self.profile.thermal.ambient_c + 0.25 * rise) * 10)
        lines = [
            "Current Battery Service state:",
            f"  AC powered: {str(b['ac']).lower()}",
            f"  USB powered: {str(b['usb']).lower()}",
            f"  Wireless powered: {str(b['wireless']).lower()}",
            f"  Max charging current: {b['max_charging_current_ua']}",
            "  Max charging voltage: 5000000",
            "  Charge counter: 2345000",
            f"  status: {b['status']}",
            f"  health: {b['health']}",
            "  present: true",
            f"  level: {b['level']}",
            "  scale: 100",
            f"  voltage: {b['voltage_mv']}",
            f"  temperature: {tenths}",
            f"  technology: {b['technology']}",
        ]
        return "\n".join(lines) + "\n"

    def _thermalservice(self) -> str:
        thermal = self.profile.thermal
        rise = self.temperature() - thermal.ambient_c
        status = 0 if rise + thermal.ambient_c < thermal.trip_c else 3  # THERMAL_STATUS_SEVERE when capped
        kinds = {"skin": 3, "battery": 2}
        temps = []
        for zone in thermal.zones:
            kind = next((v for k, v in kinds.items() if k in zone.type.lower()), 0)
            value = thermal.ambient_c + zone.share * rise
            temps.append(f"\tTemperature{{mValue={value:.1f}, mType={kind}, mName={zone.type}, "
                         f"mStatus={status if zone.trip else 0}}}")
        body = "\n".join(temps)
        return (f"IsStatusOverride: false\nThermal Status: {status}\nCached temperatures:\n{body}\nHAL Ready: true\n"
                f"HAL connection:\n\tThermalHAL 2.0 connected: yes\nCurrent temperatures from HAL:\n{body}\n")
