"""Exact cycle count of the Verilog accelerator, and the multiply-count lower bound."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .layout import LaneLayout, lane_layout

__all__ = ["PIPELINE_DRAIN", "CycleEstimate", "cycles"]

#: Cycles from the last tile issue of a product to its last result written:
#: ROM read, products, accumulation, multiplier, round and write.
PIPELINE_DRAIN = 4


@dataclass(frozen=True)
class CycleEstimate:
    """Cycles of one inference of the Verilog core, term by term (see `cycles`)."""

    parallel: int  #: P, multipliers working at once
    lanes: int  #: C, column lanes
    rows: int  #: R, rows per tile
    overhead: int  #: the idle cycle in which the core sees ap_start
    load: int  #: one cycle per input beat
    injection: int  #: T_U + 4
    per_iteration: int  #: T_OP + 4 + 1 (the elementwise update and stopping rule)
    logits: int  #: T_O + 4
    output: int  #: k + 1 output beats
    multiplies_fixed: int  #: n d + k n, the multiplies outside the iteration
    multiplies_per_iteration: int  #: n^2

    def total(self, iterations: int) -> int:
        """Cycles from the cycle an idle core sees ap_start to the last output beat, both counted."""
        return (self.overhead + self.load + self.injection + iterations * self.per_iteration
                + self.logits + self.output)

    def lower_bound(self, iterations: int) -> int:
        """ceil((n d + I n^2 + k n) / P): the cycles P multipliers need for the products alone."""
        multiplies = self.multiplies_fixed + iterations * self.multiplies_per_iteration
        return math.ceil(multiplies / self.parallel)

    def to_dict(self) -> dict:
        return {
            "parallel": self.parallel,
            "lanes": self.lanes,
            "rows": self.rows,
            "overhead": self.overhead,
            "load": self.load,
            "injection": self.injection,
            "per_iteration": self.per_iteration,
            "logits": self.logits,
            "output": self.output,
        }


def cycles(design, parallel: int) -> CycleEstimate:
    """Count the cycles of one inference of the generated RTL at parallelism P.

    With x_stream never empty and y_stream always ready, an inference of I
    iterations takes, from the cycle an idle core sees ap_start to the cycle
    of its last output beat (both counted),

        total(I) = 1 + XB + (T_U + 4) + I (T_OP + 5) + (T_O + 4) + (k + 1)

    with XB input beats, C = min(P, n), R = min(max(1, floor(P / n)), max(n, k)),
    T_U = ceil(n / R) ceil(XB E / C), T_OP = ceil(n / R) ceil(n / C) and
    T_O = ceil(k / R) ceil(n / C). Each product issues one tile per cycle and
    drains a 4-stage pipeline; each iteration adds one elementwise cycle
    (the update and the stopping rule). With auto_restart the next inference
    sees ap_start in the cycle after the last output beat, so back to back
    inferences take total(I) cycles each. Stalls on either stream add their
    own length.
    """
    layout: LaneLayout = lane_layout(
        design.hidden_units, design.input_features, design.classes,
        design.inputs_per_beat, design.input_beats, parallel,
    )
    n, d, k = design.hidden_units, design.input_features, design.classes
    return CycleEstimate(
        parallel=layout.parallel,
        lanes=layout.lanes,
        rows=layout.rows,
        overhead=1,
        load=design.input_beats,
        injection=layout.injection_tiles + PIPELINE_DRAIN,
        per_iteration=layout.operator_tiles + PIPELINE_DRAIN + 1,
        logits=layout.output_tiles + PIPELINE_DRAIN,
        output=k + 1,
        multiplies_fixed=n * d + k * n,
        multiplies_per_iteration=n * n,
    )
