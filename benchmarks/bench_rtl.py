"""Measure the Verilog accelerator of the locuslab MNIST MON at 6 bits in Verilator.

Three tables:

1. Cycles per inference at parallelism P in {1, 8, 32, 87, 220}, measured in
   simulation on the first MNIST test images, next to cycles() and the lower
   bound ceil(multiplies / P) with multiplies = n d + I n^2 + k n for I
   iterations; the ratio is measured / lower bound.
2. The whole MNIST test set through the simulation of one design (P = 87 by
   default), bit-exact against the golden model: matched inferences,
   accuracy, wall time and simulated cycles per second.
3. Yosys resource counts for P in {8, 32, 87} on xc7z020, when
   mon2hls.sim.synth.run_yosys is available.

Every design is built under --out (default build/bench_rtl), one folder per P.

Usage: python benchmarks/bench_rtl.py [--model PATH] [--mnist DIR] [--splitting pr]
       [--images 20] [--full-images 10000] [--full-parallel 87] [--skip-full] [--skip-synth]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from mon2hls.analysis import Splitting
from mon2hls.backends.verilog.cycles import cycles
from mon2hls.backends.verilog.writer import write_rtl
from mon2hls.data import load_mnist
from mon2hls.fixedpoint import DatapathOptions, design_datapath, encode_inputs, run_golden, write_vectors
from mon2hls.load import load_model
from mon2hls.sim.rtl import run_rtl

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MON2HLS_SHARED_DIR", REPO.parent / "shared"))

CYCLE_PARALLELISM = (1, 8, 32, 87, 220)
SYNTH_PARALLELISM = (8, 32, 87)
SYNTH_PART = "xc7z020"


def prepare(folder: Path, design, parallel: int, images: np.ndarray, labels: np.ndarray):
    """Write rtl/ and vectors/ for `images` into `folder`; return the golden result."""
    x_codes = encode_inputs(design, images)
    golden = run_golden(design, x_codes)
    write_rtl(design, folder / "rtl", parallel=parallel)
    write_vectors(design, folder / "vectors", x_codes, golden, labels=labels)
    return golden


def cycle_table(design, images, labels, out: Path) -> list[dict]:
    rows = []
    for parallel in CYCLE_PARALLELISM:
        folder = out / f"p{parallel}"
        golden = prepare(folder, design, parallel, images, labels)
        estimate = cycles(design, parallel)
        limit = 2 * estimate.total(design.max_iterations) + 1000
        result = run_rtl(folder, timeout_cycles=limit, progress=False)
        iterations = golden.iterations
        predicted = np.array([estimate.total(int(i)) for i in iterations])
        bound = np.array([estimate.lower_bound(int(i)) for i in iterations])
        measured = np.array(result.cycles)
        rows.append(
            {
                "P": parallel,
                "matched": f"{result.matched}/{result.total}",
                "iterations": float(iterations.mean()),
                "measured": float(measured.mean()),
                "cycles()": float(predicted.mean()),
                "exact": bool(np.array_equal(measured, predicted)),
                "lower bound": float(bound.mean()),
                "ratio": float((measured / bound).mean()),
                "wall s": result.wall_seconds,
            }
        )
        print_table([rows[-1]], header=len(rows) == 1)
    return rows


def full_run(design, parallel: int, images, labels, out: Path) -> dict:
    folder = out / f"full_p{parallel}"
    golden = prepare(folder, design, parallel, images, labels)
    estimate = cycles(design, parallel)
    begin = time.perf_counter()
    result = run_rtl(folder, timeout_cycles=2 * estimate.total(design.max_iterations) + 1000)
    wall = time.perf_counter() - begin
    simulated = int(np.sum(result.cycles))
    received_logits_match = result.matched == result.total
    accuracy = float(np.mean(golden.predictions == labels))
    return {
        "P": parallel,
        "images": result.total,
        "matched": result.matched,
        "bit-exact": received_logits_match,
        "accuracy": accuracy,
        "cycles": simulated,
        "wall s": wall,
        "cycles/s": simulated / wall,
        "mean cycles": result.mean_cycles,
    }


def synth_table(design, out: Path) -> list[dict] | str:
    try:
        from mon2hls.sim.synth import run_yosys
    except ImportError as error:
        return f"skipped: mon2hls.sim.synth.run_yosys is not available ({error})"
    rows = []
    for parallel in SYNTH_PARALLELISM:
        folder = out / f"synth_p{parallel}"
        write_rtl(design, folder / "rtl", parallel=parallel)
        begin = time.perf_counter()
        report = run_yosys(folder / "rtl", SYNTH_PART)
        row = {"P": parallel, "LUT": report.lut, "FF": report.ff, "DSP": report.dsp, "BRAM": report.bram}
        row["wall s"] = time.perf_counter() - begin
        rows.append(row)
        print_table([row], header=len(rows) == 1)
    return rows


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def print_table(rows: list[dict], header: bool = True) -> None:
    if not rows:
        return
    columns = list(rows[0])
    if header:
        print(" | ".join(f"{c:>12}" for c in columns))
        print("-+-".join("-" * 12 for _ in columns))
    for row in rows:
        print(" | ".join(f"{format_value(row.get(c, '')):>12}" for c in columns))
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "locuslab_mnist_fc.pt")
    parser.add_argument("--mnist", type=Path, default=SHARED / "data" / "mnist")
    parser.add_argument("--bits", type=int, default=6)
    parser.add_argument("--splitting", choices=[s.value for s in Splitting], default="pr")
    parser.add_argument("--images", type=int, default=20, help="MNIST test images per P in the cycle table")
    parser.add_argument("--full-images", type=int, default=10_000, help="images of the full run")
    parser.add_argument("--full-parallel", type=int, default=87, help="parallelism P of the full run")
    parser.add_argument("--skip-cycles", action="store_true")
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--skip-synth", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench_rtl")
    args = parser.parse_args()

    model = load_model(args.model, m=1.0)
    design = design_datapath(model, DatapathOptions(bits=args.bits, splitting=Splitting(args.splitting)))
    test = load_mnist("test", data_dir=args.mnist)
    print(
        f"locuslab MNIST MON, {args.bits} bits, {design.splitting.value.upper()}, state {design.state_format}, "
        f"max {design.max_iterations} iterations, certified {design.certified}"
    )

    if not args.skip_cycles:
        print(f"\nCycles per inference ({args.images} MNIST test images per P)")
        cycle_table(design, test.raw[: args.images], test.labels[: args.images], args.out)

    if not args.skip_full:
        print(f"\nFull run: {args.full_images} MNIST test images at P = {args.full_parallel}")
        row = full_run(
            design, args.full_parallel, test.raw[: args.full_images], test.labels[: args.full_images], args.out
        )
        print_table([row])

    if not args.skip_synth:
        print(f"\nYosys resources on {SYNTH_PART}")
        rows = synth_table(design, args.out)
        if isinstance(rows, str):
            print(rows)


if __name__ == "__main__":
    main()
