"""Fixed-point formats and the integer rounding and overflow rules of the datapath.

A value v in the signed format <W, I> (W total bits, I integer bits including
the sign, F = W - I fractional bits, the layout of `ap_fixed<W, I>`) is the
integer code q = v * 2^F with -2^(W-1) <= q <= 2^(W-1) - 1. An unsigned
format (`ap_ufixed<W, I>`) holds 0 <= q <= 2^W - 1. Every function here acts
on integer codes, as int64 arrays while the values fit and as arrays of Python
integers (dtype object) when they may not, so results are exact either way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = [
    "Rounding",
    "Overflow",
    "FixedFormat",
    "shift_round",
    "saturate",
    "wrap",
    "convert",
    "fits_int64",
]

#: Codes whose magnitude stays below this bound are kept as int64; beyond it
#: the functions switch to Python integers so that no intermediate can wrap.
_INT64_SAFE = 2**62


class Rounding(enum.Enum):
    """Rounding mode, named as in `ap_fixed`. All modes round toward a neighbouring code."""

    AP_RND = "AP_RND"  #: round half up: floor(x + 1/2)
    AP_RND_CONV = "AP_RND_CONV"  #: round half to even (convergent rounding)
    AP_TRN = "AP_TRN"  #: truncate toward minus infinity: floor(x)

    @classmethod
    def parse(cls, value: "str | Rounding") -> "Rounding":
        if isinstance(value, Rounding):
            return value
        try:
            return cls(str(value).upper())
        except ValueError:
            choices = ", ".join(r.value for r in cls)
            raise ConfigError(f"unknown rounding mode {value!r}; choose one of: {choices}") from None


class Overflow(enum.Enum):
    """Overflow mode, named as in `ap_fixed`."""

    AP_SAT = "AP_SAT"  #: clamp to the nearest representable code
    AP_WRAP = "AP_WRAP"  #: keep the low W bits (two's complement for signed formats)

    @classmethod
    def parse(cls, value: "str | Overflow") -> "Overflow":
        if isinstance(value, Overflow):
            return value
        try:
            return cls(str(value).upper())
        except ValueError:
            choices = ", ".join(o.value for o in cls)
            raise ConfigError(f"unknown overflow mode {value!r}; choose one of: {choices}") from None


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format <width, integer_bits>, signed or unsigned.

    `integer_bits` may exceed `width` (negative fractional bits, coarse steps)
    or be negative (fine steps below 1), as in `ap_fixed`.
    """

    width: int
    integer_bits: int
    signed: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.width, bool) or not isinstance(self.width, (int, np.integer)) or self.width < 1:
            raise ConfigError(f"fixed-point width must be a positive whole number of bits, not {self.width!r}")
        if isinstance(self.integer_bits, bool) or not isinstance(self.integer_bits, (int, np.integer)):
            raise ConfigError(f"integer bits must be a whole number, not {self.integer_bits!r}")
        if self.signed and self.width < 2:
            raise ConfigError("a signed fixed-point format needs at least 2 bits, not 1")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "integer_bits", int(self.integer_bits))
        object.__setattr__(self, "signed", bool(self.signed))

    @property
    def frac_bits(self) -> int:
        return self.width - self.integer_bits

    @property
    def min_code(self) -> int:
        return -(2 ** (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return 2 ** (self.width - 1) - 1 if self.signed else 2**self.width - 1

    @property
    def max_abs_code(self) -> int:
        """Largest |code| the format holds: 2^(W-1) when signed, 2^W - 1 when unsigned."""
        return max(-self.min_code, self.max_code)

    @property
    def lsb(self) -> float:
        """Real value of one code step, 2^-F."""
        return 2.0 ** (-self.frac_bits)

    @property
    def min_value(self) -> float:
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_code * self.lsb

    @property
    def c_type(self) -> str:
        """The Vitis HLS type: `ap_uint<W>` for unsigned integers (F = 0), otherwise `ap_fixed` or `ap_ufixed`.

        A signed format is always written as `ap_fixed`, even with F = 0, so that
        rounding and overflow modes can be appended (see `ap_fixed_type`).
        """
        if not self.signed and self.frac_bits == 0:
            return f"ap_uint<{self.width}>"
        return self.ap_fixed_type()

    def ap_fixed_type(self, rounding: Rounding | None = None, overflow: Overflow | None = None) -> str:
        """Return the `ap_fixed<W, I[, Q, O]>` (or `ap_ufixed`) spelling of this format, with optional modes."""
        name = "ap_fixed" if self.signed else "ap_ufixed"
        args = [str(self.width), str(self.integer_bits)]
        if rounding is not None or overflow is not None:
            args.append((rounding or Rounding.AP_TRN).value)
            args.append((overflow or Overflow.AP_WRAP).value)
        return f"{name}<{','.join(args)}>"

    def __str__(self) -> str:
        return f"<{self.width}, {self.integer_bits}>" + ("" if self.signed else " unsigned")

    def contains(self, codes: Any) -> np.ndarray:
        """Return a boolean array, true where a code lies in [min_code, max_code]."""
        a = np.asarray(codes)
        return (a >= self.min_code) & (a <= self.max_code)

    def to_real(self, codes: Any) -> np.ndarray:
        """Real values of codes, code * 2^-F, in float64."""
        a = np.asarray(codes)
        if a.dtype == object:
            a = a.astype(np.float64)
        return np.ldexp(a.astype(np.float64), -self.frac_bits)

    def from_real(
        self,
        values: Any,
        rounding: Rounding | str = Rounding.AP_RND,
        overflow: Overflow | str = Overflow.AP_SAT,
    ) -> np.ndarray:
        """Convert real values to codes: round v * 2^F with `rounding`, then saturate or wrap.

        v * 2^F is exact in float64 (a power-of-two scaling), and the rounding
        compares the exact fractional part, so no step loses precision.
        """
        rounding = Rounding.parse(rounding)
        overflow = Overflow.parse(overflow)
        x = np.ldexp(np.asarray(values, dtype=np.float64), self.frac_bits)
        if not np.all(np.isfinite(x)):
            raise ConfigError("cannot convert NaN or Inf to a fixed-point code; clean the input data first")

        floor = np.floor(x)
        fraction = x - floor
        if rounding is Rounding.AP_TRN:
            rounded = floor
        elif rounding is Rounding.AP_RND:
            rounded = floor + (fraction >= 0.5)
        else:
            rounded = np.rint(x)

        # Values too large for int64 are saturated or wrapped as Python integers.
        limit = float(_INT64_SAFE)
        if np.all(np.abs(rounded) < limit):
            codes: np.ndarray = rounded.astype(np.int64)
        else:
            codes = np.array([int(v) for v in rounded.ravel()], dtype=object).reshape(rounded.shape)
        return saturate(codes, self) if overflow is Overflow.AP_SAT else wrap(codes, self)


def fits_int64(bound: int) -> bool:
    """True when every intermediate bounded by |bound| is safe in int64 arithmetic."""
    return int(bound) < _INT64_SAFE


def _as_integer_array(a: Any) -> tuple[np.ndarray, bool]:
    """Return (array of integers, is_scalar); floats are rejected so no code is silently rounded.

    Scalars become 1-element arrays, because numpy turns 0-d object arrays
    into plain Python objects after the first operation.
    """
    scalar = np.ndim(a) == 0
    array = np.atleast_1d(np.asarray(a))
    if array.dtype == object:
        return array, scalar
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"fixed-point codes must be integers, not {array.dtype}")
    if array.dtype.kind == "u" and array.dtype.itemsize >= 8:
        array = np.array([int(v) for v in array.ravel()], dtype=object).reshape(array.shape)
    else:
        array = array.astype(np.int64)
    return array, scalar


def _to_object(a: np.ndarray) -> np.ndarray:
    if a.dtype == object:
        return a
    out = np.empty(a.shape, dtype=object)
    for index, value in np.ndenumerate(a):
        out[index] = int(value)
    return out


def _max_abs(a: np.ndarray) -> int:
    if a.size == 0:
        return 0
    return int(max(abs(int(np.max(a))), abs(int(np.min(a)))))


def _result(a: np.ndarray, scalar: bool) -> Any:
    return int(np.asarray(a).ravel()[0]) if scalar else a


def shift_round(a: Any, shift: int, rounding: Rounding | str = Rounding.AP_RND) -> Any:
    """Divide integer codes by 2^shift and round: the requantization step of the datapath.

    For shift s > 0:

        AP_RND:      floor((a + 2^(s-1)) / 2^s)      (half up)
        AP_TRN:      floor(a / 2^s)                  (an arithmetic shift right)
        AP_RND_CONV: nearest integer to a / 2^s, ties to the even one

    Floor is toward minus infinity, so negative values round like positive
    ones shifted down: AP_TRN of -4899488 by 14 is -300 and AP_RND of -13 by
    2 (-3.25) is -3. A shift s <= 0 is the exact product a * 2^-s.

    Accepts an int or an integer array and returns the same kind: int64 when
    every intermediate fits, otherwise an array of Python integers.
    """
    rounding = Rounding.parse(rounding)
    shift = int(shift)
    array, scalar = _as_integer_array(a)

    if shift <= 0:
        if array.dtype != object and not fits_int64(_max_abs(array) << -shift):
            array = _to_object(array)
        return _result(array * (1 << -shift) if array.dtype == object else array << -shift, scalar)

    half = 1 << (shift - 1)
    if array.dtype != object and not fits_int64(_max_abs(array) + half):
        array = _to_object(array)

    if rounding is Rounding.AP_TRN:
        out = array >> shift
    elif rounding is Rounding.AP_RND:
        out = (array + half) >> shift
    else:
        quotient = array >> shift
        remainder = array - (quotient << shift)
        above = remainder > half
        tie_to_odd = (remainder == half) & ((quotient & 1) == 1)
        out = quotient + (above | tie_to_odd).astype(np.int64)
    return _result(np.asarray(out), scalar)


def saturate(a: Any, fmt: FixedFormat) -> Any:
    """Clamp codes into `fmt`: min(max(a, min_code), max_code) (AP_SAT)."""
    array, scalar = _as_integer_array(a)
    lo, hi = fmt.min_code, fmt.max_code
    if array.dtype != object and not (fits_int64(-lo) and fits_int64(hi)):
        array = _to_object(array)
    if array.dtype == object:
        out = np.where(array < lo, lo, np.where(array > hi, hi, array))
        out = out.astype(object)
    else:
        out = np.clip(array, lo, hi)
    return _result(out, scalar)


def wrap(a: Any, fmt: FixedFormat) -> Any:
    """Keep the low W bits of codes (AP_WRAP), read as two's complement when `fmt` is signed."""
    array, scalar = _as_integer_array(a)
    modulus = 1 << fmt.width
    if array.dtype != object and not fits_int64(modulus):
        array = _to_object(array)
    out = (array - fmt.min_code) % modulus + fmt.min_code
    return _result(np.asarray(out), scalar)


def convert(
    codes: Any,
    src: FixedFormat,
    dst: FixedFormat,
    rounding: Rounding | str = Rounding.AP_RND,
    overflow: Overflow | str = Overflow.AP_SAT,
) -> Any:
    """Move codes from format `src` to `dst`: round to dst's step first, then saturate or wrap.

    Rounding first matters: an unsigned 7.75 moved from <5, 3> to <3, 2> rounds
    to 8.0 in steps of 0.5 and only then saturates to 3.5.
    """
    overflow = Overflow.parse(overflow)
    rounded = shift_round(codes, src.frac_bits - dst.frac_bits, rounding)
    return saturate(rounded, dst) if overflow is Overflow.AP_SAT else wrap(rounded, dst)
