"""Tests of the operator certificate of quantized MONs."""

from __future__ import annotations

import numpy as np
import pytest

from mon2hls.analysis import Splitting, best_alpha, contraction_factor, margin
from mon2hls.certify import Certificate, certify_operator, certify_quantized
from mon2hls.errors import ConfigError
from mon2hls.load import load_model
from mon2hls.model import MonModel
from mon2hls.quantize import QuantizationConfig, quantize_model

CERTIFICATE_KEYS = [
    "bits",
    "scheme",
    "weight_perturbation_norm",
    "margin",
    "quantized_margin",
    "certified_a_priori",
    "splitting",
    "alpha",
    "contraction",
    "certified",
]


def random_mon(
    seed: int, n: int = 12, d: int = 5, k: int = 3, m: float = 0.2, r: int | None = None
) -> MonModel:
    rng = np.random.default_rng(seed)
    r = n if r is None else r
    return MonModel.from_factors(
        A=rng.normal(scale=0.4, size=(r, n)),
        B=rng.normal(scale=0.4, size=(n, n)),
        m=m,
        U=rng.normal(size=(n, d)),
        b=rng.normal(size=n),
        W_out=rng.normal(size=(k, n)),
        b_out=rng.normal(size=k),
    )


def power_iteration_norm(apply, apply_transpose, n: int, seed: int = 0, steps: int = 3000) -> float:
    """Estimate norm(M, 2) as sqrt of the top eigenvalue of M^T M, touching M only through products."""
    v = np.random.default_rng(seed).normal(size=n)
    v /= np.linalg.norm(v)
    estimate = 0.0
    for _ in range(steps):
        w = apply_transpose(apply(v))
        estimate = float(np.linalg.norm(w))
        v = w / estimate
    return float(np.sqrt(estimate))


@pytest.fixture(scope="module")
def locuslab_model(locuslab_path) -> MonModel:
    return load_model(locuslab_path, m=1.0)


def test_locuslab_four_bits_certified(locuslab_model):
    certificate = certify_quantized(locuslab_model, QuantizationConfig(bits=4), Splitting.PR)
    operator = certificate.operator

    assert operator.margin == pytest.approx(1.0, abs=1e-3)
    assert operator.quantized_margin == pytest.approx(0.600, abs=0.002)
    assert operator.contraction < 1.0
    assert certificate.certified
    assert certificate.failures() == []


def test_locuslab_three_bits_not_certified(locuslab_model):
    certificate = certify_quantized(locuslab_model, QuantizationConfig(bits=3), Splitting.PR)

    assert certificate.operator.quantized_margin < 0
    assert certificate.operator.quantized_margin == pytest.approx(-0.056, abs=0.002)
    assert not certificate.operator.certified_a_priori
    assert not certificate.certified
    assert any("not monotone" in reason for reason in certificate.failures())


def test_certificate_json_keys(locuslab_model):
    document = certify_quantized(locuslab_model, QuantizationConfig(bits=6), Splitting.FB).to_dict()

    assert list(document) == CERTIFICATE_KEYS
    assert document["splitting"] == "fb"
    assert document["scheme"] == "max-abs"
    assert document["bits"] == 6


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("bits", [3, 4, 6, 8])
def test_weyl_bound_holds(seed, bits):
    model = random_mon(seed)
    quantized = quantize_model(model, QuantizationConfig(bits=bits))
    operator = certify_operator(quantized, Splitting.FB)

    delta_norm = np.linalg.norm(quantized.model.W - model.W, 2)
    assert operator.weight_perturbation_norm == pytest.approx(delta_norm, rel=1e-12)
    assert operator.quantized_margin >= operator.margin - operator.weight_perturbation_norm - 1e-12
    if operator.certified_a_priori:
        assert operator.quantized_margin > 0


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0])
def test_fb_factor_matches_power_iteration(seed, alpha):
    model = random_mon(seed)
    W_q = quantize_model(model, QuantizationConfig(bits=6)).model.W
    n = W_q.shape[0]

    estimate = power_iteration_norm(
        lambda v: (1 - alpha) * v + alpha * (W_q @ v),
        lambda v: (1 - alpha) * v + alpha * (W_q.T @ v),
        n,
    )

    assert contraction_factor(W_q, Splitting.FB, alpha) == pytest.approx(estimate, rel=1e-6)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("alpha", [0.1, 0.5, 2.0])
