"""Matrices as the hardware stores them: B-bit codes, a 16-bit multiplier per row and one shift.

A stored matrix X ~ diag(s) Q (B-bit codes Q, row scales s) multiplies an
operand with F_v fractional bits into a result with F_o fractional bits, so
row i must be scaled by r_i = s_i * 2^(F_o - F_v). The hardware applies
r_i ~ mult_i * 2^-shift:

    shift  = the largest integer with round(max_i r_i * 2^shift) <= 2^16 - 1
    mult_i = round(r_i * 2^shift)            (round half up)

The maximum runs over rows with at least one non-zero code; an all-zero row
gets mult_i = 0, so it cannot take the multiplier range from the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..quantize import Scheme, quantize_tensor
from .formats import FixedFormat, Rounding, shift_round

__all__ = ["MULTIPLIER_BITS", "StoredMatrix", "Accumulator", "store_matrix", "size_accumulator", "signed_width"]

#: Width of the unsigned per-row requantization multiplier.
MULTIPLIER_BITS = 16
_MULTIPLIER_MAX = 2**MULTIPLIER_BITS - 1


def signed_width(bound: int) -> int:
    """Return the fewest bits of a signed register that holds every integer in [-bound, bound]."""
    return int(bound).bit_length() + 1


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _requantize(ratios: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, int]:
    """Return (mult, shift) with mult_i = round(r_i 2^shift) and shift as large as 16 bits allow."""
    peak = float(np.max(ratios[used])) if np.any(used) else 0.0
    if peak <= 0.0:
        return np.zeros(len(ratios), dtype=np.int64), 0

    # Start from the estimate log2(65535 / peak) and step to the exact largest shift.
    shift = math.floor(math.log2(_MULTIPLIER_MAX / peak))
    while _round_half_up(math.ldexp(peak, shift + 1)) <= _MULTIPLIER_MAX:
        shift += 1
    while _round_half_up(math.ldexp(peak, shift)) > _MULTIPLIER_MAX:
        shift -= 1

    mult = np.array(
        [_round_half_up(math.ldexp(float(r), shift)) if u else 0 for r, u in zip(ratios, used)],
        dtype=np.int64,
    )
    return mult, shift


@dataclass(frozen=True, eq=False)
class StoredMatrix:
    """One matrix as the hardware stores it.

    `codes` are the B-bit weights (rows x cols, int64), `scales` the row
    scales s_i of the quantizer (float64), `multipliers` and `shift` the
    requantization of section 2 of the datapath contract, for an operand with
    `operand_frac_bits` and a result with `result_frac_bits` fractional bits.
    `reference` is the float matrix the codes approximate.
    """

    name: str
    codes: np.ndarray
    scales: np.ndarray
    multipliers: np.ndarray
    shift: int
    bits: int
    scheme: Scheme
    operand_frac_bits: int
    result_frac_bits: int
    reference: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.codes.shape[0])

    @property
    def cols(self) -> int:
        return int(self.codes.shape[1])

    @property
    def row_abs_sums(self) -> list[int]:
        """sum_j |Q_ij| per row, as Python integers."""
        return [int(v) for v in np.abs(self.codes).sum(axis=1)]

    @property
    def multiplier_ratios(self) -> np.ndarray:
        """mult_i * 2^-shift, the factor applied to row i in code units."""
        return np.ldexp(self.multipliers.astype(np.float64), -self.shift)

    def effective(self, operand_frac_bits: int | None = None, result_frac_bits: int | None = None) -> np.ndarray:
        """Return the real matrix the hardware applies: diag(mult * 2^-shift) Q * 2^(F_v - F_o).

        With the default fractional bits this maps real operands to real
        results. Rounding of the result is not included: it is the rounding
        error the certificate bounds separately.
        """
        f_v = self.operand_frac_bits if operand_frac_bits is None else operand_frac_bits
        f_o = self.result_frac_bits if result_frac_bits is None else result_frac_bits
        code_map = self.multiplier_ratios[:, None] * self.codes.astype(np.float64)
        return np.ldexp(code_map, f_v - f_o)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "rows": self.rows,
            "cols": self.cols,
            "bits": self.bits,
            "scheme": self.scheme.value,
            "shift": self.shift,
            "multiplier_min": int(np.min(self.multipliers)) if self.rows else 0,
            "multiplier_max": int(np.max(self.multipliers)) if self.rows else 0,
            "max_abs_code": int(np.max(np.abs(self.codes))) if self.codes.size else 0,
        }


def store_matrix(
    name: str,
    X: np.ndarray,
    bits: int,
    scheme: Scheme,
    operand_frac_bits: int,
    result_frac_bits: int,
) -> StoredMatrix:
    """Quantize X to B-bit codes with `scheme` and derive the per-row multipliers and the shift."""
    X = np.asarray(X, dtype=np.float64)
    quantized = quantize_tensor(X, bits, scheme, name=name)
    codes = np.ascontiguousarray(quantized.codes, dtype=np.int64)
    scales = np.broadcast_to(np.asarray(quantized.scale, dtype=np.float64).reshape(-1), (X.shape[0],)).copy()
    used = np.any(codes != 0, axis=1)
    ratios = np.ldexp(scales, result_frac_bits - operand_frac_bits)
    multipliers, shift = _requantize(ratios, used)
    for array in (codes, scales, multipliers):
        array.setflags(write=False)
    reference = X.copy()
    reference.setflags(write=False)
    return StoredMatrix(
        name=name,
        codes=codes,
        scales=scales,
        multipliers=multipliers,
        shift=shift,
        bits=bits,
        scheme=scheme,
        operand_frac_bits=operand_frac_bits,
        result_frac_bits=result_frac_bits,
        reference=reference,
    )


@dataclass(frozen=True)
class Accumulator:
    """Register widths of one product `acc = Q v`, `acc * mult` and `RND(acc * mult, shift) + bias`.

    Sized for the worst case: |acc_i| <= sum_j |Q_ij| * (largest |code| of the
    operand format), whatever the operand registers hold. All widths are of
    signed two's complement registers.
    """

    name: str
    bound: int
    product_bound: int
    result_bound: int
    accumulator_bits: int
    product_bits: int
    result_bits: int

    def to_dict(self) -> dict:
        return {
            "accumulator_bits": self.accumulator_bits,
            "product_bits": self.product_bits,
            "result_bits": self.result_bits,
        }


def size_accumulator(matrix: StoredMatrix, operand: FixedFormat, bias: np.ndarray | None = None) -> Accumulator:
    """Size the accumulator, product and rounded-result registers of `matrix` applied to `operand`."""
    largest = operand.max_abs_code
    bounds = [s * largest for s in matrix.row_abs_sums]
    products = [b * int(m) for b, m in zip(bounds, matrix.multipliers)]
    rounded = shift_round(np.array(products, dtype=object), matrix.shift, Rounding.AP_RND)
    biases = [0] * matrix.rows if bias is None else [abs(int(v)) for v in bias]
    results = [abs(int(r)) + b for r, b in zip(rounded, biases)]
    bound, product_bound, result_bound = max(bounds, default=0), max(products, default=0), max(results, default=0)
    return Accumulator(
        name=matrix.name,
        bound=bound,
        product_bound=product_bound,
        result_bound=result_bound,
        accumulator_bits=signed_width(bound),
        product_bits=signed_width(product_bound),
        result_bits=signed_width(result_bound),
    )
