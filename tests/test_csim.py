"""C simulation: the generated C++ compiled with g++ agrees with the golden model on every output word."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mon2hls.analysis import Splitting
from mon2hls.backends.hls import write_hls
from mon2hls.errors import DataError, ToolchainError
from mon2hls.fixedpoint import (
    DatapathOptions,
    FixedFormat,
    design_datapath,
    pack_inputs,
    pack_outputs,
    run_golden,
    write_vectors,
)
from mon2hls.model import MonModel
from mon2hls.quantize import Scheme
from mon2hls.sim.csim import CompiledDesign, run_csim

pytestmark = pytest.mark.csim

PYNQ_PART = "xc7z020clg400-1"
MNIST_IMAGES = 200


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Compile into a cache of this test module, so runs never depend on an old cache."""
    previous = os.environ.get("MON2HLS_CACHE_DIR")
    os.environ["MON2HLS_CACHE_DIR"] = str(tmp_path_factory.mktemp("csim-cache"))
    yield
    if previous is None:
        del os.environ["MON2HLS_CACHE_DIR"]
    else:
        os.environ["MON2HLS_CACHE_DIR"] = previous


def small_mon(seed: int, n: int, d: int, k: int) -> MonModel:
    rng = np.random.default_rng(seed)
    return MonModel.from_factors(
        A=rng.normal(size=(max(1, n // 2), n)) * 0.6,
        B=rng.normal(size=(n, n)) * 0.6,
        m=0.5,
        U=rng.normal(size=(n, d)),
        b=rng.normal(size=n) * 0.5,
        W_out=rng.normal(size=(k, n)),
        b_out=rng.normal(size=k),
    )


def random_codes(design, count: int, seed: int) -> np.ndarray:
    fmt = design.input_format
    rng = np.random.default_rng(seed)
    return rng.integers(fmt.min_code, fmt.max_code, size=(count, design.input_features), endpoint=True)


def boundary_codes(design) -> np.ndarray:
    """All-zero, all-minimum, all-maximum and alternating extremes of the input format."""
    fmt, d = design.input_format, design.input_features
    alternating = np.where(np.arange(d) % 2 == 0, fmt.max_code, fmt.min_code)
    return np.stack([np.zeros(d), np.full(d, fmt.min_code), np.full(d, fmt.max_code), alternating, alternating[::-1]]).astype(np.int64)


def assert_words_match(design, compiled: CompiledDesign, x_codes: np.ndarray):
    """Compare every output word of the compiled C++ with the golden model's."""
    golden = run_golden(design, x_codes)
    expected = pack_outputs(design, golden)
    got = compiled.run_words(pack_inputs(design, x_codes))
    mismatched = np.argwhere(got != expected)
    assert mismatched.size == 0, (
        f"{len(mismatched)} of {expected.size} words differ; first at inference {mismatched[0][0]} "
        f"word {mismatched[0][1]}: got {got[tuple(mismatched[0])]:08x} expected {expected[tuple(mismatched[0])]:08x}"
    )
    return golden


# Designs compiled once per module; random input batches are drawn many times for each.
DESIGN_CASES = {
    "fb-6bit-maxabs-signed": {
        "seed": 1, "n": 7, "d": 5, "k": 3, "bits": 6, "scheme": Scheme.MAX_ABS, "splitting": Splitting.FB,
        "input_range": (-2.0, 2.0),
    },
    "pr-8bit-perrow-unsigned": {
        "seed": 2, "n": 9, "d": 6, "k": 4, "bits": 8, "scheme": Scheme.PER_ROW, "splitting": Splitting.PR,
        "input_range": (0.0, 1.0),
    },
    "pr-16bit-pow2": {
        "seed": 3, "n": 5, "d": 3, "k": 2, "bits": 16, "scheme": Scheme.POW2, "splitting": Splitting.PR,
        "input_range": (-1.0, 1.0),
    },
    "fb-12bit-pow2-wide-input": {
        "seed": 4, "n": 4, "d": 9, "k": 2, "bits": 12, "scheme": Scheme.POW2, "splitting": Splitting.FB,
        "input_range": (-3.0, 5.0),
    },
}


@pytest.fixture(scope="module", params=sorted(DESIGN_CASES))
def compiled_case(request):
    case = dict(DESIGN_CASES[request.param])
    model = small_mon(case.pop("seed"), case.pop("n"), case.pop("d"), case.pop("k"))
    design = design_datapath(model, DatapathOptions(**case))
    assert design.certified, design.certificate.failures()
    return design, CompiledDesign(design)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 40))
def test_random_batches_match_golden(compiled_case, seed, count):
    design, compiled = compiled_case
    assert_words_match(design, compiled, random_codes(design, count, seed))


def test_boundary_inputs_match_golden(compiled_case):
    design, compiled = compiled_case
    golden = assert_words_match(design, compiled, boundary_codes(design))
    assert np.all(golden.converged)


def test_run_returns_logits_iterations_flags(compiled_case):
    design, compiled = compiled_case
    x = random_codes(design, 25, seed=11)
    logits, iterations, converged = compiled.run(x)
    golden = run_golden(design, x)
    assert np.array_equal(logits, golden.logits)
    assert np.array_equal(iterations, golden.iterations)
    assert np.array_equal(converged, golden.converged)
    assert np.all(iterations >= 1)


@settings(max_examples=4, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    bits=st.integers(2, 16),
    scheme=st.sampled_from(list(Scheme)),
    splitting=st.sampled_from(list(Splitting)),
    signed_input=st.booleans(),
    parallel=st.integers(1, 4),
)
def test_random_designs_match_golden(seed, bits, scheme, splitting, signed_input, parallel):
    model = small_mon(seed, n=3 + seed % 5, d=2 + seed % 4, k=2)
    input_range = (-1.5, 1.5) if signed_input else (0.0, 2.0)
    design = design_datapath(
        model, DatapathOptions(bits=bits, scheme=scheme, splitting=splitting, input_range=input_range)
    )
    assume(design.certified)
    with tempfile.TemporaryDirectory() as folder:
        write_hls(design, Path(folder), parallel=parallel, part=PYNQ_PART, clock_mhz=100.0, project_name="drawn",
                  header_comment="")
        compiled = CompiledDesign(folder)
    x = np.concatenate([random_codes(design, 30, seed), boundary_codes(design)])
    assert_words_match(design, compiled, x)


@pytest.mark.parametrize("splitting", [Splitting.FB, Splitting.PR])
def test_saturating_state_matches_golden(splitting):
    # A state format far too narrow for the model: the saturators act on
    # extreme inputs, and the C++ must saturate exactly like the golden model.
    model = small_mon(12, n=5, d=3, k=2)
    design = design_datapath(
        model,
        DatapathOptions(bits=8, splitting=splitting, input_range=(-4.0, 4.0), state_format=FixedFormat(8, 2),
                        max_iterations=40),
    )
    x = np.concatenate([random_codes(design, 40, seed=3), boundary_codes(design)])
    golden = assert_words_match(design, CompiledDesign(design), x)
    assert np.any(golden.saturated)


@pytest.mark.parametrize("splitting", [Splitting.FB, Splitting.PR])
def test_stop_at_max_iterations_matches_golden(splitting):
    model = small_mon(5, n=6, d=4, k=3)
    design = design_datapath(
        model, DatapathOptions(bits=8, splitting=splitting, input_range=(-1.0, 1.0), max_iterations=2)
    )
    x = np.concatenate([random_codes(design, 20, seed=8), boundary_codes(design)])
    golden = assert_words_match(design, CompiledDesign(design), x)
    stopped = ~golden.converged
    assert np.any(stopped)
    assert np.all(golden.iterations[stopped] == 2)


def test_nonpositive_shift_matches_golden():
    # Huge input weights and a wide state make r_i exceed 2^16, so the
    # injection shift is zero or negative: RND becomes an exact left shift.
    rng = np.random.default_rng(3)
    n, d, k = 5, 3, 2
    model = MonModel.from_factors(
        A=rng.normal(size=(2, n)) * 0.6, B=rng.normal(size=(n, n)) * 0.6, m=0.5, U=rng.normal(size=(n, d)) * 20_000,
        b=rng.normal(size=n) * 0.5, W_out=rng.normal(size=(k, n)), b_out=rng.normal(size=k),
    )
    design = design_datapath(
        model,
        DatapathOptions(bits=4, input_range=(-1.0, 1.0), state_format=FixedFormat(32, 12), max_iterations=30),
    )
    assert design.injection.shift <= 0
    x = np.concatenate([random_codes(design, 30, seed=9), boundary_codes(design)])
    assert_words_match(design, CompiledDesign(design), x)


def test_compiled_from_folder_matches_golden(tmp_path):
    model = small_mon(6, n=5, d=4, k=3)
    design = design_datapath(model, DatapathOptions(bits=7, input_range=(-1.0, 1.0)))
    write_hls(design, tmp_path, parallel=2, part=PYNQ_PART, clock_mhz=100.0, project_name="folder_case",
              header_comment="")
    x = random_codes(design, 30, seed=2)
    logits, iterations, converged = CompiledDesign(tmp_path / "hls").run(x)
    golden = run_golden(design, x)
    assert np.array_equal(logits, golden.logits)
    assert np.array_equal(iterations, golden.iterations)
    assert np.array_equal(converged, golden.converged)


# --- the testbench through run_csim ---


def write_case(tmp_path: Path, design, x_codes, name: str = "case") -> Path:
    write_hls(design, tmp_path, parallel=1, part=PYNQ_PART, clock_mhz=100.0, project_name=name, header_comment="")
    write_vectors(design, tmp_path / "vectors", x_codes, run_golden(design, x_codes))
    return tmp_path


def test_run_csim_reports_every_word(tmp_path):
    design = design_datapath(small_mon(7, n=6, d=5, k=3), DatapathOptions(bits=6, input_range=(-1.0, 1.0)))
    folder = write_case(tmp_path, design, random_codes(design, 12, seed=1))
    result = run_csim(folder)
    assert result.passed
    assert result.total == 12 * design.output_beats
    assert result.matched == result.total
    assert result.mismatches == []
    assert f"matched {result.total}/{result.total}" in result.log


def test_run_csim_relative_folder(tmp_path, monkeypatch):
    # The compiler and the testbench run in other working folders than the caller's.
    design = design_datapath(small_mon(7, n=6, d=5, k=3), DatapathOptions(bits=6, input_range=(-1.0, 1.0)))
    write_case(tmp_path, design, random_codes(design, 4, seed=3))
    monkeypatch.chdir(tmp_path.parent)
    result = run_csim(Path(tmp_path.name))
    assert result.passed
    assert result.matched == 4 * design.output_beats


def test_run_csim_finds_corrupted_word(tmp_path):
    design = design_datapath(small_mon(8, n=6, d=5, k=3), DatapathOptions(bits=6, input_range=(-1.0, 1.0)))
    folder = write_case(tmp_path, design, random_codes(design, 5, seed=2))
    outputs = folder / "vectors" / "outputs.hex"
    lines = outputs.read_text().splitlines()
    words = lines[3].split()
    expected = int(words[1], 16) ^ 1
    words[1] = f"{expected:08x}"
    lines[3] = " ".join(words)
    outputs.write_text("\n".join(lines) + "\n")

    result = run_csim(folder)
    assert not result.passed
    assert result.total == 5 * design.output_beats
    assert result.matched == result.total - 1
    assert len(result.mismatches) == 1
    assert result.mismatches[0].inference == 3
    assert result.mismatches[0].word == 1
    assert result.mismatches[0].expected == expected
    assert result.mismatches[0].got == expected ^ 1


def test_run_csim_without_compiler(tmp_path, monkeypatch):
    design = design_datapath(small_mon(9, n=4, d=3, k=2), DatapathOptions(bits=6, input_range=(-1.0, 1.0)))
    folder = write_case(tmp_path, design, random_codes(design, 2, seed=3))
    monkeypatch.setenv("CXX", "/nonexistent")
    with pytest.raises(ToolchainError, match=r"C\+\+ compiler '/nonexistent' \(from \$CXX\) was not found"):
        run_csim(folder)


def test_run_csim_without_headers(tmp_path):
    design = design_datapath(small_mon(9, n=4, d=3, k=2), DatapathOptions(bits=6, input_range=(-1.0, 1.0)))
    (tmp_path / "build").mkdir()
    folder = write_case(tmp_path / "build", design, random_codes(design, 2, seed=3))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolchainError, match=r"lacks ap_int\.h, ap_fixed\.h, hls_stream\.h.*pip install"):
        run_csim(folder, headers=tmp_path / "empty")


