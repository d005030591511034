"""The guest side of instruction counting: the runner's markers and the counts the plugin writes back.

Runs inside the emulated userland (and anywhere else: there it finds no plugin and says so), so it
uses the standard library only. The lab's QEMU plugin (``insn_count.c``) counts the guest
instructions between a start and a stop marker and appends each region's count, one decimal line,
to the file descriptor the marker names. A marker is ``posix_fadvise(fd, MAGIC, 0, NORMAL)``: one
cheap C call from Python, a syscall the plugin sees before it runs, and harmless when it does run.

The command builder (``Userland.bench_command``) tells the runner what it runs under with two
environment variables: ``LAB_EMULATION`` (the label, e.g. ``qemu-user neoverse-n1``) and
``LAB_QEMU_COUNTING`` (``plugin``, or ``unavailable: <why>`` when the plugin could not be loaded).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Mapping

__all__ = [
    "ENV_EMULATION",
    "ENV_COUNTING",
    "COUNTING_PLUGIN",
    "MAGIC_START",
    "MAGIC_STOP",
    "RegionCounter",
    "counting_requested",
    "emulation_label",
    "open_counter",
]

ENV_EMULATION = "LAB_EMULATION"
ENV_COUNTING = "LAB_QEMU_COUNTING"
COUNTING_PLUGIN = "plugin"  # ENV_COUNTING's value when the plugin is loaded
_UNAVAILABLE = "unavailable: "

# "LAB_STAR" and "LAB_STOP" as 64-bit integers: keep in step with insn_count.c.
MAGIC_START = 0x4C41425F53544152
MAGIC_STOP = 0x4C41425F53544F50

NOT_ANSWERED = (
    "no QEMU counting plugin answered the runner's marker: run under the lab's QEMU emulation, "
    "with python -m device_agent qemu bench or an emulated device started with --arch arm64"
)


def counting_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when the command builder asked for counts (the default of ``--count_instructions``)."""
    env = os.environ if environ is None else environ
    return bool(env.get(ENV_COUNTING))


def emulation_label(environ: Mapping[str, str] | None = None) -> str:
    """What the output line says the counts come from: ``emulated, qemu-user neoverse-n1`` or ``not emulated``."""
    env = os.environ if environ is None else environ
    emulation = env.get(ENV_EMULATION, "").strip()
    return f"emulated, {emulation}" if emulation else "not emulated"


class RegionCounter:
    """Marks regions for the plugin and reads back the counts it wrote, one per stopped region.

    ``start`` and ``stop`` are bound C calls (no Python frame of their own), so the instructions
    a region spends outside the measured call are few and the same every time; the runner measures
    them with empty regions and subtracts them.
    """

    def __init__(self) -> None:
        fd, path = tempfile.mkstemp(prefix="lab-insn-")
        os.unlink(path)  # the file lives as long as the descriptor
        self._fd = fd
        self._read = 0
        advise = os.posix_fadvise
        self.start: Callable[[], None] = functools.partial(advise, fd, MAGIC_START, 0, os.POSIX_FADV_NORMAL)
        self.stop: Callable[[], None] = functools.partial(advise, fd, MAGIC_STOP, 0, os.POSIX_FADV_NORMAL)

    def take(self) -> list[int]:
        """The counts written since the last ``take``, in order."""
        chunks = []
        while chunk := os.pread(self._fd, 1 << 16, self._read):
            chunks.append(chunk)
            self._read += len(chunk)
        return [int(line) for line in b"".join(chunks).split()]

    def close(self) -> None:
        os.close(self._fd)


def open_counter(environ: Mapping[str, str] | None = None) -> RegionCounter | str:
    """A counter, or why there can be none (the plugin did not load; no posix_fadvise here).

    A counter is returned whenever markers can be sent; whether a plugin answers them shows only
    when the first region's count does (or does not) arrive: see ``NOT_ANSWERED``.
    """
    env = os.environ if environ is None else environ
    state = env.get(ENV_COUNTING, "")
    if state.startswith(_UNAVAILABLE):
        return state[len(_UNAVAILABLE) :]
    if not hasattr(os, "posix_fadvise"):
        return "this system has no posix_fadvise, the runner's marker for the QEMU counting plugin"
    return RegionCounter()
