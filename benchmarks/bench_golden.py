"""Time the golden model against a float64 solver doing the same iterations, on the MNIST test set.

The float64 solver computes the injection, applies the stored operator (FB:
z <- ReLU(T z + d), PR: the same u-iteration as the hardware) and the output
layer, all with the stored matrices in float64, and computes each row's
step (max |x_k - x_(k-1)|) as a stopping rule would; each input
runs exactly the number of iterations the golden model reported for it, with
the same batch compaction. The ratio is golden time / float time; the target
is at most 2.

Usage: python benchmarks/bench_golden.py [--model PATH] [--mnist DIR] [--bits 6] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from mon2hls.analysis import Splitting
from mon2hls.data import load_mnist
from mon2hls.fixedpoint import DatapathOptions, design_datapath, encode_inputs, run_golden
from mon2hls.load import load_model

from timing import best_of  # benchmarks/timing.py, beside this script

SHARED = Path(os.environ.get("MON2HLS_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def float_same_iterations(design, raw: np.ndarray, iterations: np.ndarray) -> np.ndarray:
    """Compute the injection and iterate the stored operator in float64, input i for iterations[i] steps."""
    injection_t = design.injection.effective().T
    d = raw @ injection_t + design.bias_state * design.state_format.lsb
    stored_t = design.operator.effective().T
    fb = design.splitting is Splitting.FB
    batch, n = d.shape
    z_final = np.zeros((batch, n))
    active = np.arange(batch)
    z = np.zeros((batch, n))
    u = np.zeros((batch, n))
    dd = d
    k = 0
    while active.size:
        k += 1
        if fb:
            z_next = np.maximum(z + z @ stored_t + dd, 0.0)
            step = np.max(np.abs(z_next - z), axis=1)
            z = z_next
        else:
            h = 2.0 * z - u
            zh = (h + dd) @ stored_t
            u_next = 2.0 * zh - h
            step = np.max(np.abs(u_next - u), axis=1)
            u = u_next
            z = np.maximum(u, 0.0)
        # A solver with a stopping rule computes the step of every row; this
        # one stops each row after the golden model's count instead.
        done = (iterations[active] == k) | (step < 0)
        if np.any(done):
            z_final[active[done]] = z[done]
            keep = ~done
            active, z, u, dd = active[keep], z[keep], u[keep], dd[keep]
    return z_final @ design.output.effective().T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "locuslab_mnist_fc.pt")
    parser.add_argument("--mnist", type=Path, default=SHARED / "data" / "mnist")
    parser.add_argument("--bits", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    model = load_model(args.model, m=1.0)
    dataset = load_mnist("test", args.mnist)
    rows = []
    for splitting in (Splitting.PR, Splitting.FB):
        design = design_datapath(model, DatapathOptions(bits=args.bits, splitting=splitting))
        x = encode_inputs(design, dataset.raw)
        golden_time, result = best_of(args.repeat, run_golden, design, x)
        raw = design.input_format.to_real(x)
        float_time, _ = best_of(args.repeat, float_same_iterations, design, raw, result.iterations)
        accuracy = float(np.mean(result.predictions == dataset.labels))
        rows.append((
            splitting.value, design.state_format.c_type, int(np.median(result.iterations)),
            int(result.iterations.sum()), golden_time, float_time, golden_time / float_time, accuracy,
        ))

    header = ("split", "state", "median it", "total it", "golden s", "float64 s", "ratio", "accuracy")
    print(f"{len(dataset)} MNIST test images, {args.bits}-bit weights, max-abs, best of {args.repeat}")
    print(" | ".join(f"{h:>15}" for h in header))
    for row in rows:
        split, state, median, total, g, f, ratio, accuracy = row
        print(" | ".join([
            f"{split:>15}", f"{state:>15}", f"{median:>15d}", f"{total:>15d}",
            f"{g:>15.3f}", f"{f:>15.3f}", f"{ratio:>15.2f}", f"{accuracy:>15.4f}",
        ]))


if __name__ == "__main__":
    main()
