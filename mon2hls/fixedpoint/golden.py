"""The bit-exact golden model of the accelerator: section 4 of docs/datapath.md on integer codes.

The batch is processed together. Each iteration acts only on the inputs
that have not stopped yet, so the cost falls as inputs converge. Products
are exact whatever the widths: a matrix product runs in float64 BLAS when
every partial sum stays below 2^53 (all partial sums are then integers that
float64 holds exactly, in any summation order), in int64 when it stays below
2^62, and with Python integers otherwise; the same holds for acc * mult.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis import Splitting
from ..errors import ConfigError
from .design import DatapathDesign
from .formats import FixedFormat, Rounding, fits_int64, shift_round
from .stored import StoredMatrix

__all__ = ["GoldenResult", "run_golden"]

logger = logging.getLogger(__name__)

_FLOAT_EXACT = 2**53


@dataclass(frozen=True, eq=False)
class GoldenResult:
    """Outputs of the golden model for a batch of B inputs.

    `logits` (B x k) are logit codes, `state` (B x n) the final z codes,
    `iterations` the iteration count k of each input and `converged` whether
    its stopping rule fired (False when it hit max_iterations). Diagnostics:
    `max_abs_state` is the largest |value| a state register received before
    its saturator, per input, in codes; `saturated` marks inputs where any
    saturator (state or logit) changed a value.
    """

    logits: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    state: np.ndarray
    max_abs_state: np.ndarray
    saturated: np.ndarray

    def __len__(self) -> int:
        return int(self.logits.shape[0])

    @property
    def predictions(self) -> np.ndarray:
        return np.argmax(self.logits, axis=1)


class _Product:
    """Computes RND(Q v * mult, shift) row by row, on the exact integer path that the bounds allow."""

    def __init__(self, matrix: StoredMatrix, operand: FixedFormat) -> None:
        self.shift = matrix.shift
        largest = operand.max_abs_code
        bound = max((s * largest for s in matrix.row_abs_sums), default=0)
        product_bound = bound * int(max(matrix.multipliers, default=0))
        if bound < _FLOAT_EXACT:
            self.path = "float64"
            self.weights_t = np.ascontiguousarray(matrix.codes.T, dtype=np.float64)
        elif fits_int64(bound):
            self.path = "int64"
            self.weights_t = np.ascontiguousarray(matrix.codes.T, dtype=np.int64)
        else:
            self.path = "object"
            self.weights_t = matrix.codes.T.astype(object)
        half = 1 << (self.shift - 1) if self.shift > 0 else 0
        self.multiply_int64 = self.path != "object" and fits_int64(product_bound + half)
        self.multipliers = matrix.multipliers if self.multiply_int64 else matrix.multipliers.astype(object)

        # When acc * mult + 2^(shift-1) stays below 2^53 too, the whole step
        # runs in float64: every value is an integer that float64 holds exactly,
        # and scaling by 2^-shift then flooring is exact.
        rounded_bound = product_bound + half if self.shift > 0 else product_bound << -self.shift
        self.rounded_bound = rounded_bound >> self.shift if self.shift > 0 else rounded_bound
        self.float_exact = self.path == "float64" and rounded_bound < _FLOAT_EXACT
        self.multipliers_float = matrix.multipliers.astype(np.float64)
        self.half_float = float(half)
        self.scale_float = 2.0**-self.shift

    def __call__(self, operand: np.ndarray) -> np.ndarray:
        """Return RND(Q v * mult, shift) per row: float64 codes on the float-exact path, else integers."""
        if self.float_exact:
            product = operand.astype(np.float64, copy=False) @ self.weights_t
            product *= self.multipliers_float
            if self.shift > 0:
                product += self.half_float
                product *= self.scale_float
                np.floor(product, out=product)
            else:
                product *= self.scale_float
            return product
        if self.path == "float64":
            acc = (operand.astype(np.float64) @ self.weights_t).astype(np.int64)
        elif self.path == "int64":
            acc = operand.astype(np.int64) @ self.weights_t
        else:
            acc = operand.astype(object) @ self.weights_t
        if not self.multiply_int64:
            return shift_round(acc.astype(object) * self.multipliers, self.shift, Rounding.AP_RND)

        # The bounds checked in __init__ make AP_RND safe in int64 without shift_round's checks.
        product = acc * self.multipliers
        if self.shift <= 0:
            return product << -self.shift
        product += 1 << (self.shift - 1)
        product >>= self.shift
        return product


class _Saturator:
    """SAT into one format, recording the largest |value| seen and whether any value changed."""

    def __init__(self, fmt: FixedFormat, rows: int, track_peak: bool, floating: bool = False) -> None:
        self.lo, self.hi = fmt.min_code, fmt.max_code
        self.track_peak = track_peak
        if floating:
            dtype: Any = np.float64
        else:
            dtype = object if not fits_int64(4 * fmt.max_abs_code) else np.int64
        self.peak = np.zeros(rows, dtype=dtype)
        self.saturated = np.zeros(rows, dtype=bool)

    def __call__(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if values.size == 0:
            return values
        # Two reductions per row give both the peak and whether any value is
        # out of range. A certified design never clips, so that path is rare.
        top = np.max(values, axis=1)
        bottom = np.min(values, axis=1)
        if self.track_peak:
            peak = np.maximum(top, -bottom)
            self.peak[rows] = np.maximum(self.peak[rows], peak.astype(self.peak.dtype))
        changed = (top > self.hi) | (bottom < self.lo)
        if not np.any(changed):
            return values
        self.saturated[rows[changed]] = True
        return np.minimum(np.maximum(values, self.lo), self.hi)


def _exact_int64(values: np.ndarray) -> np.ndarray:
    """Convert integer-valued codes (float64, int64 or Python integers) to int64."""
    values = np.asarray(values)
    if values.dtype == object:
        return np.array([int(v) for v in values.ravel()], dtype=np.int64).reshape(values.shape)
    return values.astype(np.int64)


def _as_state(values: Any, fmt: FixedFormat, floating: bool = False) -> np.ndarray:
    """Hold codes as exact float64 (`floating`), as int64 when the format's sums fit, else as Python integers."""
    if floating:
        return np.asarray(values).astype(np.float64, copy=False)
    if fits_int64(4 * fmt.max_abs_code):
        return np.asarray(values).astype(np.int64, copy=False)
    return np.asarray(values).astype(object, copy=False)


