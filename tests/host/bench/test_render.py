"""`lab bench`'s table names its statistic, shows no CI from fewer than 3 trials, labels an emulated
arm64 device as such, and shows its instructions; its JSON says the same."""

from __future__ import annotations

import dataclasses

import numpy as np
from rich.console import Console

from device_agent.output import InstructionCounts
from host.cli.render.bench import summary_table
from host.bench.summary import summarize
from tests.host.synthetic import emulated_device, guide_models, synthetic_trial


def _table_text(summaries: list) -> str:
    console = Console(width=250, record=True)
    console.print(summary_table(summaries, title="run 1"))
    return console.export_text()


def _trials(n: int, device=None, instructions: dict[str, int] | None = None) -> list:
    rng = np.random.default_rng(1)
    trials = []
    for i in range(n):
        for model in guide_models():
            trial = synthetic_trial(1, device or emulated_device(), model, latency_us=100.0, rng=rng, index=i)
            if instructions:
                counts = InstructionCounts(first=1, min=1, median=instructions[model.name], count=10,
                                           label="emulated, qemu-user neoverse-n1")
                trial = dataclasses.replace(trial, result=dataclasses.replace(trial.result, instructions=counts))
            trials.append(trial)
    return trials


def test_the_table_names_its_statistic_and_hides_a_ci_from_two_trials() -> None:
    text = _table_text(summarize(_trials(2)))
    assert "latency (p5 invoke) [95% CI]" in text
    assert "[CI n/a: 2 trials]" in text
    assert "instructions/inference" not in text  # nothing counted on this device
    assert "emulated device: measures this host's CPU" in text
    assert "[CI n/a" not in _table_text(summarize(_trials(3)))


def test_an_emulated_arm64_device_is_labelled_and_shows_its_instructions() -> None:
    arm = dataclasses.replace(emulated_device(), abis=("arm64-v8a",), emulation="qemu-user neoverse-n1")
    text = _table_text(summarize(_trials(3, arm, {"dense.tflite": 121_308, "pruned.tflite": 74_684})))
    assert "emulated arm64 under QEMU (qemu-user neoverse-n1): instructions are exact" in text
    assert "measures this host's CPU" not in text
    assert "instructions/inference" in text and "121,308" in text and "74,684" in text
