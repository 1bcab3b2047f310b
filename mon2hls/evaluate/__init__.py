"""Evaluation of quantized models: the bit-width sweep and its plot."""

from .plot import plot_sweep
from .sweep import (
    REFINE_TOL,
    DisplacementCheck,
    SweepResult,
    SweepRow,
    check_displacement,
    parse_bits_range,
    refine_equilibria,
    sweep,
)

__all__ = [
    "REFINE_TOL",
    "DisplacementCheck",
    "SweepResult",
    "SweepRow",
    "check_displacement",
    "parse_bits_range",
    "plot_sweep",
    "refine_equilibria",
    "sweep",
]
