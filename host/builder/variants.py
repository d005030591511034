"""The optimization matrix: which model (dense or pruned) in which precision, by one name each.

``dense`` and ``pruned`` are the guide's two models (float32; the pruned one with its sparse 1x1
filters behind DENSIFY ops). The others cross them with the converter's precisions:

- ``-fp16``: float16 weights (``supported_types=[float16]``), dequantized to float32 when the
  model loads; the pruned one keeps its sparse storage (DENSIFY then DEQUANTIZE);
- ``-int8``: full-integer post-training quantization, calibrated on training images, with float
  input and output (QUANTIZE/DEQUANTIZE at the edges) so every variant takes the same inputs. The
  pruned one is the pruned model quantized after pruning with ``EXPERIMENTAL_SPARSITY`` kept: the
  converter stores its int8 filters sparse behind DENSIFY too. (tfmot's sparsity-preserving
  quantization-aware training would need a second fine-tuning run; post-training quantization
  keeps the zeros already, because a zero weight quantizes to zero.)
- ``dense-dynamic``: dynamic-range quantization (int8 weights, float activations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from host.errors import UsageError

__all__ = ["Variant", "VARIANTS", "DEFAULT_VARIANTS", "parse_variants", "MIN_CALIBRATION_SAMPLES"]

Precision = Literal["fp32", "fp16", "int8", "dynamic"]


@dataclass(frozen=True)
class Variant:
    """One cell of the matrix: ``base`` is the Keras model converted, ``precision`` how."""

    name: str
    base: Literal["dense", "pruned"]
    precision: Precision

    @property
    def sparse(self) -> bool:
        """Converted with ``EXPERIMENTAL_SPARSITY``: its 1x1 filters must come through DENSIFY ops."""
        return self.base == "pruned"

    @property
    def file_name(self) -> str:
        return f"{self.name}.tflite"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("dense", "dense", "fp32"),
        Variant("pruned", "pruned", "fp32"),
        Variant("dense-fp16", "dense", "fp16"),
        Variant("pruned-fp16", "pruned", "fp16"),
        Variant("dense-int8", "dense", "int8"),
        Variant("pruned-int8", "pruned", "int8"),
        Variant("dense-dynamic", "dense", "dynamic"),
    )
}
"""Every variant, in the matrix's order."""

DEFAULT_VARIANTS = ("dense", "pruned")
"""The guide's two models: what ``lab build`` and ``lab run`` make unless asked for more."""

MIN_CALIBRATION_SAMPLES = 100
"""Training images int8 calibration needs at least (it uses up to 200)."""


def parse_variants(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``--variants`` as names in the matrix's order: a comma-separated list or ``all``; ``dense``
    and ``pruned`` are always in it (the baseline and the guide's subject).

    Raises:
        UsageError: an unknown name (the message lists the valid ones).
    """
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if names == ["all"]:
        return tuple(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise UsageError(
            f"unknown variant(s) {', '.join(unknown)}: choose from {', '.join(VARIANTS)}, or all"
        )
    wanted = set(names) | set(DEFAULT_VARIANTS)
    return tuple(name for name in VARIANTS if name in wanted)
