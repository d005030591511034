"""Phone profiles for the emulated device: data taken from real phones, one JSON file per phone.

``python -m device_agent emulator --profile NAME`` answers ``getprop``, /proc/cpuinfo, the cpufreq
and thermal files, ``dumpsys battery``/``thermalservice`` and ``cmd power`` as the profile's phone
would, and simulates its heating and throttling (``device_agent.emulator.phone``). Each file names
its public sources (``sources``) and says which values are the lab's model rather than measured
(``approximations``).

A profile file holds:

``props``         getprop values (the emulator adds ``ro.lab.*``)
``shell``         toybox (Android 6+) or toolbox; ``commands`` the optional commands it has
``services``      what ``dumpsys`` knows (battery, thermalservice from Android 10, power)
``clusters``      CPU clusters: cpus, frequency steps (kHz), governor, ``speed_per_ghz`` (relative
                  work per GHz), ``fixed_performance_khz`` (where fixed-performance mode pins it),
                  ``throttles`` (its cap drops above the trip point)
``thermal``       ambient, heating at full load (°C/s), cooling time constant (s), trip point,
                  degrees per frequency step taken away above it, zones (type, share of the die's
                  rise over ambient, whether it carries the trip point)
``battery``       what ``dumpsys battery`` prints
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from device_agent.errors import AgentError

__all__ = ["Cluster", "Zone", "Thermal", "Profile", "profile_names", "load_profile", "PROFILE_DIR"]

PROFILE_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Cluster:
    name: str
    cpus: tuple[int, ...]
    freqs_khz: tuple[int, ...]  # ascending
    governor: str
    speed_per_ghz: float
    throttles: bool
    cpu_part: str
    implementer: str
    fixed_performance_khz: int | None = None

    @property
    def max_khz(self) -> int:
        return self.freqs_khz[-1]


@dataclass(frozen=True)
class Zone:
    type: str
    share: float  # of the die's rise over ambient this zone reads
    trip: bool  # carries the passive trip point (its trip_point_0_temp)


@dataclass(frozen=True)
class Thermal:
    ambient_c: float
    heat_c_per_s: float  # rise per second at full load and full frequency, before cooling
    cool_tau_s: float  # Newton cooling: the rise over ambient falls by 1/e in this many seconds
    trip_c: float
    step_c: float  # every step_c degrees past the trip takes one more frequency step away
    zones: tuple[Zone, ...]


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    sources: tuple[str, ...]
    props: dict[str, str]
    shell: str
    commands: frozenset[str]
    services: frozenset[str]
    clusters: tuple[Cluster, ...]
    thermal: Thermal
    battery: dict[str, object]
    cpuinfo_hardware: str
    cpuinfo_features: str
    cpuinfo_arch: str = "8"

    @property
    def sdk(self) -> int:
        return int(self.props["ro.build.version.sdk"])

    @property
    def cpu_count(self) -> int:
        return 1 + max(cpu for c in self.clusters for cpu in c.cpus)

    def cluster_of(self, cpu: int) -> Cluster:
        return next(c for c in self.clusters if cpu in c.cpus)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def load_profile(name: str) -> Profile:
    """The profile called ``name`` (a file of this folder, or a path to a JSON file).

    Raises:
        AgentError: no such profile (the message lists the known ones), or a file that does not
            hold a profile (names the missing or bad key).
    """
    path = Path(name) if name.endswith(".json") else PROFILE_DIR / f"{name}.json"
    if not path.is_file():
        raise AgentError(f"no phone profile {name!r}: choose one of {', '.join(profile_names())} (or a .json file)")
    try:
        data = json.loads(path.read_text())
        thermal = data["thermal"]
        return Profile(
            name=data["name"],
            description=data["description"],
            sources=tuple(data["sources"]),
            props={str(k): str(v) for k, v in data["props"].items()},
            shell=data["shell"],
            commands=frozenset(data["commands"]),
            services=frozenset(data["services"]),
            clusters=tuple(
                Cluster(
                    name=c["name"], cpus=tuple(c["cpus"]), freqs_khz=tuple(sorted(c["freqs_khz"])),
                    governor=c["governor"], speed_per_ghz=float(c["speed_per_ghz"]), throttles=bool(c["throttles"]),
                    cpu_part=c["cpu_part"], implementer=c["implementer"],
                    fixed_performance_khz=c.get("fixed_performance_khz"),
                )
                for c in data["clusters"]
            ),
            thermal=Thermal(
                ambient_c=float(thermal["ambient_c"]), heat_c_per_s=float(thermal["heat_c_per_s"]),
                cool_tau_s=float(thermal["cool_tau_s"]), trip_c=float(thermal["trip_c"]),
                step_c=float(thermal["step_c"]),
                zones=tuple(Zone(z["type"], float(z["share"]), bool(z["trip"])) for z in thermal["zones"]),
            ),
            battery=dict(data["battery"]),
            cpuinfo_hardware=data["cpuinfo_hardware"],
            cpuinfo_features=data["cpuinfo_features"],
            cpuinfo_arch=str(data.get("cpuinfo_arch", "8")),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        detail = f"missing key {e}" if isinstance(e, KeyError) else str(e)
        raise AgentError(f"phone profile {path} is not valid: {detail}") from e
