"""Time `mon2hls build` on the locuslab MNIST model, without any simulation, and print a table.

Usage: python benchmarks/bench_build.py [--model PATH] [--data-dir DIR] [--bits 6] [--repeat 3]

Each run builds into a fresh temporary folder and scores the golden model
on the whole MNIST test set. The table gives the wall-clock time of each run
and their median. The first run also pays for importing torch and scipy.
Target: a few seconds on one core.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from mon2hls.build import BuildConfig, build

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHARED_DIR / "models" / "locuslab_mnist_fc.pt"))
    parser.add_argument("--data-dir", default=str(SHARED_DIR / "data" / "mnist"))
    parser.add_argument("--bits", type=int, default=6)
    parser.add_argument("--target", default="pynq")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("mon2hls").setLevel(logging.WARNING)

    config = BuildConfig(model=args.model, m=1.0, bits=args.bits, target=args.target, data_dir=args.data_dir)
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(args.repeat):
            start = time.perf_counter()
            result = build(config, Path(scratch) / f"run{run}")
            times.append(time.perf_counter() - start)

    accuracy = result.report["accuracy"]["dataset"]
    print(f"mon2hls build {Path(args.model).name} --bits {args.bits} --target {args.target} (no simulation)")
    print()
    print("| run | seconds |")
    print("|---|---|")
    for run, seconds in enumerate(times):
        print(f"| {run} | {seconds:.2f} |")
    print(f"| median | {statistics.median(times):.2f} |")
    print()
    if accuracy:
        print(f"golden accuracy on {accuracy['samples']} test images: {100 * accuracy['accuracy']:.2f} %")


if __name__ == "__main__":
    main()
