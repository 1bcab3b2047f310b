"""Time each row of a bit-width sweep (bits 2..16, max-abs, PR splitting).

Uses the locuslab MNIST model on the 10,000 MNIST test images when the shared
data folder is present (MON2HLS_SHARED_DIR, default: the folder `shared`
beside the checkout), else a random MON on the scikit-learn digits test split. Prints a
table of the seconds per row and the figures of each row.

    python benchmarks/bench_sweep.py [--bits 2-16] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from mon2hls.analysis import Splitting, margin
from mon2hls.certify import certify_quantized
from mon2hls.data import load_digits, load_mnist
from mon2hls.evaluate import check_displacement, parse_bits_range, refine_equilibria
from mon2hls.model import InputPreprocessing, MonModel
from mon2hls.quantize import QuantizationConfig, Scheme, quantize_model
from mon2hls.solve import solve_equilibrium

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MON2HLS_SHARED_DIR", REPO_ROOT.parent / "shared"))


def load_workload():
    model_path = SHARED_DIR / "models" / "locuslab_mnist_fc.pt"
    mnist_dir = SHARED_DIR / "data" / "mnist"
    if model_path.is_file() and mnist_dir.is_dir():
        from mon2hls.load import load_model

        return "locuslab MNIST model, MNIST test", load_model(model_path, m=1.0), load_mnist("test", mnist_dir)

    rng = np.random.default_rng(0)
    n = 64
    model = MonModel.from_factors(
        A=rng.normal(scale=0.2, size=(n, n)), B=rng.normal(scale=0.2, size=(n, n)), m=1.0,
        U=rng.normal(scale=0.2, size=(n, 64)), b=rng.normal(size=n),
        W_out=rng.normal(size=(10, n)), b_out=np.zeros(10),
        preprocessing=InputPreprocessing(scale=1.0 / 16.0),
    )
    return "random MON (n = 64), digits test", model, load_digits("test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", default="2-16", help="bit range LO-HI (default: 2-16)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N inputs")
    args = parser.parse_args()

    label, model, dataset = load_workload()
    dataset = dataset.head(args.limit)
    X = model.preprocessing.apply(dataset.raw)
    splitting = Splitting.PR

    start = time.perf_counter()
    float_result = solve_equilibrium(model, X, splitting)
    z_float = refine_equilibria(model, X, float_result)
    float_seconds = time.perf_counter() - start
    float_margin = margin(model.W)

    print(f"workload: {label}, {len(dataset)} inputs, {model.hidden_units} hidden units")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(f"float solve and refinement: {float_seconds:.2f} s, median {float_result.iterations_median:g} iterations")
    print()
    print(f"{'bits':>4}  {'seconds':>7}  {'mu(W_q)':>8}  {'converged':>9}  {'iter':>4}  {'accuracy':>8}  {'disp/bound':>10}")
    total = 0.0
    for bits in parse_bits_range(args.bits):
        start = time.perf_counter()
        config = QuantizationConfig(bits=bits, scheme=Scheme.MAX_ABS)
        certificate = certify_quantized(model, config, splitting)
        quantized = quantize_model(model, config).model
        result = solve_equilibrium(quantized, X, splitting, certificate.operator.alpha)
        displacement = check_displacement(model, quantized, X, z_float, result, float_margin)
        logits = result.z @ quantized.W_out.T + quantized.b_out
        accuracy = float(np.mean(np.argmax(logits, axis=1) == dataset.labels))
        seconds = time.perf_counter() - start
        total += seconds
        ratio = f"{displacement.ratio_max:.3f}" if displacement.inputs_checked else "-"
        print(
            f"{bits:>4}  {seconds:>7.2f}  {certificate.operator.quantized_margin:>8.4f}  "
            f"{result.converged_fraction:>9.4f}  {result.iterations_median:>4g}  {accuracy:>8.4f}  {ratio:>10}"
        )
    print()
    print(f"total over rows: {total:.2f} s")


if __name__ == "__main__":
    main()