def test_pr_factor_matches_power_iteration(seed, alpha):
    model = random_mon(seed)
    W_q = quantize_model(model, QuantizationConfig(bits=6)).model.W
    n = W_q.shape[0]
    # The PR step applies 2 V - I with V = (I + alpha (I - W_q))^-1, realized here by solves.
    resolvent = np.eye(n) + alpha * (np.eye(n) - W_q)

    estimate = power_iteration_norm(
        lambda v: 2 * np.linalg.solve(resolvent, v) - v,
        lambda v: 2 * np.linalg.solve(resolvent.T, v) - v,
        n,
    )

    assert contraction_factor(W_q, Splitting.PR, alpha) == pytest.approx(estimate, rel=1e-6)


def test_default_alpha_is_best_on_quantized_weight():
    model = random_mon(3)
    config = QuantizationConfig(bits=5)
    W_q = quantize_model(model, config).model.W

    operator = certify_quantized(model, config, "pr").operator

    alpha, contraction = best_alpha(W_q, Splitting.PR)
    assert operator.alpha == pytest.approx(alpha)
    assert operator.contraction == pytest.approx(contraction)
    assert operator.contraction <= contraction_factor(W_q, Splitting.PR, 1.0) + 1e-12


def test_explicit_alpha_is_used():
    model = random_mon(4)
    config = QuantizationConfig(bits=8)
    W_q = quantize_model(model, config).model.W

    operator = certify_quantized(model, config, Splitting.FB, alpha=0.05).operator

    assert operator.alpha == 0.05
    assert operator.contraction == pytest.approx(contraction_factor(W_q, Splitting.FB, 0.05), rel=1e-12)


def test_too_large_fb_step_not_certified():
    model = random_mon(5)
    certificate = certify_quantized(model, QuantizationConfig(bits=8), Splitting.FB, alpha=10.0)

    assert certificate.operator.quantized_margin > 0
    assert certificate.operator.contraction > 1.0
    assert not certificate.certified
    assert any("does not contract" in reason for reason in certificate.failures())


def test_invalid_alpha_rejected():
    with pytest.raises(ConfigError, match=r"^splitting step alpha must be a positive number, not -1\.0$"):
        certify_quantized(random_mon(0), QuantizationConfig(bits=8), Splitting.FB, alpha=-1.0)


def test_factor_quantization_keeps_margin():
    # A rectangular A keeps a null direction, so mu(W) = m and per-tensor quantization of W loses it.
    model = random_mon(6, n=16, m=0.05, r=4)

    plain = certify_quantized(model, QuantizationConfig(bits=3), Splitting.PR).operator
    factored = certify_quantized(model, QuantizationConfig(bits=3, factors=True), Splitting.PR).operator

    assert factored.quantized_margin >= model.m - 1e-9
    assert factored.contraction < 1.0
    assert plain.quantized_margin < factored.quantized_margin


def test_keep_diagonal_quantizes_off_diagonal_only():
    model = random_mon(7)
    quantized = quantize_model(model, QuantizationConfig(bits=4, keep_diagonal=True))

    operator = certify_operator(quantized, Splitting.FB)

    np.testing.assert_array_equal(np.diag(quantized.model.W), np.diag(model.W))
    assert operator.quantized_margin == pytest.approx(margin(quantized.model.W))


def test_certificate_wraps_operator_part():
    certificate = certify_quantized(random_mon(8), QuantizationConfig(bits=8), Splitting.PR)

    assert isinstance(certificate, Certificate)
    assert [name for name, _ in certificate.parts()] == ["operator"]
