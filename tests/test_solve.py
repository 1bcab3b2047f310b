"""Tests of the batched float64 equilibrium solvers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mon2hls.errors import ConfigError
from mon2hls.model import MonModel
from mon2hls.solve import predict, solve_equilibrium, solve_injection


def random_mon(rng: np.random.Generator, n: int = 12, d: int = 6, k: int = 4, r: int | None = None,
               m: float = 0.5) -> MonModel:
    r = n if r is None else r
    return MonModel.from_factors(
        A=rng.normal(scale=0.4, size=(r, n)),
        B=rng.normal(scale=0.4, size=(n, n)),
        m=m,
        U=rng.normal(size=(n, d)),
        b=rng.normal(scale=0.5, size=n),
        W_out=rng.normal(size=(k, n)),
        b_out=rng.normal(size=k),
    )


def fixed_point_residual(model: MonModel, X: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.linalg.norm(z - np.maximum(z @ model.W.T + model.injection(X), 0.0), axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fb_and_pr_agree(seed):
    rng = np.random.default_rng(seed)
    model = random_mon(rng, r=5)
    X = rng.normal(size=(40, model.input_features))

    fb = solve_equilibrium(model, X, "fb", tol=1e-12, max_iter=5000)
    pr = solve_equilibrium(model, X, "pr", tol=1e-12, max_iter=5000)

    assert fb.converged.all()
    assert pr.converged.all()
    np.testing.assert_allclose(fb.z, pr.z, atol=1e-9)


@pytest.mark.parametrize("splitting", ["fb", "pr"])
def test_solution_is_fixed_point(splitting, rng):
    model = random_mon(rng)
    X = rng.normal(size=(30, model.input_features))

    result = solve_equilibrium(model, X, splitting, tol=1e-12, max_iter=5000)

    assert result.converged.all()
    assert not result.diverged.any()
    assert (result.z >= 0).all()
    assert fixed_point_residual(model, X, result.z).max() < 1e-9
    assert result.residual.max() < 1e-9


@pytest.mark.parametrize("splitting", ["fb", "pr"])
def test_batch_matches_single_inputs(splitting, rng):
    model = random_mon(rng)
    X = rng.normal(size=(8, model.input_features))

    batch = solve_equilibrium(model, X, splitting, tol=1e-8)

    for i in range(X.shape[0]):
        single = solve_equilibrium(model, X[i : i + 1], splitting, alpha=batch.alpha, tol=1e-8)
        assert single.iterations[0] == batch.iterations[i]
        np.testing.assert_allclose(single.z[0], batch.z[i], rtol=0, atol=1e-12)


def test_stopping_rule_is_relative_step(rng):
    model = random_mon(rng)
    X = rng.normal(size=(20, model.input_features))

    loose = solve_equilibrium(model, X, "pr", tol=1e-3)
    tight = solve_equilibrium(model, X, "pr", tol=1e-10)

    assert (loose.step <= 1e-3).all()
    assert (tight.step <= 1e-10).all()
    assert (tight.iterations >= loose.iterations).all()
    assert tight.iterations.sum() > loose.iterations.sum()


def test_pr_with_alpha_one_fixed_point(rng):
    model = random_mon(rng, m=1.0)
    X = rng.normal(size=(10, model.input_features))

    result = solve_equilibrium(model, X, "pr", alpha=1.0, tol=1e-12)

    assert result.alpha == 1.0
    assert fixed_point_residual(model, X, result.z).max() < 1e-9


def test_zero_injection_gives_zero_equilibrium(rng):
    model = random_mon(rng)

    result = solve_injection(model.W, np.zeros((3, model.hidden_units)), "pr")

    assert result.converged.all()
    assert (result.iterations == 1).all()
    np.testing.assert_array_equal(result.z, 0.0)


def test_warm_start_at_equilibrium(rng):
    model = random_mon(rng)
    X = rng.normal(size=(5, model.input_features))
    exact = solve_equilibrium(model, X, "fb", tol=1e-13, max_iter=10000)

    warm = solve_equilibrium(model, X, "fb", tol=1e-6, z0=exact.z)

    assert (warm.iterations == 1).all()


@pytest.mark.parametrize("splitting", ["fb", "pr"])
def test_divergence_is_detected_quietly(splitting, rng):
    n = 6
    W = 1.5 * np.eye(n)  # I - W = -0.5 I: not monotone, the state grows by a constant factor
    C = np.abs(rng.normal(size=(4, n)))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = solve_injection(W, C, splitting, alpha=0.5, max_iter=2000)

    assert result.diverged.all()
    assert not result.converged.any()
    assert (result.iterations < 2000).all()
    assert result.converged_fraction == 0.0


def test_iteration_limit_marks_unconverged(rng):
    model = random_mon(rng)
    X = rng.normal(size=(6, model.input_features))

    result = solve_equilibrium(model, X, "fb", tol=1e-14, max_iter=3)

    assert not result.converged.any()
    assert not result.diverged.any()
    assert (result.iterations == 3).all()
    assert (result.step > 1e-14).all()


def test_predict_returns_logits(rng):
    model = random_mon(rng)
    X = rng.normal(size=(7, model.input_features))

    logits, result = predict(model, X, tol=1e-10)

    assert logits.shape == (7, model.classes)
    np.testing.assert_allclose(logits, result.z @ model.W_out.T + model.b_out)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tol": 0.0}, r"solver tolerance must be a positive number, not 0\.0"),
        ({"max_iter": 0}, r"maximum iteration count must be a positive whole number, not 0"),
        ({"alpha": -1.0}, r"splitting step alpha must be a positive number, not -1\.0"),
        ({"splitting": "admm"}, r"unknown splitting method 'admm'; choose one of: fb, pr"),
    ],
)
def test_invalid_options_rejected(options, message, rng):
    model = random_mon(rng)

    with pytest.raises(ConfigError, match=message):
        solve_equilibrium(model, np.zeros((1, model.input_features)), **options)


def test_wrong_feature_count_rejected(rng):
    model = random_mon(rng)

    with pytest.raises(ConfigError, match=r"the model takes 6 features per input"):
        solve_equilibrium(model, np.zeros((2, 5)))


@pytest.fixture(scope="module")
def locuslab_model(locuslab_path):
    from mon2hls.load import load_model

    return load_model(locuslab_path, m=1.0)


@pytest.mark.shared
@pytest.mark.parametrize("alpha", [1.0, None])
def test_locuslab_float_accuracy(locuslab_model, mnist_dir, alpha):
    from mon2hls.data import load_mnist

    dataset = load_mnist("test", mnist_dir)
    X = locuslab_model.preprocessing.apply(dataset.raw)

    logits, result = predict(locuslab_model, X, "pr", alpha=alpha, tol=1e-5, max_iter=500)

    accuracy = float(np.mean(logits.argmax(axis=1) == dataset.labels))
    assert accuracy == pytest.approx(0.9819, abs=0.001)
    assert result.converged.all()
    assert 10 <= result.iterations_median <= 25
