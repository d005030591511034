"""The emulated ARM cores: QEMU's CPU models and the /proc/cpuinfo each one shows the guest.

QEMU 7.2's user mode passes the host's /proc/cpuinfo through, and LiteRT's CPU detection (the
cpuinfo library) crashes on an x86 one inside the Interpreter constructor. With ``-L PREFIX`` the
guest reads PREFIX/proc/cpuinfo instead, so each core gets a prefix folder of its own (a "view" of
the userland) whose cpuinfo names that core: cpuinfo reads the core's part number from it, and
XNNPACK picks its kernels by that microarchitecture. The ISA features themselves come from QEMU
(the auxiliary vector), so the Features line only mirrors them.

QEMU's default core, ``max``, has SVE and SME: dense 1x1 convolutions then run on SME matrix
kernels that no phone has, so only phone-like cores are offered here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CpuModel", "CPUS", "DEFAULT_CPU", "cpu_model", "cpuinfo_text"]

_V8_0 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"
_V8_2 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs"


@dataclass(frozen=True)
class CpuModel:
    """One QEMU ``-cpu`` model; part, variant and revision are its MIDR fields (QEMU's own values)."""

    name: str  # QEMU's name, passed to -cpu; also the device's ro.soc.model
    title: str
    part: int
    variant: int
    revision: int
    features: str


CPUS: dict[str, CpuModel] = {
    model.name: model
    for model in (
        CpuModel("neoverse-n1", "ARM Neoverse-N1", 0xD0C, 0x4, 1, _V8_2),
        CpuModel("cortex-a76", "ARM Cortex-A76", 0xD0B, 0x4, 1, _V8_2),
        CpuModel("cortex-a72", "ARM Cortex-A72", 0xD08, 0x0, 3, _V8_0),
        CpuModel("cortex-a57", "ARM Cortex-A57", 0xD07, 0x1, 0, _V8_0),
        CpuModel("cortex-a53", "ARM Cortex-A53", 0xD03, 0x0, 4, _V8_0),
    )
}
DEFAULT_CPU = "neoverse-n1"


def cpu_model(name: str) -> CpuModel:
    """The model called ``name``.

    Raises:
        KeyError: with a message listing the known models (callers turn it into their own error).
    """
    try:
        return CPUS[name]
    except KeyError:
        raise KeyError(f"unknown emulated CPU {name!r}: use one of {', '.join(CPUS)}") from None


def cpuinfo_text(model: CpuModel, processors: int) -> str:
    """An arm64 Linux /proc/cpuinfo listing ``processors`` cores of ``model``.

    More or fewer entries than the host's CPUs both work: cpuinfo takes the CPU count from /sys,
    which the guest reads from the host.
    """
    block = (
        "processor\t: {n}\n"
        "BogoMIPS\t: 50.00\n"
        f"Features\t: {model.features}\n"
        "CPU implementer\t: 0x41\n"
        "CPU architecture: 8\n"
        f"CPU variant\t: {model.variant:#x}\n"
        f"CPU part\t: {model.part:#05x}\n"
        f"CPU revision\t: {model.revision}\n"
        "\n"
    )
    return "".join(block.format(n=n) for n in range(max(1, processors)))
