"""benchmark_model's text output: the records it holds, a writer and a parser.

The runner (``device_agent.bench``) writes with ``format_*``; the host parses every device's
output with ``parse`` — one parser for real benchmark_model binaries and for the emulated device.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RunStats", "BenchmarkResult", "parse"]


@dataclass(frozen=True)
class RunStats:
    """One ``count=… first=… curr=… min=… max=… avg=… std=… [p5=… median=… p95=…]`` line, in µs.

    The short form ``count=N curr=X`` (one run, or ``(all same)``) fills only count and curr;
    for ``(all same)`` every statistic equals curr.
    """

    count: int
    curr_us: float
    first_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None
    p5_us: float | None = None
    median_us: float | None = None
    p95_us: float | None = None


@dataclass(frozen=True)
class BenchmarkResult:
    """Everything one benchmark_model run printed that the lab keeps, in µs and MB."""

    runs: RunStats | None  # the measured runs
    warmup: RunStats | None = None
    init_us: float | None = None
    first_inference_us: float | None = None
    warmup_avg_us: float | None = None
    inference_avg_us: float | None = None
    peak_memory_init_mb: float | None = None  # "Peak memory footprint (MB): init=… overall=…" (2020)
    peak_memory_overall_mb: float | None = None
    memory_delta_init_mb: float | None = None  # "Memory footprint delta from the start of the tool (MB)"
    memory_delta_overall_mb: float | None = None
    periodic_peak_memory_mb: float | None = None  # "Overall peak memory footprint (MB) via periodic monitoring"
    num_threads: int | None = None
    use_xnnpack: bool | None = None
    xnnpack_applied: bool | None = None  # the XNNPACK delegate was created/applied
    model_size_mb: float | None = None
    timer_overhead_us: float | None = None  # device agent runner only: clock + call overhead per invoke
    runner: str | None = None  # device agent runner only: its name and LiteRT version
    warnings: tuple[str, ...] = ()
