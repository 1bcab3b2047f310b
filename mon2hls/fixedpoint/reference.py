"""Float64 references for a datapath: the stored operator's equilibrium and the measured displacement.

These are what the certificate's bounds talk about. `stored_equilibrium`
is x*, the exact (unrounded) fixed point of the operator the hardware stores
with the injection it computes; `measure_displacement` compares the hardware
state with the float model's own equilibrium on real data.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..analysis import Splitting
from ..model import MonModel
from ..solve import solve_injection
from .certificate import DisplacementBound
from .design import DatapathDesign, _iteration_matrix
from .golden import GoldenResult, run_golden

__all__ = ["stored_injection", "stored_equilibrium", "float_equilibrium", "measure_displacement"]


def stored_injection(design: DatapathDesign, x_codes: Any) -> np.ndarray:
    """Return d (B x n, real), the injection exactly as the hardware computes it, from the golden model's rule."""
    from .golden import _Product  # the same exact integer product the golden model uses

    x = np.atleast_2d(np.asarray(x_codes, dtype=np.int64))
    product = _Product(design.injection, design.input_format)
    codes = np.asarray(product(x)).astype(object) + design.bias_state.astype(object)
    codes = np.clip(codes, design.state_format.min_code, design.state_format.max_code)
    return design.state_format.to_real(codes.astype(np.int64))


def stored_equilibrium(
    design: DatapathDesign, x_codes: Any, tol: float = 1e-13, max_iterations: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Return (z*, x*) of the stored operator in float64, for a batch of input codes.

    FB: z* = ReLU(T z* + d) with T = I + G_eff, and x* = z*. PR: u* = T |u*| + 2 V_eff d
    with T = 2 V_eff - I, z* = ReLU(u*), and x* = u* (the iterated vector).
    Iterates without rounding until the step falls below `tol` (absolute,
    in real units); needs rho < 1 to converge.
    """
    d = stored_injection(design, x_codes)
    stored = design.operator.effective()
    T_t = _iteration_matrix(stored, design.splitting).T
    fb = design.splitting is Splitting.FB
    offset = d if fb else 2.0 * d @ stored.T
    x = np.zeros_like(d)
    for _ in range(max_iterations):
        x_next = np.maximum(x @ T_t + offset, 0.0) if fb else np.abs(x) @ T_t + offset
        step = float(np.max(np.abs(x_next - x))) if x.size else 0.0
        x = x_next
        if step <= tol:
            break
    z = x if fb else np.maximum(x, 0.0)
    return z, x


def float_equilibrium(design: DatapathDesign, model: MonModel, x_codes: Any, tol: float = 1e-10) -> np.ndarray:
    """Return the float model's equilibrium z* (B x n) for the real inputs the codes stand for."""
    raw = design.input_format.to_real(np.atleast_2d(np.asarray(x_codes, dtype=np.int64)))
    U_raw, b_raw = model.folded_input_layer()
    C = raw @ U_raw.T + b_raw
    return solve_injection(model.W, C, design.splitting, design.alpha, tol=tol, max_iter=20_000).z


def measure_displacement(
    design: DatapathDesign,
    model: MonModel,
    x_codes: Any,
    result: GoldenResult | None = None,
) -> DatapathDesign:
    """Return the design with the displacement part's `measured` figure set from a data set.

    measured = max over inputs of norm(z_float* - z_hw, 2), in real units,
    with z_hw the golden model's final state.
    """
    if result is None:
        result = run_golden(design, x_codes)
    z_float = float_equilibrium(design, model, x_codes)
    z_hw = design.state_format.to_real(result.state)
    distances = np.linalg.norm(z_float - z_hw, axis=1)
    measured = float(np.max(distances)) if distances.size else math.nan
    part = design.certificate.displacement
    if part is None:
        part = DisplacementBound(0.0, 0.0, math.nan, math.nan, math.nan)
    part = dataclasses.replace(part, measured=measured, measured_inputs=int(distances.size))
    certificate = dataclasses.replace(design.certificate, displacement=part)
    return dataclasses.replace(design, certificate=certificate)