def test_run_csim_without_vectors(tmp_path):
    design = design_datapath(small_mon(9, n=4, d=3, k=2), DatapathOptions(bits=6, input_range=(-1.0, 1.0)))
    write_hls(design, tmp_path, parallel=1, part=PYNQ_PART, clock_mhz=100.0, project_name="bare", header_comment="")
    with pytest.raises(DataError, match=r"inputs\.hex is missing; run mon2hls build"):
        run_csim(tmp_path)


# --- the trained locuslab model on MNIST ---


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("splitting", [Splitting.FB, Splitting.PR])
def test_locuslab_mnist_csim_bit_exact(tmp_path, locuslab_path, mnist_dir, splitting):
    from mon2hls.data.mnist import load_mnist
    from mon2hls.load import load_model

    model = load_model(locuslab_path, m=1.0)
    design = design_datapath(model, DatapathOptions(bits=6, splitting=splitting))
    assert design.certified, design.certificate.failures()
    test_set = load_mnist("test", mnist_dir)
    x = test_set.raw[:MNIST_IMAGES].astype(np.int64)
    golden = run_golden(design, x)
    write_hls(design, tmp_path, parallel=4, part=PYNQ_PART, clock_mhz=100.0, project_name="mnist_mon",
              header_comment="target pynq")
    write_vectors(design, tmp_path / "vectors", x, golden, test_set.labels[:MNIST_IMAGES])

    result = run_csim(tmp_path)
    assert result.total == MNIST_IMAGES * design.output_beats
    assert result.matched == result.total
    assert result.passed
    assert np.mean(golden.predictions == test_set.labels[:MNIST_IMAGES]) > 0.95
