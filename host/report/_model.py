"""What reports hold: plain records built from the store, rendered by the terminal and the exporters.

The records' field types are only annotations here (``TYPE_CHECKING``): importing them, as every
exporter does, must not import numpy through ``host.bench.stats`` (``lab history --json`` on an
empty store renders an empty list of ``HistoryRow``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from host.bench.stats import Estimate, Verdict
    from host.records import DeviceFacts
    from host.store import RunInfo

__all__ = [
    "ModelRow",
    "OutputFigures",
    "KernelFigures",
    "DeviceReport",
    "TopOps",
    "RunReport",
    "HistoryRow",
    "ComparisonRow",
    "RunComparison",
    "CheckRow",
    "CheckResult",
]


@dataclass(frozen=True)
class OutputFigures:
    """A model's on-device output check in a report (``host.bench.verify``): ``status`` ok, wrong
    ("wrong output on this device") or failed, with its figures, rule and reference."""

    status: str
    inputs: int
    precision: str
    max_abs_error: float | None
    max_rel_error: float | None
    top1_agreement: float | None
    baseline_agreement: float | None  # with the baseline model on the host
    baseline: str | None
    tolerance: str
    reference: str
    error: str | None


@dataclass(frozen=True)
class KernelFigures:
    """What ran a model on a device (``host.bench.evidence``): XNNPACK microkernel families with
    their instructions per inference (QEMU-emulated devices count them), the precision the compute
    kernels used, whether a sparse kernel ran, and XNNPACK's share of the graph from the tool."""

    families: dict[str, float | None]
    precision: str | None
    sparse: bool
    delegated: str | None  # "12 of 12 nodes", as the tool said; None when it did not
    counted: bool  # per-kernel counts exist (else only the delegation is known)
    summary: str


@dataclass(frozen=True)
class ModelRow:
    """One model on one device in a run. Latencies in µs; ``speedup`` = baseline latency / this latency.

    ``latency_us`` is the median over trials of each trial's ``statistic`` (``host.figures``)."""

    model_name: str
    model_sha256: str
    role: str | None
    size_bytes: int
    trials_ok: int
    trials_failed: int
    statistic: str
    latency_us: Estimate | None
    typical_us: float | None  # median over trials of their median invoke
    tail_us: float | None  # median over trials of their p95 invoke
    disturbed: int  # trials whose slow invokes dragged their average (host.figures.disturbed)
    min_us: float | None
    init_us: float | None
    peak_memory_mb: float | None
    speedup: Estimate | None  # None for the baseline itself
    accuracy: float | None  # from the build manifest, when lab built the model
    sparsity: float | None  # 1x1-conv sparsity from the build manifest
    instructions: float | None  # median guest instructions per inference (QEMU), when counted
    errors: list[str] = field(default_factory=list)
    outputs: OutputFigures | None = None  # the on-device output check, when the run made one
    kernels: KernelFigures | None = None  # what ran: kernel families, their precision, XNNPACK's nodes


@dataclass(frozen=True)
class TopOps:
    """`lab report`: the costliest ops (or kernels, on an emulated device) of one model on one device."""

    model_name: str
    unit: str  # "ms" per op, or "instructions" per kernel
    ops: list[tuple[str, str, float, float | None]]  # (type or library, name or function, median, median %)


@dataclass(frozen=True)
class DeviceReport:
    device: DeviceFacts
    rows: list[ModelRow]
    notes: list[str]
    top_ops: list[TopOps] = field(default_factory=list)  # runs benchmarked with --ops


@dataclass(frozen=True)
class HistoryRow:
    """`lab history`: one model on one device in one run."""

    run_id: int
    started_at: datetime
    run_status: str
    model_name: str
    model_sha256: str
    role: str | None
    device_serial: str
    device_model: str | None
    device_kind: str
    statistic: str  # the per-trial figure behind latency_us (host.figures)
    latency_us: Estimate | None  # median over trials, with its bootstrap CI
    trials_ok: int
    trials_failed: int
    threads: list[int]
    xnnpack: list[bool]
    tools: list[str]  # sha256 of each benchmark tool
    tool_versions: list[str]
    instructions: float | None


@dataclass(frozen=True)
class RunReport:
    """The dense-vs-pruned report of one run: a section per device, and the runs before it for the plot."""

    run: RunInfo
    baseline_name: str | None  # the model speed-ups are relative to (the dense one when there is one)
    devices: list[DeviceReport]
    notes: list[str]
    history: list[HistoryRow]  # these models on these devices in this and earlier runs (oldest first)
    generated_at: datetime


@dataclass(frozen=True)
class ComparisonRow:
    model_name: str
    device_serial: str
    device_kind: str
    statistic: str  # per-trial figure compared: the headline ("p5"), or "min"/"avg" for older outputs
    median_a_us: Estimate | None  # median over A's trials of that figure
    median_b_us: Estimate | None
    ratio: Estimate | None  # median(B) / median(A)
    p_value: float | None
    verdict: Verdict
    reason: str
    matched_by: str  # "sha256", or "name" when the two runs hold different files of one name/role


@dataclass(frozen=True)
class RunComparison:
    run_a: RunInfo
    run_b: RunInfo
    rows: list[ComparisonRow]
    unmatched: list[str]  # groups present in one run only, or not comparable (device kinds differ)


CheckTest = Literal["latency", "typical", "tail", "init", "memory", "instructions", "presence", "outputs"]
CheckOutcome = Literal["ok", "regression", "missing", "failed"]


@dataclass(frozen=True)
class CheckRow:
    """One test of one model × device. ``latency`` tests the headline per-trial figure (p5 invoke),
    ``typical`` the median invoke, ``tail`` the p95 invoke and ``init``/``memory`` the init time and
    peak memory (when gated), ``instructions``
    the QEMU counts; ``presence`` says a baseline model failed every trial or is gone from the
    candidate; ``outputs`` that the candidate's outputs on the device were wrong (or not checkable)."""

    model_name: str
    device_serial: str
    device_kind: str
    metric: str  # "time" or "instructions"
    test: CheckTest
    statistic: str  # per-trial figure compared: "p5", "min", "avg", "median", "p95", "init", "memory", "instructions", or "—"
    baseline: float | None
    candidate: float | None
    ratio: Estimate | None
    p_value: float | None  # the rank test's own p-value
    p_adjusted: float | None  # Holm-adjusted over every test of the check (the one the verdict uses)
    outcome: CheckOutcome
    reason: str
    threshold: float | None = None  # the change this test allows (fraction), when it has one
    trials: tuple[int, int] = (0, 0)  # values compared: (baseline, candidate)
    ops: tuple[str, ...] = ()  # --ops: the ops behind a regression, largest share of the change first

    @property
    def regression(self) -> bool:
        """Whether this row fails the gate (a regression, or a model that failed or went missing)."""
        return self.outcome != "ok"


@dataclass(frozen=True)
class CheckResult:
    """`lab check`: exit code 1 on a regression or a missing/failed model, 0 when none, 2 when nothing could be compared."""

    candidate: RunInfo | None
    baselines: list[RunInfo]
    metric: str
    max_regression: float
    rows: list[CheckRow]
    reasons: list[str]  # why nothing was compared, or what was left out
    family: str = ""  # how the error rate over all tests is controlled, in words

    @property
    def regressions(self) -> list[CheckRow]:
        return [r for r in self.rows if r.regression]

    @property
    def exit_code(self) -> int:
        if not self.rows:
            return 2
        return 1 if self.regressions else 0
