"""Datapath design choices and the fixed-point certificate parts (docs/datapath.md, sections 2, 3 and 6)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from mon2hls.analysis import Splitting, best_alpha, margin
from mon2hls.errors import ConfigError
from mon2hls.fixedpoint import (
    DatapathOptions,
    FixedFormat,
    RangeMode,
    design_datapath,
    effective_weight,
    encode_inputs,
    input_format_for,
    run_golden,
    smallest_certified_bits,
    smallest_tolerance,
)
from mon2hls.fixedpoint.certificate import (
    DisplacementBound,
    OverflowProof,
    RoundingBall,
    iteration_bound,
    rounding_step_error,
)
from mon2hls.fixedpoint.reference import measure_displacement
from mon2hls.model import MNIST_PREPROCESSING, InputPreprocessing, MonModel
from mon2hls.quantize import Scheme, quantize_tensor


def random_mon(seed: int, n: int = 6, d: int = 4, k: int = 3, m: float = 0.5, **kwargs) -> MonModel:
    rng = np.random.default_rng(seed)
    return MonModel.from_factors(
        A=rng.normal(size=(max(1, n // 2), n)) * 0.6,
        B=rng.normal(size=(n, n)) * 0.6,
        m=m,
        U=rng.normal(size=(n, d)),
        b=rng.normal(size=n) * 0.5,
        W_out=rng.normal(size=(k, n)),
        b_out=rng.normal(size=k),
        **kwargs,
    )


def generic_design(seed: int = 1, **options):
    options.setdefault("bits", 8)
    options.setdefault("input_range", (-1.0, 1.0))
    return design_datapath(random_mon(seed), DatapathOptions(**options))


# --- certificate parts on their own ---


def ball(**changes) -> RoundingBall:
    values = dict(
        step_error=0.001, contraction=0.5, radius=0.002, tolerance=0.03125, tolerance_lsb=128, frac_bits=12,
        equilibrium_bound=10.0, iteration_bound=12, max_iterations=12,
    )
    values.update(changes)
    return RoundingBall(**values)


def test_rounding_ball_holds_and_fails():
    assert ball().holds
    assert ball().failures() == []
    assert not ball(contraction=1.2).holds
    assert "does not contract" in ball(contraction=1.2).failures()[0]
    too_wide = ball(radius=0.02)
    assert not too_wide.holds
    assert "rounding ball is too large" in too_wide.failures()[0]
    late = ball(max_iterations=5)
    assert not late.holds
    assert "max_iterations" in late.failures()[0]
    assert ball().to_dict()["effective_tolerance"] == 0.03125


@pytest.mark.parametrize(
    "rho, beta, X, threshold",
    [(0.5, 0.001, 10.0, 0.03), (0.95, 0.0001, 500.0, 0.01), (0.1, 0.0, 1.0, 1.0), (0.0, 0.01, 3.0, 0.05)],
)
def test_iteration_bound_is_smallest(rho, beta, X, threshold):
    k = iteration_bound(rho, beta, X, threshold)

    def step(j: int) -> float:
        return (1 + rho) * rho ** (j - 1) * X + 2 * beta

    assert k is not None
    assert step(k) <= threshold
    if k > 1:
        assert step(k - 1) > threshold


def test_iteration_bound_absent_without_room():
    assert iteration_bound(0.5, 0.02, 10.0, 0.03) is None
    assert iteration_bound(1.0, 0.001, 10.0, 0.03) is None


def test_rounding_step_error_doubles_for_pr():
    assert rounding_step_error(16, 3, doubled=False) == 4 * 2.0**-4
    assert rounding_step_error(16, 3, doubled=True) == 4 * 2.0**-3


def test_overflow_proof_reports_both_registers():
    proof = OverflowProof(
        method="worst-case", injection_bound=1.0, equilibrium_bound=100.0, state_bound=101.0,
        state_format="ap_fixed<16,8>", state_limit=128.0, logit_bound=2.0**20, logit_format="ap_fixed<32,24>",
        logit_limit=2.0**23, accumulator_bits={"operator": 20},
    )
    assert proof.holds
    assert proof.is_proof
    tight = dataclasses.replace(proof, state_limit=64.0, logit_limit=2.0**19)
    assert not tight.holds
    assert len(tight.failures()) == 2
    assert not dataclasses.replace(proof, method="data-driven").is_proof


def test_displacement_needs_a_margin():
    bound = DisplacementBound(0.1, 0.2, 0.5, 10.0, 0.01)
    assert bound.holds
    assert bound.bound == pytest.approx((0.1 * 10.0 + 0.2) / 0.5 + 0.01)
    broken = dataclasses.replace(bound, margin=-0.1)
    assert not broken.holds
    assert "not monotone" in broken.failures()[0]
    assert broken.to_dict()["bound"] is None


# --- stored constants ---


@pytest.mark.parametrize("scheme", list(Scheme))
def test_multipliers_follow_requantization_rule(scheme):
    design = generic_design(bits=6, scheme=scheme)
    for matrix in (design.injection, design.operator, design.output):
        ratios = np.ldexp(matrix.scales, matrix.result_frac_bits - matrix.operand_frac_bits)
        used = np.any(matrix.codes != 0, axis=1)
        peak = float(np.max(ratios[used]))
        assert math.floor(peak * 2.0**matrix.shift + 0.5) <= 2**16 - 1
        assert math.floor(peak * 2.0 ** (matrix.shift + 1) + 0.5) > 2**16 - 1
        expected = [math.floor(r * 2.0**matrix.shift + 0.5) if u else 0 for r, u in zip(ratios, used)]
        assert matrix.multipliers.tolist() == expected
        assert np.all(matrix.multipliers <= 2**16 - 1)
        assert np.all(np.abs(matrix.codes) <= 2**5 - 1)
        if scheme is Scheme.POW2:
            used_multipliers = matrix.multipliers[used]
            assert np.all(used_multipliers & (used_multipliers - 1) == 0)


def test_fb_stores_alpha_times_w_minus_identity():
    model = random_mon(3)
    design = design_datapath(model, DatapathOptions(bits=8, splitting=Splitting.FB, input_range=(-1.0, 1.0)))
    alpha, _ = best_alpha(model.W, Splitting.FB)
    assert design.alpha == alpha
    G = alpha * (model.W - np.eye(model.hidden_units))
    expected = quantize_tensor(G, 8, Scheme.MAX_ABS)
    assert np.array_equal(design.operator.codes, expected.codes)
    np.testing.assert_allclose(design.iteration_matrix, np.eye(6) + design.operator.effective())


def test_operator_certificate_uses_stored_operator():
    model = random_mon(4)
    for splitting in Splitting:
        design = design_datapath(model, DatapathOptions(bits=5, splitting=splitting, input_range=(-1.0, 1.0)))
        part = design.certificate.operator
        stored = design.operator.effective()
        if splitting is Splitting.FB:
            W_eff = np.eye(6) + stored / design.alpha
            T = np.eye(6) + stored
        else:
            W_eff = np.eye(6) - (np.linalg.inv(stored) - np.eye(6)) / design.alpha
            T = 2 * stored - np.eye(6)
        np.testing.assert_allclose(effective_weight(stored, splitting, design.alpha), W_eff)
        assert part.quantized_margin == pytest.approx(margin(W_eff))
        assert part.contraction == pytest.approx(np.linalg.norm(T, 2))
        assert part.weight_perturbation_norm == pytest.approx(np.linalg.norm(W_eff - model.W, 2))
        assert part.margin == pytest.approx(margin(model.W))
        assert design.certificate.rounding.contraction == part.contraction


def test_bias_codes_round_into_formats():
    model = random_mon(5)
    design = design_datapath(model, DatapathOptions(bits=8, input_range=(-1.0, 1.0)))
    _, b_raw = model.folded_input_layer()
    lsb = design.state_format.lsb
    np.testing.assert_array_equal(design.bias_state, np.floor(design.alpha * b_raw / lsb + 0.5))
    np.testing.assert_array_equal(design.bias_logit, np.floor(model.b_out / lsb + 0.5))
    assert design.logit_format == FixedFormat(32, 32 - design.frac_bits)


# --- formats chosen from the certificate ---


@pytest.mark.parametrize("splitting", list(Splitting))
def test_state_format_is_smallest_certified(splitting):
    design = generic_design(bits=8, splitting=splitting, tolerance=2.0**-6)
    certificate = design.certificate
    rho = certificate.rounding.contraction
    fs, is_ = design.frac_bits, design.state_format.integer_bits
    n, pr = design.hidden_units, splitting is Splitting.PR

    def fits(frac_bits: int) -> bool:
        beta = rounding_step_error(n, frac_bits, pr) / (1 - rho)
        return 4 * beta <= math.floor(2.0**-6 * 2.0**frac_bits) * 2.0**-frac_bits

    assert fits(fs)
    assert fs == 0 or not fits(fs - 1)
    S = certificate.overflow.state_bound
    assert 2.0 ** (is_ - 1) > S
    assert is_ == 2 or 2.0 ** (is_ - 2) <= S
    assert design.tolerance_lsb == math.floor(2.0**-6 * 2.0**fs)
    assert design.max_iterations == certificate.rounding.iteration_bound
    assert design.certified


def test_state_width_capped_and_smallest_tolerance():
    model = random_mon(6)
    options = DatapathOptions(bits=8, input_range=(-1.0, 1.0), tolerance=1e-12)
    design = design_datapath(model, options)
    assert design.state_format.width <= 32
    assert not design.certified
    assert any("rounding ball" in reason for reason in design.certificate.failures())

    tolerance = smallest_tolerance(model, options)
    assert 1e-12 < tolerance < 1e-3
    relaxed = design_datapath(model, dataclasses.replace(options, tolerance=tolerance))
    assert relaxed.certified, relaxed.certificate.failures()
    # With 25 or more fractional bits the logits need more integer bits than 32 - Fs.
    assert relaxed.logit_format.frac_bits < relaxed.frac_bits
    assert relaxed.certificate.overflow.logits_fit


def test_smallest_certified_bits_finds_the_edge():
    model = random_mon(7, n=8)
    options = DatapathOptions(bits=2, input_range=(-1.0, 1.0))
    bits = smallest_certified_bits(model, options)
    assert bits is not None
    assert design_datapath(model, dataclasses.replace(options, bits=bits)).certified
    if bits > 2:
        assert not design_datapath(model, dataclasses.replace(options, bits=bits - 1)).certified


def test_uncertified_design_is_returned_with_reasons():
    model = random_mon(8)
    design = design_datapath(model, DatapathOptions(bits=2, input_range=(-1.0, 1.0), max_iterations=3))
    assert not design.certified
    assert design.certificate.failures()
    assert design.max_iterations == 3


def test_data_range_is_marked_not_a_proof():
    model = random_mon(9)
    worst = design_datapath(model, DatapathOptions(bits=8, input_range=(-1.0, 1.0)))
    rng = np.random.default_rng(0)
    fmt = worst.input_format
    calibration = rng.integers(fmt.min_code, fmt.max_code + 1, size=(64, model.input_features))
    options = DatapathOptions(bits=8, input_range=(-1.0, 1.0), range_mode="data", calibration=calibration)
    data = design_datapath(model, options)
    proof = data.certificate.overflow
    assert proof.method == "data-driven"
    assert not proof.is_proof
    assert proof.calibration_inputs == 64
    assert any("not a proof" in note for note in data.certificate.notes)
    assert data.state_format.integer_bits <= worst.state_format.integer_bits
    assert data.frac_bits == worst.frac_bits
    result = run_golden(data, calibration)
    assert not np.any(result.saturated)


def test_data_range_needs_calibration():
    with pytest.raises(ConfigError, match="calibration"):
        DatapathOptions(bits=8, range_mode=RangeMode.DATA)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(bits=1), "bit width"),
        (dict(bits=8, tolerance=0.0), "tolerance"),
        (dict(bits=8, max_iterations=70000), "max_iterations"),
        (dict(bits=8, alpha=-1.0), "alpha"),
        (dict(bits=8, input_range=(1.0, 0.0)), "LO < HI"),
        (dict(bits=8, state_format=FixedFormat(40, 10)), "32 bits"),
        (dict(bits=8, range_mode="sometimes"), "range mode"),
    ],
)
def test_options_reject_bad_values(bad, match):
    with pytest.raises(ConfigError, match=match):
        DatapathOptions(**bad)


# --- input formats ---


def test_input_format_for_digits_pixels():
    model = random_mon(1, d=4).replace(dataset="digits", preprocessing=InputPreprocessing(scale=1.0 / 16.0))
    fmt = input_format_for(model)
    assert fmt == FixedFormat(5, 5, signed=False)
    assert fmt.c_type == "ap_uint<5>"


def test_input_format_for_mnist_any_preprocessing():
    model = random_mon(1, d=4).replace(dataset="mnist", preprocessing=InputPreprocessing(scale=1.0 / 255.0))
    assert input_format_for(model) == FixedFormat(8, 8, signed=False)


def test_input_format_for_mnist_pixels():
    model = random_mon(1, d=4).replace(dataset="mnist", preprocessing=MNIST_PREPROCESSING)
    fmt = input_format_for(model)
    assert fmt == FixedFormat(8, 8, signed=False)
    assert fmt.c_type == "ap_uint<8>"


@pytest.mark.parametrize(
    "input_range, expected",
    [
        ((0.0, 1.0), FixedFormat(16, 1, signed=False)),
        ((0.0, 255.0), FixedFormat(16, 8, signed=False)),
        ((-1.0, 1.0), FixedFormat(16, 2)),
        ((-2.0, 3.0), FixedFormat(16, 3)),
        ((-0.25, 0.2), FixedFormat(16, -1)),
        ((0.0, 2.0**20), FixedFormat(21, 21, signed=False)),
    ],
)
def test_input_format_for_range(input_range, expected):
    assert input_format_for(random_mon(1), input_range) == expected


def test_input_format_needs_range_for_generic_model():
    with pytest.raises(ConfigError, match="does not name the data set it was trained on; .* --input-range"):
        input_format_for(random_mon(1))
    with pytest.raises(ConfigError, match="data set 'cifar' is not known"):
        input_format_for(random_mon(1).replace(dataset="cifar"))
    with pytest.raises(ConfigError, match="stream"):
        input_format_for(random_mon(1), (0.0, 2.0**40))


def test_encode_inputs_rounds_and_saturates():
    design = generic_design(input_range=(0.0, 1.0))
    fmt = design.input_format
    raw = np.array([[0.5, 2.0, -1.0, 0.5 * fmt.lsb]])
    codes = encode_inputs(design, raw)
    assert codes.tolist() == [[2**14, fmt.max_code, 0, 1]]


# --- reports and rebuilding ---


def test_design_to_dict_is_json():
    design = generic_design()
    document = design.to_dict()
    text = json.dumps(document, allow_nan=False)
    assert '"certified": true' in text
    assert document["formats"]["state"]["c_type"] == design.state_format.c_type
    assert document["certificate"]["rounding"]["iteration_bound"] == design.max_iterations
    assert document["accumulators"]["operator"]["accumulator_bits"] == design.operator_accumulator.accumulator_bits


def test_design_rebuilds_identically():
    model = random_mon(2)
    design = design_datapath(model, DatapathOptions(bits=6, input_range=(-1.0, 1.0)))
    again = design.rebuild(model)
    for name in ("injection", "operator", "output"):
        assert np.array_equal(getattr(again, name).codes, getattr(design, name).codes)
        assert np.array_equal(getattr(again, name).multipliers, getattr(design, name).multipliers)
        assert getattr(again, name).shift == getattr(design, name).shift
    assert again.state_format == design.state_format
    assert again.to_dict() == design.to_dict()


def test_measured_displacement_within_bound():
    model = random_mon(3)
    design = design_datapath(model, DatapathOptions(bits=8, input_range=(-1.0, 1.0)))
    rng = np.random.default_rng(2)
    fmt = design.input_format
    x = rng.integers(fmt.min_code, fmt.max_code + 1, size=(32, model.input_features))
    measured = measure_displacement(design, model, x)
    part = measured.certificate.displacement
    assert part.measured_inputs == 32
    assert 0 < part.measured <= part.bound
