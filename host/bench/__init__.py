"""Benchmarking: checking models, planning interleaved trials, running them on devices in
parallel, and the statistics over them (``stats``, ``summary``)."""

from __future__ import annotations

from host.bench.models import model_file
from host.bench.plan import PlannedTrial, plan_trials
from host.bench.runner import BenchOutcome, BenchProgress, run_bench

__all__ = ["model_file", "PlannedTrial", "plan_trials", "BenchOutcome", "BenchProgress", "run_bench"]
