"""mon_top against the golden model, word for word, and its cycle count against cycles().

Each case renders a design into its own folder under build/hw_tests, builds
it with Verilator and streams its vectors back to back (auto_restart, no
backpressure), so the measured cycles are the accelerator's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mon2hls.analysis import Splitting
from mon2hls.data.mnist import load_mnist
from mon2hls.errors import SimulationError
from mon2hls.fixedpoint import DatapathOptions, FixedFormat, design_datapath, encode_inputs
from mon2hls.load import load_model
from mon2hls.quantize import Scheme
from mon2hls.sim.rtl import build_simulator, rtl_sources, run_cocotb, run_rtl

from .mon_cases import boundary_inputs, random_inputs, random_mon, simulate_case, write_case

pytestmark = pytest.mark.rtl

MNIST_IMAGES = 100


def assert_case(case) -> None:
    assert case.rtl.total == len(case.expected_words)
    assert case.rtl.matched == case.rtl.total, case.mismatch_report()
    assert list(case.rtl.iterations) == case.golden.iterations.tolist()
    assert list(case.rtl.cycles) == list(case.expected_cycles)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("splitting", "parallel"),
    [(Splitting.FB, 32), (Splitting.PR, 87)],
    ids=["fb-p32", "pr-p87"],
)
def test_locuslab_mnist_bit_exact(
    case_dir: Path, locuslab_path: Path, mnist_dir: Path, splitting: Splitting, parallel: int
) -> None:
    model = load_model(locuslab_path, m=1.0)
    design = design_datapath(model, DatapathOptions(bits=6, splitting=splitting))
    images = load_mnist("test", data_dir=mnist_dir).raw[:MNIST_IMAGES]
    x_codes = encode_inputs(design, images)

    case = simulate_case(case_dir, design, parallel, x_codes)

    assert_case(case)
    assert case.golden.converged.all()


# Small random MONs: bits 4 to 12, the three schemes, both splittings,
# parallelism 1, n, a non-divisor of n and more than n, and input formats
# packing 1 to 6 codes per beat.
@dataclass(frozen=True)
class RandomCase:
    n: int
    d: int
    k: int
    bits: int
    scheme: Scheme
    splitting: Splitting
    parallel: int
    input_format: FixedFormat


RANDOM_CASES = {
    "fb-4bit-maxabs-p1": RandomCase(6, 5, 3, 4, Scheme.MAX_ABS, Splitting.FB, 1, FixedFormat(16, 2)),
    "pr-6bit-pow2-pn": RandomCase(8, 7, 4, 6, Scheme.POW2, Splitting.PR, 8, FixedFormat(8, 4)),
    "fb-8bit-perrow-p3": RandomCase(10, 12, 3, 8, Scheme.PER_ROW, Splitting.FB, 3, FixedFormat(5, 2)),
    "pr-12bit-maxabs-p16": RandomCase(7, 9, 5, 12, Scheme.MAX_ABS, Splitting.PR, 16, FixedFormat(12, 4, signed=False)),
    "pr-5bit-perrow-p5": RandomCase(12, 6, 2, 5, Scheme.PER_ROW, Splitting.PR, 5, FixedFormat(32, 3)),
    "fb-10bit-pow2-pn": RandomCase(9, 4, 3, 10, Scheme.POW2, Splitting.FB, 9, FixedFormat(10, 10, signed=False)),
}


@pytest.mark.parametrize("name", list(RANDOM_CASES))
def test_random_mon_bit_exact(case_dir: Path, name: str) -> None:
    spec = RANDOM_CASES[name]
    model = random_mon(seed=sorted(RANDOM_CASES).index(name), n=spec.n, d=spec.d, k=spec.k)
    options = DatapathOptions(
        bits=spec.bits, scheme=spec.scheme, splitting=spec.splitting, input_format=spec.input_format
    )
    design = design_datapath(model, options)
    x_codes = np.vstack([boundary_inputs(design), random_inputs(design, 40, seed=3)])

    case = simulate_case(case_dir, design, spec.parallel, x_codes)

    assert_case(case)


def test_max_iterations_stop(case_dir: Path) -> None:
    """An iteration cap below the certified bound: inferences stop there with the converged flag 0."""
    model = random_mon(seed=11, n=8, d=6, k=3, m=0.3)
    design = design_datapath(
        model, DatapathOptions(bits=8, splitting=Splitting.FB, max_iterations=3, input_format=FixedFormat(8, 3))
    )
    x_codes = np.vstack([boundary_inputs(design), random_inputs(design, 20, seed=4)])

    case = simulate_case(case_dir, design, 4, x_codes)

    assert_case(case)
    stopped = ~case.golden.converged
    assert stopped.any()
    assert (case.golden.iterations[stopped] == 3).all()
    # The status word of a stopped inference: iteration count 3, converged bit 31 clear.
    assert (case.expected_words[stopped, -1] == 3).all()


def test_saturating_state(case_dir: Path) -> None:
    """A state format too narrow for the model: the saturators act, and the RTL saturates as the golden model."""
    model = random_mon(seed=12, n=8, d=6, k=3)
    design = design_datapath(
        model,
        # The cap keeps inferences that cannot converge in a saturating state short.
        DatapathOptions(
            bits=6,
            splitting=Splitting.PR,
            state_format=FixedFormat(8, 2),
            input_format=FixedFormat(8, 4),
            max_iterations=40,
        ),
    )
    x_codes = np.vstack([boundary_inputs(design), random_inputs(design, 20, seed=5)])

    case = simulate_case(case_dir, design, 8, x_codes)

    assert case.golden.saturated.any()
    assert_case(case)


def test_control_backpressure_and_reset(case_dir: Path) -> None:
    """Backpressure, input gaps, single starts, a reset mid-inference and a timeout on one build.

    The cocotb tests are in cocotb_mon_top.py.
    """
    model = random_mon(seed=13, n=8, d=10, k=3)
    design = design_datapath(model, DatapathOptions(bits=6, splitting=Splitting.PR, input_format=FixedFormat(8, 4)))
    x_codes = np.vstack([boundary_inputs(design), random_inputs(design, 12, seed=6)])
    write_case(case_dir, design, 4, x_codes)

    # The same build options as run_rtl, so that its call below reuses this build.
    runner = build_simulator(
        rtl_sources(case_dir / "rtl"), case_dir / "sim" / "verilator", includes=[case_dir / "rtl"]
    )
    run_dir = case_dir / "sim" / "control"
    run_dir.mkdir(parents=True, exist_ok=True)
    for memory in (case_dir / "rtl").glob("*.mem"):
        (run_dir / memory.name).write_bytes(memory.read_bytes())
    run_cocotb(
        runner,
        "hw_tests.cocotb_mon_top",
        run_dir,
        extra_env={
            "MON2HLS_INPUTS": str((case_dir / "vectors" / "inputs.hex").resolve()),
            "MON2HLS_OUTPUTS": str((case_dir / "vectors" / "outputs.hex").resolve()),
        },
    )

    # A cycle limit below one inference fails with the cycles waited and the beats seen, instead of hanging.
    with pytest.raises(SimulationError, match=r"did not finish within 30 cycles: 0 of \d+ inferences finished"):
        run_rtl(case_dir, timeout_cycles=30, build_dir=case_dir / "sim", progress=False)
