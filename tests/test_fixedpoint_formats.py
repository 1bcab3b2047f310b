"""Fixed-point formats, rounding, saturation and wrapping (docs/datapath.md, section 1)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mon2hls.errors import ConfigError
from mon2hls.fixedpoint import FixedFormat, Overflow, Rounding, convert, saturate, shift_round, wrap


def exact_round(value: Fraction, rounding: Rounding) -> int:
    """Round a rational number as the rounding mode defines it, from first principles."""
    floor = math.floor(value)
    fraction = value - floor
    if rounding is Rounding.AP_TRN:
        return floor
    if rounding is Rounding.AP_RND:
        return floor + (1 if fraction >= Fraction(1, 2) else 0)
    if fraction > Fraction(1, 2):
        return floor + 1
    if fraction < Fraction(1, 2):
        return floor
    return floor if floor % 2 == 0 else floor + 1


def test_signed_format_saturates_and_wraps():
    fmt = FixedFormat(10, 4)
    saturated = fmt.to_real(fmt.from_real(8.99, Rounding.AP_RND, Overflow.AP_SAT))
    wrapped = fmt.to_real(fmt.from_real(8.99, Rounding.AP_RND, Overflow.AP_WRAP))
    assert float(saturated) == 7.984375
    assert float(wrapped) == -7.015625


def test_convert_rounds_before_saturating():
    src = FixedFormat(5, 3, signed=False)
    dst = FixedFormat(3, 2, signed=False)
    code = src.from_real(7.75)
    assert int(code) == 31
    moved = convert(code, src, dst, Rounding.AP_RND, Overflow.AP_SAT)
    assert float(dst.to_real(moved)) == 3.5


def test_convert_wrap_keeps_low_bits():
    src = FixedFormat(8, 8)
    dst = FixedFormat(4, 4)
    assert int(convert(9, src, dst, Rounding.AP_TRN, Overflow.AP_WRAP)) == -7
    assert int(convert(-9, src, dst, Rounding.AP_TRN, Overflow.AP_WRAP)) == 7


def test_shift_round_floors_negative_values():
    assert shift_round(-4899488, 14, Rounding.AP_TRN) == -300
    assert shift_round(-13, 2, Rounding.AP_RND) == -3


@pytest.mark.parametrize(
    "value, expected_trn, expected_rnd, expected_conv",
    [
        (-10, -3, -2, -2),  # -2.5
        (-6, -2, -1, -2),  # -1.5
        (-2, -1, 0, 0),  # -0.5
        (2, 0, 1, 0),  # 0.5
        (6, 1, 2, 2),  # 1.5
        (10, 2, 3, 2),  # 2.5
        (-5, -2, -1, -1),  # -1.25
        (-7, -2, -2, -2),  # -1.75
        (7, 1, 2, 2),  # 1.75
    ],
)
def test_shift_round_modes_on_halves(value, expected_trn, expected_rnd, expected_conv):
    assert shift_round(value, 2, Rounding.AP_TRN) == expected_trn
    assert shift_round(value, 2, Rounding.AP_RND) == expected_rnd
    assert shift_round(value, 2, Rounding.AP_RND_CONV) == expected_conv


def test_shift_round_nonpositive_shift_multiplies():
    assert shift_round(-3, 0, Rounding.AP_RND) == -3
    assert shift_round(-3, -4, Rounding.AP_TRN) == -48
    assert shift_round(2**60, -8, Rounding.AP_RND) == 2**68


def test_shift_round_array_switches_to_python_integers():
    big = np.array([2**62 - 1, -(2**62)], dtype=np.int64)
    out = shift_round(big, 3, Rounding.AP_RND)
    assert [int(v) for v in out] == [2**59, -(2**59)]


def test_shift_round_rejects_float_codes():
    with pytest.raises(TypeError):
        shift_round(np.array([1.5]), 1)


@given(
    value=st.integers(min_value=-(2**80), max_value=2**80),
    shift=st.integers(min_value=-8, max_value=70),
    rounding=st.sampled_from(list(Rounding)),
)
@settings(max_examples=400, deadline=None)
def test_shift_round_matches_rationals(value, shift, rounding):
    expected = exact_round(Fraction(value, 2**shift) if shift >= 0 else Fraction(value * 2**-shift), rounding)
    assert shift_round(value, shift, rounding) == expected


@given(
    values=st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=1, max_size=20),
    shift=st.integers(min_value=1, max_value=30),
    rounding=st.sampled_from(list(Rounding)),
)
@settings(max_examples=200, deadline=None)
def test_shift_round_array_matches_rationals(values, shift, rounding):
    out = shift_round(np.array(values, dtype=np.int64), shift, rounding)
    assert out.dtype == np.int64
    assert [int(v) for v in out] == [exact_round(Fraction(v, 2**shift), rounding) for v in values]


@given(
    value=st.fractions(min_value=-300, max_value=300, max_denominator=4096),
    width=st.integers(min_value=2, max_value=20),
    integer_bits=st.integers(min_value=-2, max_value=12),
    signed=st.booleans(),
    rounding=st.sampled_from(list(Rounding)),
    overflow=st.sampled_from(list(Overflow)),
)
@settings(max_examples=400, deadline=None)
def test_from_real_matches_rationals(value, width, integer_bits, signed, rounding, overflow):
    fmt = FixedFormat(width, integer_bits, signed)
    real = float(value)
    code = exact_round(Fraction(real) * Fraction(2) ** fmt.frac_bits, rounding)
    if overflow is Overflow.AP_SAT:
        expected = min(max(code, fmt.min_code), fmt.max_code)
    else:
        expected = (code - fmt.min_code) % 2**width + fmt.min_code
    assert int(fmt.from_real(real, rounding, overflow)) == expected


@given(
    values=st.lists(st.integers(min_value=-(2**20), max_value=2**20), min_size=1, max_size=10),
    width=st.integers(min_value=2, max_value=16),
    signed=st.booleans(),
)
def test_saturate_and_wrap_stay_in_range(values, width, signed):
    fmt = FixedFormat(width, width, signed)
    a = np.array(values, dtype=np.int64)
    saturated = saturate(a, fmt)
    wrapped = wrap(a, fmt)
    assert np.all(fmt.contains(saturated))
    assert np.all(fmt.contains(wrapped))
    assert np.all((wrapped - a) % 2**width == 0)
    inside = fmt.contains(a)
    assert np.array_equal(saturated[inside], a[inside])
    assert np.array_equal(wrapped[inside], a[inside])


def test_format_code_ranges():
    signed = FixedFormat(24, 12)
    unsigned = FixedFormat(8, 8, signed=False)
    assert signed.frac_bits == 12
    assert signed.min_code == -(2**23)
    assert signed.max_code == 2**23 - 1
    assert signed.lsb == 2.0**-12
    assert unsigned.min_code == 0
    assert unsigned.max_code == 255
    assert unsigned.max_abs_code == 255
    assert signed.max_abs_code == 2**23


def test_format_c_types():
    assert FixedFormat(24, 12).c_type == "ap_fixed<24,12>"
    assert FixedFormat(8, 8, signed=False).c_type == "ap_uint<8>"
    assert FixedFormat(16, 2, signed=False).c_type == "ap_ufixed<16,2>"
    assert FixedFormat(8, 8).c_type == "ap_fixed<8,8>"
    assert FixedFormat(24, 12).ap_fixed_type(Rounding.AP_RND, Overflow.AP_SAT) == "ap_fixed<24,12,AP_RND,AP_SAT>"


def test_format_rejects_bad_widths():
    with pytest.raises(ConfigError, match="width"):
        FixedFormat(0, 0)
    with pytest.raises(ConfigError, match="signed"):
        FixedFormat(1, 1)


def test_from_real_rejects_nan():
    with pytest.raises(ConfigError, match="NaN"):
        FixedFormat(8, 4).from_real([0.5, math.nan])


def test_mode_names_parse():
    assert Rounding.parse("ap_rnd_conv") is Rounding.AP_RND_CONV
    assert Overflow.parse("AP_WRAP") is Overflow.AP_WRAP
    with pytest.raises(ConfigError, match="AP_RND"):
        Rounding.parse("nearest")