def run_golden(design: DatapathDesign, x_codes: Any, progress: bool = False) -> GoldenResult:
    """Run the accelerator's arithmetic on a batch of input codes (B x d) and return every output word.

    Injection, then FB or PR iterations until res <= tolerance_lsb or
    max_iterations, then the logits, exactly as docs/datapath.md section 4
    specifies. `progress` shows a bar of iterations on stderr (when it is a TTY).
    """
    x = np.asarray(x_codes)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != design.input_features:
        raise ConfigError(f"input codes must be a B x {design.input_features} array, not shape {x.shape}")
    fmt_in = design.input_format
    if x.size and not np.all(fmt_in.contains(x)):
        raise ConfigError(
            f"input codes must lie in [{fmt_in.min_code}, {fmt_in.max_code}] for the input format {fmt_in}; "
            f"convert real inputs with encode_inputs"
        )
    batch, n = x.shape[0], design.hidden_units
    state_fmt = design.state_format
    all_rows = np.arange(batch)

    injection = _Product(design.injection, fmt_in)
    operator = _Product(design.operator, state_fmt)
    output = _Product(design.output, state_fmt)
    # The state stays in float64 when every value and sum of the iteration is
    # an integer below 2^53; the results are the same integers either way.
    floating = (
        injection.float_exact
        and operator.float_exact
        and 4 * state_fmt.max_abs_code + injection.rounded_bound + operator.rounded_bound < _FLOAT_EXACT
    )
    logger.debug(
        "golden paths: injection %s, operator %s, output %s, float64 state %s",
        injection.path, operator.path, output.path, floating,
    )
    sat_state = _Saturator(state_fmt, batch, track_peak=True, floating=floating)
    sat_logit = _Saturator(design.logit_format, batch, track_peak=False)

    # Injection: d = SAT_s(RND(acc * mult_u, shift_u) + bias).
    bias = _as_state(design.bias_state, state_fmt, floating)
    d_all = sat_state(_as_state(injection(x), state_fmt, floating) + bias, all_rows)

    z_final = _as_state(np.zeros((batch, n), dtype=np.int64), state_fmt, floating)
    iterations = np.zeros(batch, dtype=np.int64)
    converged = np.zeros(batch, dtype=bool)

    active = all_rows
    z = z_final.copy()
    u = z_final.copy()
    d = d_all
    tolerance = design.tolerance_lsb
    show = progress and sys.stderr.isatty()
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=design.max_iterations, desc="golden iterations", unit="it", file=sys.stderr)

    for k in range(1, design.max_iterations + 1):
        if active.size == 0:
            break
        if design.splitting is Splitting.FB:
            # The identity part of M = I + G is the exact term z.
            t = sat_state(z + _as_state(operator(z), state_fmt, floating) + d, active)
            z_next = np.maximum(t, 0)
            residual = np.max(np.abs(z_next - z), axis=1) if n else np.zeros(len(active), dtype=np.int64)
            z = z_next
        else:
            # z = max(u, 0), so 2 z - u is exactly |u|. u already passed its
            # saturator, so |u| fits unless some u is the most negative code.
            h = np.abs(u)
            if u.size and np.min(u) <= state_fmt.min_code:
                h = sat_state(h, active)
            w = sat_state(h + d, active)
            zh = sat_state(_as_state(operator(w), state_fmt, floating), active)
            u_next = sat_state(2 * zh - h, active)
            z = np.maximum(u_next, 0)
            residual = np.max(np.abs(u_next - u), axis=1) if n else np.zeros(len(active), dtype=np.int64)
            u = u_next

        stop = residual <= tolerance
        last = k == design.max_iterations
        done = np.ones(len(active), dtype=bool) if last else stop
        if np.any(done):
            finished = active[done]
            z_final[finished] = z[done]
            iterations[finished] = k
            converged[finished] = stop[done]
            keep = ~done
            active, z, u, d = active[keep], z[keep], u[keep], d[keep]
        if bar is not None:
            bar.update(1)
            bar.set_postfix(active=int(active.size))
    if bar is not None:
        bar.close()

    # Logits: y = SAT_y(RND(acc * mult_o, shift_o) + bias_out), in Python
    # integers unless int64 holds every sum.
    z_codes = _exact_int64(z_final) if floating else z_final
    rounded = output(z_codes.astype(np.float64) if output.float_exact else z_codes)
    rounded = _exact_int64(rounded) if output.float_exact else rounded
    if fits_int64(output.rounded_bound + design.logit_format.max_abs_code) and rounded.dtype != object:
        logits = sat_logit(rounded + design.bias_logit, all_rows)
    else:
        logits = sat_logit(rounded.astype(object) + design.bias_logit.astype(object), all_rows)
    logits = np.asarray(logits).astype(np.int64)

    return GoldenResult(
        logits=logits,
        iterations=iterations,
        converged=converged,
        state=_exact_int64(z_final),
        max_abs_state=_exact_int64(sat_state.peak),
        saturated=sat_state.saturated | sat_logit.saturated,
    )
