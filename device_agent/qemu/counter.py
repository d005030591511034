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
    "BlockCounter",
    "MAGIC_KERNELS_ON",
    "MAGIC_KERNELS_RESET",
    "MAGIC_KERNELS_DUMP",
    "open_block_counter",
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
# "LAB_KRON", "LAB_KRST", "LAB_KDMP": per-block counts on, reset, dump (--enable_op_profiling).
MAGIC_KERNELS_ON = 0x4C41425F4B524F4E
MAGIC_KERNELS_RESET = 0x4C41425F4B525354
MAGIC_KERNELS_DUMP = 0x4C41425F4B444D50
_DUMP_END = "end"

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


class BlockCounter:
    """Per-block instruction counts (``--enable_op_profiling`` under the plugin): where the guest ran.

    ``on`` makes the plugin count every block translated from then on by its start address (send
    it before the code to profile is loaded); ``reset`` zeroes the counts; ``dump`` returns
    {block address: instructions since the reset}, or None when no plugin answered (a plugin built
    before per-block counting, or none at all).
    """

    def __init__(self) -> None:
        fd, path = tempfile.mkstemp(prefix="lab-blocks-")
        os.unlink(path)
        self._fd = fd
        self._read = 0
        advise = os.posix_fadvise
        self.on: Callable[[], None] = functools.partial(advise, fd, MAGIC_KERNELS_ON, 0, os.POSIX_FADV_NORMAL)
        self.reset: Callable[[], None] = functools.partial(advise, fd, MAGIC_KERNELS_RESET, 0, os.POSIX_FADV_NORMAL)
        self._dump: Callable[[], None] = functools.partial(advise, fd, MAGIC_KERNELS_DUMP, 0, os.POSIX_FADV_NORMAL)

    def dump(self) -> dict[int, int] | None:
        self._dump()
        chunks = []
        while chunk := os.pread(self._fd, 1 << 20, self._read):
            chunks.append(chunk)
            self._read += len(chunk)
        lines = b"".join(chunks).decode("ascii").splitlines()
        if not lines or lines[-1] != _DUMP_END:
            return None
        counts: dict[int, int] = {}
        for line in lines[:-1]:
            address, insns = line.split()
            key = int(address, 16)
            counts[key] = counts.get(key, 0) + int(insns)  # a block translated twice has two entries
        return counts

    def close(self) -> None:
        os.close(self._fd)


def open_block_counter(environ: Mapping[str, str] | None = None) -> BlockCounter | str:
    """A per-block counter, or why there can be none (not under the lab's QEMU plugin)."""
    env = os.environ if environ is None else environ
    state = env.get(ENV_COUNTING, "")
    if state.startswith(_UNAVAILABLE):
        return state[len(_UNAVAILABLE) :]
    if state != COUNTING_PLUGIN:
        return "not running under the lab's QEMU counting plugin (an emulated device started with --arch arm64)"
    if not hasattr(os, "posix_fadvise"):
        return "this system has no posix_fadvise, the runner's marker for the QEMU counting plugin"
    return BlockCounter()


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
