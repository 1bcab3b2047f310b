"""The golden model against a scalar reference written from docs/datapath.md, and its certificate bounds."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mon2hls.analysis import Splitting
from mon2hls.errors import ConfigError
from mon2hls.fixedpoint import (
    DatapathOptions,
    FixedFormat,
    design_datapath,
    encode_inputs,
    pack_inputs,
    pack_outputs,
    read_vectors,
    run_golden,
    unpack_inputs,
    unpack_outputs,
    write_vectors,
)
from mon2hls.fixedpoint.certificate import after_stop_bound
from mon2hls.fixedpoint.reference import stored_equilibrium, stored_injection
from mon2hls.model import MonModel
from mon2hls.quantize import Scheme

FLOAT_ACCURACY_LOCUSLAB = 0.9819


# --- the scalar reference: section 4 of the contract, one input at a time, Python integers only ---


def rnd(a: int, s: int) -> int:
    """AP_RND: floor((a + 2^(s-1)) / 2^s); a shift s <= 0 multiplies by 2^-s."""
    if s <= 0:
        return a * 2**-s
    return (a + 2 ** (s - 1)) // 2**s


def sat(a: int, width: int) -> int:
    return min(max(a, -(2 ** (width - 1))), 2 ** (width - 1) - 1)


class ScalarReference:
    """Runs one inference with Python integers and records the largest accumulator and product."""

    def __init__(self, design):
        self.design = design
        self.ws = design.state_format.width
        self.peak = {"injection": (0, 0), "operator": (0, 0), "output": (0, 0)}
        self.saturations = 0

    def sat_s(self, a: int) -> int:
        out = sat(a, self.ws)
        self.saturations += out != a
        return out

    def product(self, name, matrix, vector):
        """Return [RND(acc_i * mult_i, shift)] for acc_i = sum_j Q_ij v_j."""
        rows = []
        for i in range(matrix.rows):
            acc = sum(int(matrix.codes[i, j]) * vector[j] for j in range(matrix.cols))
            prod = acc * int(matrix.multipliers[i])
            acc_peak, prod_peak = self.peak[name]
            self.peak[name] = (max(acc_peak, abs(acc)), max(prod_peak, abs(prod)))
            rows.append(rnd(prod, matrix.shift))
        return rows

    def run(self, x: list[int]):
        design = self.design
        n = design.hidden_units
        d = [self.sat_s(r + int(b)) for r, b in zip(self.product("injection", design.injection, x), design.bias_state)]
        z = [0] * n
        u = [0] * n
        k = 0
        converged = False
        while True:
            k += 1
            if design.splitting is Splitting.FB:
                g = self.product("operator", design.operator, z)
                t = [self.sat_s(z[i] + g[i] + d[i]) for i in range(n)]
                z_next = [max(v, 0) for v in t]
                res = max(abs(z_next[i] - z[i]) for i in range(n))
                z = z_next
            else:
                h = [self.sat_s(2 * z[i] - u[i]) for i in range(n)]
                w = [self.sat_s(h[i] + d[i]) for i in range(n)]
                zh = [self.sat_s(v) for v in self.product("operator", design.operator, w)]
                u_next = [self.sat_s(2 * zh[i] - h[i]) for i in range(n)]
                z = [max(v, 0) for v in u_next]
                res = max(abs(u_next[i] - u[i]) for i in range(n))
                u = u_next
            if res <= design.tolerance_lsb:
                converged = True
                break
            if k == design.max_iterations:
                break
        logits = [
            sat(r + int(b), 32) for r, b in zip(self.product("output", design.output, z), design.bias_logit)
        ]
        return logits, k, converged, z


def reference_outputs(design, x_codes):
    reference = ScalarReference(design)
    logits, iterations, converged = [], [], []
    for row in np.asarray(x_codes):
        y, k, ok, _ = reference.run([int(v) for v in row])
        logits.append(y)
        iterations.append(k)
        converged.append(ok)
    return np.array(logits, dtype=np.int64), np.array(iterations), np.array(converged), reference


# --- models ---


def random_mon(seed: int, n: int, d: int, k: int, m: float = 0.5, scale: float = 0.6) -> MonModel:
    rng = np.random.default_rng(seed)
    return MonModel.from_factors(
        A=rng.normal(size=(max(1, n // 2), n)) * scale,
        B=rng.normal(size=(n, n)) * scale,
        m=m,
        U=rng.normal(size=(n, d)),
        b=rng.normal(size=n) * 0.5,
        W_out=rng.normal(size=(k, n)),
        b_out=rng.normal(size=k),
    )


def random_inputs(design, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fmt = design.input_format
    return rng.integers(fmt.min_code, fmt.max_code + 1, size=(count, design.input_features))


def boundary_inputs(design) -> np.ndarray:
    """All-zero input, every feature at either end of the input format, and the sign patterns of U."""
    fmt = design.input_format
    d = design.input_features
    signs = np.sign(design.injection.codes)
    rows = [
        np.zeros(d, dtype=np.int64),
        np.full(d, fmt.min_code),
        np.full(d, fmt.max_code),
    ]
    for row in signs[:3]:
        rows.append(np.where(row > 0, fmt.max_code, fmt.min_code))
        rows.append(np.where(row > 0, fmt.min_code, fmt.max_code))
    return np.array(rows, dtype=np.int64)


def assert_matches_reference(design, x_codes):
    result = run_golden(design, x_codes)
    logits, iterations, converged, reference = reference_outputs(design, x_codes)
    assert np.array_equal(result.logits, logits)
    assert np.array_equal(result.iterations, iterations)
    assert np.array_equal(result.converged, converged)
    # The packed output words are what the hardware is compared on.
    expected_words = pack_outputs(design, dataclasses.replace(result, logits=logits, iterations=iterations,
                                                              converged=converged))
    assert np.array_equal(pack_outputs(design, result), expected_words)
    return result, reference


def assert_certificate_bounds(design, x_codes, result):
    """Overflow bound, no saturation and the rounding ball on every input of a certified design."""
    ball = design.certificate.rounding
    overflow = design.certificate.overflow
    lsb = design.state_format.lsb
    assert design.certified, design.certificate.failures()
    assert np.all(result.max_abs_state * lsb <= overflow.state_bound)
    assert not np.any(result.saturated)
    assert np.all(result.converged)
    assert np.all(result.iterations <= ball.iteration_bound)

    z_star, x_star = stored_equilibrium(design, x_codes)
    z_hw = result.state * lsb
    distance = np.linalg.norm(z_hw - z_star, axis=1)
    n = design.hidden_units
    after_stop = after_stop_bound(ball.contraction, ball.step_error, math.sqrt(n) * design.tolerance_lsb * lsb)
    norms = np.linalg.norm(x_star, axis=1)
    ball_bound = ball.contraction ** result.iterations * norms + ball.radius
    slack = 1e-9 * (1.0 + norms)
    assert np.all(distance <= np.minimum(ball_bound, after_stop) + slack)


# --- tests ---


@pytest.mark.parametrize("splitting", [Splitting.FB, Splitting.PR])
@pytest.mark.parametrize("scheme", list(Scheme))
def test_golden_matches_reference(splitting, scheme):
    model = random_mon(seed=7, n=6, d=5, k=3)
    design = design_datapath(
        model, DatapathOptions(bits=6, scheme=scheme, splitting=splitting, input_range=(-1.0, 1.0))
    )
    x = np.concatenate([random_inputs(design, 12, seed=1), boundary_inputs(design)])
    result, _ = assert_matches_reference(design, x)
    assert_certificate_bounds(design, x, result)


@given(
    seed=st.integers(min_value=0, max_value=10_000),
    bits=st.integers(min_value=2, max_value=16),
    scheme=st.sampled_from(list(Scheme)),
    splitting=st.sampled_from(list(Splitting)),
    n=st.integers(min_value=1, max_value=5),
    d=st.integers(min_value=1, max_value=4),
    signed_input=st.booleans(),
    tolerance_exponent=st.integers(min_value=-9, max_value=-2),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_golden_matches_reference_random(seed, bits, scheme, splitting, n, d, signed_input, tolerance_exponent):
    model = random_mon(seed, n=n, d=d, k=2)
    input_range = (-2.0, 3.0) if signed_input else (0.0, 1.0)
    options = DatapathOptions(
        bits=bits, scheme=scheme, splitting=splitting, input_range=input_range,
        tolerance=2.0**tolerance_exponent,
    )
    design = design_datapath(model, options)
    if design.max_iterations > 300:
        # Uncertified designs default to 65535 iterations; the scalar reference needs fewer.
        design = design_datapath(model, dataclasses.replace(options, max_iterations=300))
    x = np.concatenate([random_inputs(design, 4, seed=seed), boundary_inputs(design)])
    result, _ = assert_matches_reference(design, x)
    if design.certified:
        assert_certificate_bounds(design, x, result)


def test_golden_wide_state_uses_python_integers():
    # A 32-bit state with 16-bit weights needs products beyond int64: the exact paths must agree.
    model = random_mon(seed=3, n=4, d=3, k=2)
    design = design_datapath(
        model,
        DatapathOptions(bits=16, splitting=Splitting.PR, input_range=(-1.0, 1.0), tolerance=2.0**-16,
                        state_format=FixedFormat(32, 8)),
    )
    assert design.operator_accumulator.product_bits > 62
    x = np.concatenate([random_inputs(design, 6, seed=5), boundary_inputs(design)])
    result, _ = assert_matches_reference(design, x)
    assert design.certified, design.certificate.failures()
    assert_certificate_bounds(design, x, result)


@pytest.mark.parametrize("splitting", [Splitting.FB, Splitting.PR])
def test_golden_stops_at_max_iterations(splitting):
    model = random_mon(seed=11, n=5, d=3, k=2)
    design = design_datapath(
        model, DatapathOptions(bits=8, splitting=splitting, input_range=(-1.0, 1.0), max_iterations=1)
    )
    x = boundary_inputs(design)
    # Inputs with a positive injection move z (or u) by more than the tolerance in iteration 1.
    product = design.injection.codes.astype(object) @ x.T.astype(object)
    moving = np.array([max(int(v) for v in col) > 0 for col in product.T])
    assert np.any(moving)
    result, _ = assert_matches_reference(design, x[moving])
    assert np.all(result.iterations == 1)
    assert not np.any(result.converged)
    assert not design.certified
    assert any("max_iterations" in reason for reason in design.certificate.failures())


def test_golden_all_zero_input_gives_bias_equilibrium():
    model = random_mon(seed=2, n=6, d=4, k=3)
    design = design_datapath(model, DatapathOptions(bits=8, input_range=(-1.0, 1.0)))
    zero = np.zeros((1, design.input_features), dtype=np.int64)
    result, _ = assert_matches_reference(design, zero)
    # With x = 0 the injection is the stored bias alone.
    injection = stored_injection(design, zero)[0]
    assert np.array_equal(injection, design.bias_state * design.state_format.lsb)
    assert result.converged[0]
    assert_certificate_bounds(design, zero, result)


def test_golden_large_diagonal_fits_accumulators():
    # m = 20 and a strong A put the diagonal of W near -40: the injection and
    # the state reach large values, and every register must still hold them.
    rng = np.random.default_rng(5)
    n, d = 6, 4
    A = rng.normal(size=(n, n)) * 1.9
    model = MonModel.from_factors(
        A=A, B=rng.normal(size=(n, n)) * 0.5, m=20.0, U=rng.normal(size=(n, d)) * 30,
        b=rng.normal(size=n) * 5, W_out=rng.normal(size=(2, n)), b_out=rng.normal(size=2),
    )
    assert np.all(np.diag(model.W) < -25)
    assert np.all(np.diag(model.W) > -60)
    for splitting in Splitting:
        design = design_datapath(model, DatapathOptions(bits=8, splitting=splitting, input_range=(-4.0, 4.0)))
        x = np.concatenate([random_inputs(design, 8, seed=6), boundary_inputs(design)])
        result, reference = assert_matches_reference(design, x)
        assert design.certified, design.certificate.failures()
        assert not np.any(result.saturated)
        assert reference.saturations == 0
        for name, accumulator in [
            ("injection", design.injection_accumulator),
            ("operator", design.operator_accumulator),
            ("output", design.output_accumulator),
        ]:
            acc_peak, product_peak = reference.peak[name]
            assert acc_peak <= accumulator.bound
            assert product_peak <= accumulator.product_bound
            assert acc_peak < 2 ** (accumulator.accumulator_bits - 1)
            assert product_peak < 2 ** (accumulator.product_bits - 1)
        assert_certificate_bounds(design, x, result)


@pytest.mark.parametrize("splitting", [Splitting.FB, Splitting.PR])
def test_golden_saturates_like_reference(splitting):
    # A state format far too narrow for the model: the saturators act, and the
    # golden model must still agree with the reference word for word.
    model = random_mon(seed=12, n=5, d=3, k=2)
    design = design_datapath(
        model,
        DatapathOptions(bits=8, splitting=splitting, input_range=(-4.0, 4.0), state_format=FixedFormat(8, 2),
                        max_iterations=40),
    )
    x = np.concatenate([random_inputs(design, 10, seed=4), boundary_inputs(design)])
    result, reference = assert_matches_reference(design, x)
    assert np.any(result.saturated)
    assert reference.saturations > 0
    assert not design.certified
    assert any("state values may overflow" in reason for reason in design.certificate.failures())


def test_golden_rejects_codes_outside_format():
    model = random_mon(seed=2, n=3, d=2, k=2)
    design = design_datapath(model, DatapathOptions(bits=8, input_range=(0.0, 1.0)))
    with pytest.raises(ConfigError, match="input codes"):
        run_golden(design, np.array([[-1, 0]]))


# --- stream packing ---


@pytest.mark.parametrize("input_range, width", [((0.0, 1.0), 16), ((-3.0, 3.0), 16)])
def test_stream_inputs_round_trip(input_range, width):
    model = random_mon(seed=4, n=3, d=7, k=2)
    design = design_datapath(model, DatapathOptions(bits=8, input_range=input_range))
    assert design.input_format.width == width
    assert design.inputs_per_beat == 2
    assert design.input_beats == 4
    x = np.concatenate([random_inputs(design, 20, seed=8), boundary_inputs(design)])
    words = pack_inputs(design, x)
    assert words.dtype == np.uint32
    assert words.shape == (len(x), 4)
    assert np.array_equal(unpack_inputs(design, words), x)
    # The unused upper slot of the last beat is zero.
    assert np.all(words[:, 3] >> 16 == 0)


def test_stream_negative_inputs_are_twos_complement():
    model = random_mon(seed=4, n=3, d=3, k=2)
    design = design_datapath(
        model, DatapathOptions(bits=8, input_range=(-1.0, 1.0), input_format=FixedFormat(10, 2))
    )
    assert design.inputs_per_beat == 3
    words = pack_inputs(design, np.array([[-1, 1, -512]]))
    assert int(words[0, 0]) == 0x3FF | (1 << 10) | (0x200 << 20)
    assert np.array_equal(unpack_inputs(design, words), [[-1, 1, -512]])


def test_stream_outputs_round_trip(tmp_path):
    model = random_mon(seed=9, n=4, d=3, k=3)
    design = design_datapath(model, DatapathOptions(bits=6, input_range=(-1.0, 1.0)))
    x = np.concatenate([random_inputs(design, 5, seed=3), boundary_inputs(design)])
    result = run_golden(design, x)
    words = pack_outputs(design, result)
    assert words.shape == (len(x), design.classes + 1)
    logits, iterations, converged = unpack_outputs(design, words)
    assert np.array_equal(logits, result.logits)
    assert np.array_equal(iterations, result.iterations)
    assert np.array_equal(converged, result.converged)
    status = int(words[0, -1])
    assert status >> 31 == int(result.converged[0])
    assert status & 0xFFFF == int(result.iterations[0])
    assert status & 0x7FFF0000 == 0
    negative = np.argwhere(result.logits < 0)
    if negative.size:
        i, j = negative[0]
        assert int(words[i, j]) == int(result.logits[i, j]) + 2**32

    labels = np.arange(len(x)) % design.classes
    folder = write_vectors(design, tmp_path / "vectors", x, result, labels=labels)
    vectors = read_vectors(folder)
    assert np.array_equal(vectors.inputs, pack_inputs(design, x))
    assert np.array_equal(vectors.outputs, words)
    assert np.array_equal(vectors.labels, labels)
    first_line = (folder / "inputs.hex").read_text().splitlines()[0]
    assert all(len(word) == 8 and word == word.lower() for word in first_line.split(" "))


# --- the trained locuslab model on MNIST ---


def _load_locuslab(path: Path) -> MonModel:
    from mon2hls.load import load_model

    return load_model(path, m=1.0)


def _read_mnist_test(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    from mon2hls.data import load_mnist

    dataset = load_mnist("test", folder)
    return np.asarray(dataset.raw), np.asarray(dataset.labels)


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("splitting", [Splitting.PR, Splitting.FB])
def test_locuslab_six_bits_accuracy(locuslab_path, mnist_dir, splitting):
    model = _load_locuslab(locuslab_path)
    design = design_datapath(model, DatapathOptions(bits=6, scheme=Scheme.MAX_ABS, splitting=splitting))
    assert design.input_format == FixedFormat(8, 8, signed=False)
    assert design.certified, design.certificate.failures()

    raw, labels = _read_mnist_test(mnist_dir)
    assert raw.shape == (10_000, 784)
    x = encode_inputs(design, raw)
    assert np.array_equal(x, raw)
    result = run_golden(design, x)
    accuracy = float(np.mean(result.predictions == labels))
    assert abs(accuracy - FLOAT_ACCURACY_LOCUSLAB) <= 0.003
    assert np.all(result.converged)
    assert np.all(result.iterations <= design.certificate.rounding.iteration_bound)
    assert not np.any(result.saturated)
    assert np.max(result.max_abs_state) * design.state_format.lsb <= design.certificate.overflow.state_bound
