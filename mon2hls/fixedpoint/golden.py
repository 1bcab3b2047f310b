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

    def __call__(self, operand: np.ndarray) -> np.ndarray:
        if self.path == "float64":
            acc = (operand.astype(np.float64) @ self.weights_t).astype(np.int64)
        elif self.path == "int64":
            acc = operand.astype(np.int64) @ self.weights_t
        else:
            acc = operand.astype(object) @ self.weights_t
        if not self.multiply_int64:
            acc = acc.astype(object)
        return shift_round(acc * self.multipliers, self.shift, Rounding.AP_RND)


class _Saturator:
    """SAT into one format, recording the largest |value| seen and whether any value changed."""

    def __init__(self, fmt: FixedFormat, rows: int, track_peak: bool) -> None:
        self.lo, self.hi = fmt.min_code, fmt.max_code
        self.track_peak = track_peak
        wide = not fits_int64(4 * fmt.max_abs_code)
        self.peak = np.zeros(rows, dtype=object if wide else np.int64)
        self.saturated = np.zeros(rows, dtype=bool)

    def __call__(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if values.size == 0:
            return values
        if self.track_peak:
            peak = np.max(np.abs(values), axis=1)
            self.peak[rows] = np.maximum(self.peak[rows], peak.astype(self.peak.dtype))
        clipped = np.minimum(np.maximum(values, self.lo), self.hi)
        changed = np.any(clipped != values, axis=1)
        if np.any(changed):
            self.saturated[rows[changed]] = True
        return clipped


def _as_state(values: Any, fmt: FixedFormat) -> np.ndarray:
    """Hold codes as int64 when the format's sums fit, else as Python integers."""
    if fits_int64(4 * fmt.max_abs_code):
        return np.asarray(values).astype(np.int64)
    return np.asarray(values).astype(object)


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
    sat_state = _Saturator(state_fmt, batch, track_peak=True)
    sat_logit = _Saturator(design.logit_format, batch, track_peak=False)
    all_rows = np.arange(batch)

    injection = _Product(design.injection, fmt_in)
    operator = _Product(design.operator, state_fmt)
    output = _Product(design.output, state_fmt)
    logger.debug("golden paths: injection %s, operator %s, output %s", injection.path, operator.path, output.path)

    # Injection: d = SAT_s(RND(acc * mult_u, shift_u) + bias).
    bias = _as_state(design.bias_state, state_fmt)
    d_all = sat_state(_as_state(injection(x), state_fmt) + bias, all_rows)

    z_final = _as_state(np.zeros((batch, n), dtype=np.int64), state_fmt)
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
            t = sat_state(z + _as_state(operator(z), state_fmt) + d, active)
            z_next = np.maximum(t, 0)
            residual = np.max(np.abs(z_next - z), axis=1) if n else np.zeros(len(active), dtype=np.int64)
            z = z_next
        else:
            h = sat_state(2 * z - u, active)
            w = sat_state(h + d, active)
            zh = sat_state(_as_state(operator(w), state_fmt), active)
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

    # Logits: y = SAT_y(RND(acc * mult_o, shift_o) + bias_out).
    logits = sat_logit(output(z_final) + design.bias_logit.astype(object), all_rows)
    logits = np.asarray(logits).astype(np.int64)

    return GoldenResult(
        logits=logits,
        iterations=iterations,
        converged=converged,
        state=np.asarray(z_final).astype(np.int64),
        max_abs_state=np.array([int(v) for v in sat_state.peak], dtype=np.int64),
        saturated=sat_state.saturated | sat_logit.saturated,
    )
