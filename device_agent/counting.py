"""Counting guest instructions under the lab's QEMU plugin: per inference (``--count_instructions``)
and per kernel (``--enable_op_profiling``), each with the line or table the runner prints.

``device_agent.qemu`` is imported only when counting is on (or asked whether it is the default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from device_agent.output import (
    InstructionCounts,
    KernelProfile,
    KernelRow,
    format_instructions,
    format_instructions_unavailable,
    format_kernels,
    format_kernels_unavailable,
)
from device_agent.timing import NO_MARKS, Marks, do_nothing, run_loop

if TYPE_CHECKING:
    from device_agent.qemu.counter import BlockCounter, RegionCounter

__all__ = ["Counting", "KernelCounting", "counting_requested"]

CALIBRATION_RUNS = 20  # empty counted regions that measure the markers' own instructions
KERNEL_ROWS = 100  # per-kernel rows printed; the rest are summed into one "(other functions)" row


def counting_requested() -> bool:
    """Whether ``--count_instructions`` defaults to true: the runner runs under the lab's QEMU plugin."""
    from device_agent.qemu.counter import counting_requested as requested

    return requested()


class Counting:
    """``--count_instructions``: the counter's markers around every invoke, and the resulting line.

    Off, it marks nothing and prints nothing. On, empty regions first (``CALIBRATION_RUNS``) show
    whether a plugin answers at all and measure the markers' own instructions, the smallest of
    them, which is subtracted from every count. When counting fails the times still come, and the
    line says why the counts are unavailable.
    """

    def __init__(self, enabled: bool, max_secs: float) -> None:
        self.enabled = enabled
        self.label = ""
        self.counter: RegionCounter | None = None
        self.reason = "nothing was counted"
        self.overhead = 0
        if not enabled:
            return
        from device_agent.qemu.counter import NOT_ANSWERED, emulation_label, open_counter

        self.label = emulation_label()
        opened = open_counter()
        if isinstance(opened, str):
            self.reason = opened
            return
        self.counter = opened
        run_loop(do_nothing, CALIBRATION_RUNS, 0.0, max_secs, 0.0, self.marks)
        empty = opened.take()
        if len(empty) == CALIBRATION_RUNS:
            self.overhead = min(empty)
        else:
            self._give_up(f"the plugin counted {len(empty)} of {CALIBRATION_RUNS} regions" if empty else NOT_ANSWERED)

    @property
    def marks(self) -> Marks:
        return (self.counter.start, self.counter.stop) if self.counter is not None else NO_MARKS

    def take(self, runs: int) -> list[int]:
        """The counts of the last ``runs`` invokes less the markers' overhead; [] when not counting."""
        if self.counter is None:
            return []
        counts = self.counter.take()
        if len(counts) != runs:
            self._give_up(f"the plugin counted {len(counts)} of {runs} invokes")
            return []
        return [max(0, count - self.overhead) for count in counts]

    def line(self, warmup: list[int], measured: list[int]) -> str | None:
        if not self.enabled:
            return None
        if not measured:
            return format_instructions_unavailable(self.label, self.reason)
        ordered = sorted(measured)
        counts = InstructionCounts(
            first=(warmup or measured)[0],
            min=ordered[0],
            median=ordered[(len(ordered) - 1) // 2],  # the lower median: a whole number of instructions
            count=len(measured),
            label=self.label,
            overhead=self.overhead,
        )
        return format_instructions(counts)

    def _give_up(self, reason: str) -> None:
        self.close()
        self.reason = reason

    def close(self) -> None:
        if self.counter is not None:
            self.counter.close()
            self.counter = None


class KernelCounting:
    """``--enable_op_profiling`` under the QEMU plugin: per-block counts over the measured runs.

    Created before the model is loaded, so that every block of LiteRT's library is counted per
    block; ``reset`` after the warm-up, ``lines`` after the measured runs. Off, it does nothing.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.counter: BlockCounter | None = None
        self.reason = "nothing was counted"
        self.label = ""
        if not enabled:
            return
        from device_agent.qemu.counter import emulation_label, open_block_counter

        self.label = emulation_label()
        opened = open_block_counter()
        if isinstance(opened, str):
            self.reason = opened
            return
        self.counter = opened
        opened.on()

    def reset(self) -> None:
        if self.counter is not None:
            self.counter.reset()

    def take(self) -> dict[int, int] | None:
        if self.counter is None:
            return None
        counts = self.counter.dump()
        if counts is None:
            self.reason = (
                "the QEMU plugin did not answer the per-block markers: prepare the userland again "
                "(python -m device_agent qemu prepare) to rebuild it"
            )
        return counts

    def lines(self, counts: dict[int, int] | None, runs: int) -> list[str]:
        if not self.enabled:
            return []
        if not counts or runs < 1:
            return [format_kernels_unavailable(self.label, self.reason)]
        from device_agent.qemu.kernels import attribute, read_maps

        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            totals = attribute(counts, read_maps(fh.read()))
        total = sum(totals.values())
        ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        if len(ordered) > KERNEL_ROWS:
            kept, rest = ordered[: KERNEL_ROWS - 1], ordered[KERNEL_ROWS - 1 :]
            other = ("(other)", f"(other {len(rest)} functions)")
            ordered = [*kept, (other, sum(insns for _, insns in rest))]
        rows = tuple(
            KernelRow(library=lib, function=func, instructions=insns / runs, percent=100.0 * insns / total)
            for (lib, func), insns in ordered
        )
        return format_kernels(KernelProfile(label=self.label, runs=runs, total=total / runs, rows=rows))

    def close(self) -> None:
        if self.counter is not None:
            self.counter.close()
            self.counter = None
