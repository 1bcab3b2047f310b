"""Building blocks of the mon_top tests: random MONs, boundary inputs and one simulation per case."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mon2hls.backends.verilog.cycles import cycles
from mon2hls.backends.verilog.writer import write_rtl
from mon2hls.fixedpoint import GoldenResult, pack_outputs, run_golden, write_vectors
from mon2hls.model import MonModel
from mon2hls.sim.rtl import RtlResult, run_rtl


def random_mon(seed: int, n: int, d: int, k: int, m: float = 1.0, scale: float = 0.5) -> MonModel:
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


def boundary_inputs(design) -> np.ndarray:
    """The all-zero input, every feature at either end of the input format, and the sign patterns of U.

    The sign patterns drive the injection of a row to its largest and smallest
    value, the worst cases of the overflow proof.
    """
    fmt = design.input_format
    d = design.input_features
    rows = [np.zeros(d, dtype=np.int64), np.full(d, fmt.min_code), np.full(d, fmt.max_code)]
    for signs in np.sign(design.injection.codes)[:2]:
        rows.append(np.where(signs > 0, fmt.max_code, fmt.min_code))
        rows.append(np.where(signs > 0, fmt.min_code, fmt.max_code))
    return np.array(rows, dtype=np.int64)


def random_inputs(design, count: int, seed: int) -> np.ndarray:
    fmt = design.input_format
    rng = np.random.default_rng(seed)
    return rng.integers(fmt.min_code, fmt.max_code + 1, size=(count, design.input_features))


@dataclass(frozen=True)
class SimulatedCase:
    golden: GoldenResult
    expected_words: np.ndarray
    rtl: RtlResult
    expected_cycles: tuple[int, ...]

    def mismatch_report(self) -> str:
        lines = [m.describe() for m in self.rtl.mismatches[:5]]
        return f"{self.rtl.total - self.rtl.matched} of {self.rtl.total} inferences differ:\n" + "\n".join(lines)


def write_case(folder: Path, design, parallel: int, x_codes: np.ndarray) -> GoldenResult:
    """Render rtl/ and vectors/ of a design into `folder`, as `mon2hls build` lays them out."""
    write_rtl(design, folder / "rtl", parallel=parallel)
    golden = run_golden(design, x_codes)
    write_vectors(design, folder / "vectors", x_codes, golden)
    return golden


def simulate_case(folder: Path, design, parallel: int, x_codes: np.ndarray) -> SimulatedCase:
    """Render the design, run the golden model and the RTL simulation on the same inputs."""
    golden = write_case(folder, design, parallel, x_codes)
    estimate = cycles(design, parallel)
    expected_cycles = tuple(estimate.total(int(i)) for i in golden.iterations)
    # Twice the longest expected inference, so a stall fails fast but no real inference is cut short.
    limit = 2 * estimate.total(design.max_iterations) + 1000
    result = run_rtl(folder, timeout_cycles=limit, build_dir=folder / "sim", progress=False)
    return SimulatedCase(golden, pack_outputs(design, golden), result, expected_cycles)
