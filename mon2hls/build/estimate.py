"""Estimates of an accelerator's speed and size, made before any synthesis.

Every figure here is an estimate from the datapath's sizes, formats and
parallelism; the real numbers come from the Vitis HLS or synthesis reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..targets import Target

__all__ = [
    "UNKNOWN_TARGET_PARALLEL",
    "CycleEstimate",
    "ResourceEstimate",
    "default_parallel",
    "check_parallel",
    "max_useful_parallel",
    "estimate_cycles",
    "estimate_resources",
]

#: Default parallelism on a device of unknown capacity (a bare --part): small
#: enough for the smallest Zynq-7000 and UltraScale+ parts mon2hls supports.
UNKNOWN_TARGET_PARALLEL = 16

#: Pipeline depth assumed for each matrix-vector product (read, multiply,
#: accumulate, requantize, saturate): a few cycles, added once per product.
PRODUCT_LATENCY = 8


def default_parallel(hidden_units: int, target: Target) -> int:
    """Choose the number of parallel multipliers: min(n, DSP count), or min(n, 16) when the DSP count is unknown.

    One multiplier per hidden unit computes a whole row block per cycle; more
    than n buys little, and more than the device's DSP slices does not fit.
    """
    limit = target.dsp_count if target.dsp_count is not None else UNKNOWN_TARGET_PARALLEL
    return max(1, min(hidden_units, limit))


def max_useful_parallel(hidden_units: int, classes: int) -> int:
    """Return the most multipliers the datapath can keep busy: n * max(n, k).

    The Verilog back end uses C = min(P, n) column lanes and
    R = min(max(1, floor(P / n)), max(n, k)) rows of them, so at most
    n * max(n, k) of P multipliers ever work at once.
    """
    return hidden_units * max(hidden_units, classes)


def check_parallel(
    parallel: int, target: Target, hidden_units: int | None = None, classes: int | None = None
) -> int:
    """Validate a requested parallelism against the target's DSP slices and, when the model's sizes are
    given, against the multipliers its datapath can use (`max_useful_parallel`).
    """
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ConfigError(f"parallelism must be a whole number of multipliers, at least 1, not {parallel!r}")
    dsp = target.dsp_count
    if dsp is not None and parallel > dsp:
        raise ConfigError(
            f"parallelism {parallel} exceeds the {dsp} DSP slices of {target.name} ({target.part}); "
            f"choose --parallel from 1 to {dsp}"
        )
    if hidden_units is not None and classes is not None:
        usable = max_useful_parallel(hidden_units, classes)
        if parallel > usable:
            raise ConfigError(
                f"parallelism {parallel} exceeds the {usable:,} multipliers a datapath with {hidden_units} "
                f"hidden units and {classes} classes can use (n * max(n, k)); "
                f"choose --parallel from 1 to {usable}"
            )
    return parallel


@dataclass(frozen=True)
class CycleEstimate:
    """Clock cycles of one inference, by phase; `total(k)` adds k iterations."""

    load: int
    injection: int
    per_iteration: int
    output: int
    source: str = "estimate"

    def total(self, iterations: int) -> int:
        """Cycles of an inference that iterates `iterations` times: load + injection + k per_iteration + output."""
        return self.load + self.injection + iterations * self.per_iteration + self.output

    def to_dict(self, median_iterations: float | None, max_iterations: int, clock_mhz: float) -> dict[str, Any]:
        """Describe the phases and the totals at the iteration limit and at the median count (rounded up)."""
        at_max = self.total(max_iterations)
        result: dict[str, Any] = {
            "source": self.source,
            "load": self.load,
            "injection": self.injection,
            "per_iteration": self.per_iteration,
            "output": self.output,
            "max_iterations": max_iterations,
            "total_at_max_iterations": at_max,
            "latency_us_at_max_iterations": at_max / clock_mhz,
        }
        if median_iterations is not None:
            at_median = self.total(int(math.ceil(median_iterations)))
            result["median_iterations"] = median_iterations
            result["total_at_median_iterations"] = at_median
            result["latency_us_at_median_iterations"] = at_median / clock_mhz
        return result


def estimate_cycles(inputs: int, hidden_units: int, classes: int, input_width: int, parallel: int) -> CycleEstimate:
    """Estimate the cycles of each phase with P multipliers working on one product at a time.

    load = ceil(d / E) stream beats with E = floor(32 / Wx) codes a beat;
    injection = ceil(n d / P), per_iteration = ceil(n n / P),
    output = ceil(k n / P) + k + 1 output beats; each product adds a
    pipeline latency of PRODUCT_LATENCY cycles.
    """
    per_beat = max(1, 32 // input_width)
    load = math.ceil(inputs / per_beat)
    injection = math.ceil(hidden_units * inputs / parallel) + PRODUCT_LATENCY
    per_iteration = math.ceil(hidden_units * hidden_units / parallel) + PRODUCT_LATENCY
    output = math.ceil(classes * hidden_units / parallel) + PRODUCT_LATENCY + classes + 1
    return CycleEstimate(load, injection, per_iteration, output)


@dataclass(frozen=True)
class ResourceEstimate:
    """Estimated use of DSP slices, block RAM, LUTs and flip-flops."""

    dsp: int
    bram36: int
    lut: int
    ff: int
    weight_bits: int

    def to_dict(self, target: Target) -> dict[str, Any]:
        rows = {}
        for kind, used in (("DSP", self.dsp), ("BRAM36", self.bram36), ("LUT", self.lut), ("FF", self.ff)):
            capacity = target.capacity(kind)
            rows[kind] = {
                "estimated": used,
                "available": capacity,
                "percent": None if not capacity else 100.0 * used / capacity,
                "fits": None if capacity is None else used <= capacity,
            }
        return {
            "note": "computed from the datapath sizes of the Verilog, not synthesized; LUT and FF are rough",
            "weight_bits": self.weight_bits,
            "resources": rows,
            "fits": None if not target.resources_known else all(r["fits"] for r in rows.values()),
        }


#: Widest port of a 7-series or UltraScale+ BRAM36 in simple dual-port
#: mode, and its depth at that width.
BRAM36_PORT_BITS = 72
BRAM36_DEPTH = 512

#: DSP slices besides the lanes: the per-row requantization multiply
#: (a 16-bit multiplier times a result of up to about 50 bits). Yosys
#: synth_xilinx counted P + 2 for the locuslab model at 6 bits.
REQUANTIZATION_DSP = 2


def estimate_resources(
    inputs: int,
    hidden_units: int,
    classes: int,
    bits: int,
    state_width: int,
    accumulator_width: int,
    parallel: int,
    input_width: int = 8,
) -> ResourceEstimate:
    """Estimate the resources of the Verilog datapath from its sizes.

    The Verilog reads one tile of R rows x C columns of B-bit codes a cycle,
    with C = min(P, n) and R = min(max(1, floor(P / n)), max(n, k)), from one
    ROM that holds the input, iteration and output matrices:
    width R C B bits, depth ceil(n/R) ceil(d/C) + ceil(n/R) ceil(n/C) +
    ceil(k/R) ceil(n/C) words, and BRAM36 = ceil(width / 72) ceil(depth / 512).
    DSP = P lanes + REQUANTIZATION_DSP.
    LUT = 1500 + P (accumulator + 2 Ws) + 3 n Ws / 8 + 3 d Wx and
    FF = 2000 + P (accumulator + Ws + B) + 3 n Ws + d Wx: a fixed control
    and AXI overhead, each lane's adder, requantizer and registers, the
    state vectors z, u and d in registers, and the input vector in a
    register with its lane multiplexers. LUT and FF are rough: Yosys counted
    27,113 LUT and 17,850 FF for the locuslab model at 6 bits and P = 87,
    where this rule gives about 28,200 and 20,100.
    """
    columns = min(parallel, hidden_units)
    rows = min(max(1, parallel // hidden_units), max(hidden_units, classes))
    width = rows * columns * bits
    depth = (
        math.ceil(hidden_units / rows) * math.ceil(inputs / columns)
        + math.ceil(hidden_units / rows) * math.ceil(hidden_units / columns)
        + math.ceil(classes / rows) * math.ceil(hidden_units / columns)
    )
    bram = math.ceil(width / BRAM36_PORT_BITS) * math.ceil(depth / BRAM36_DEPTH)

    weight_bits = bits * (hidden_units * inputs + hidden_units * hidden_units + classes * hidden_units)
    input_bits = inputs * input_width
    lut = 1500 + parallel * (accumulator_width + 2 * state_width) + (3 * hidden_units * state_width) // 8
    lut += 3 * input_bits
    ff = 2000 + parallel * (accumulator_width + state_width + bits) + 3 * hidden_units * state_width + input_bits
    return ResourceEstimate(
        dsp=parallel + REQUANTIZATION_DSP, bram36=bram, lut=lut, ff=ff, weight_bits=weight_bits
    )
