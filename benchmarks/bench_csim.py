"""Time the golden model against the generated C++ (compiled with g++ into a shared library) on MNIST.

Both run the same input codes of the MNIST test set through the locuslab
model at the given weight bits, FB and PR. The table gives the time of each
(best of --repeat runs, compilation excluded and reported apart), the ratio
C++ / golden, and whether every output word agreed.

Usage: python benchmarks/bench_csim.py [--model PATH] [--mnist DIR] [--bits 6] [--count 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from mon2hls.analysis import Splitting
from mon2hls.data import load_mnist
from mon2hls.fixedpoint import (
    DatapathOptions,
    design_datapath,
    encode_inputs,
    pack_inputs,
    pack_outputs,
    run_golden,
)
from mon2hls.load import load_model
from mon2hls.sim.csim import CompiledDesign

from timing import best_of  # benchmarks/timing.py, beside this script

SHARED = Path(os.environ.get("MON2HLS_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "locuslab_mnist_fc.pt")
    parser.add_argument("--mnist", type=Path, default=SHARED / "data" / "mnist")
    parser.add_argument("--bits", type=int, default=6)
    parser.add_argument("--count", type=int, default=10_000, help="MNIST test images to run (at most 10,000)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    model = load_model(args.model, m=1.0)
    dataset = load_mnist("test", args.mnist)
    rows = []
    for splitting in (Splitting.PR, Splitting.FB):
        design = design_datapath(model, DatapathOptions(bits=args.bits, splitting=splitting))
        x = encode_inputs(design, dataset.raw[: args.count])
        words = pack_inputs(design, x)

        start = time.perf_counter()
        compiled = CompiledDesign(design)
        compile_time = time.perf_counter() - start

        golden_time, golden = best_of(args.repeat, run_golden, design, x)
        cpp_time, outputs = best_of(args.repeat, compiled.run_words, words)
        agree = bool(np.array_equal(outputs, pack_outputs(design, golden)))
        rows.append((
            splitting.value, len(x), float(np.mean(golden.iterations)), compile_time, golden_time, cpp_time,
            cpp_time / golden_time, "yes" if agree else "NO",
        ))

    header = ("split", "images", "mean it", "compile s", "golden s", "C++ s", "C++/golden", "bit-exact")
    print(f"locuslab MNIST MON, {args.bits}-bit weights (max-abs), best of {args.repeat}; compile time may be a cache hit")
    print(" | ".join(f"{h:>11}" for h in header))
    for split, images, mean_it, compile_time, golden_time, cpp_time, ratio, agree in rows:
        print(" | ".join([
            f"{split:>11}", f"{images:>11d}", f"{mean_it:>11.2f}", f"{compile_time:>11.2f}",
            f"{golden_time:>11.3f}", f"{cpp_time:>11.3f}", f"{ratio:>11.2f}", f"{agree:>11}",
        ]))


if __name__ == "__main__":
    main()
