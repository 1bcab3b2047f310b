"""The `mon2hls sweep` subcommand: certify and evaluate a model across bit widths."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..analysis import Splitting
from ..data import DATASETS, load_dataset
from ..errors import ConfigError, DataError
from ..evaluate import SweepResult, parse_bits_range, plot_sweep, sweep
from ..quantize import DEFAULT_QUANTIZED_TENSORS, MAX_BITS, MIN_BITS, QuantizationConfig, Scheme
from .common import (
    EXIT_OK,
    add_json_argument,
    add_model_arguments,
    check_parent_folder,
    load_model_from_args,
    positive_float,
    positive_int,
    print_json,
)

logger = logging.getLogger(__name__)


def bits_range_argument(text: str) -> list[int]:
    """Parse --bits LO-HI for argparse."""
    try:
        return parse_bits_range(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="certify and evaluate a model at every bit width of a range",
        description="Quantize the model at each bit width of --bits, certify the quantized operator and "
        "solve the quantized model in float64 on a data set: margin, contraction, convergence, accuracy "
        "and the measured equilibrium displacement against its bound, one row per bit width.",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--bits", type=bits_range_argument, required=True, metavar="LO-HI",
        help=f"inclusive range of bits per weight, sign included, from {MIN_BITS} to {MAX_BITS} (for example 3-8)",
    )
    parser.add_argument(
        "--scheme", choices=[scheme.value for scheme in Scheme], default=Scheme.MAX_ABS.value,
        help="how the quantization scale is chosen: max-abs (per tensor), pow2 (a power of two) or per-row "
        "(one scale per output row); default: max-abs",
    )
    parser.add_argument(
        "--tensors", default=",".join(DEFAULT_QUANTIZED_TENSORS), metavar="LIST",
        help="comma-separated tensors to quantize, from W, U, b, W_out, b_out (default: W,U,b)",
    )
    parser.add_argument(
        "--keep-diagonal", action="store_true",
        help="keep the diagonal of W exact and quantize only its off-diagonal part",
    )
    parser.add_argument(
        "--factors", action="store_true",
        help="quantize the MON factors A and B and compose W_q from them (needs a model that stores A, B and m)",
    )
    parser.add_argument(
        "--dataset", choices=DATASETS, default=None,
        help="evaluation data set, test split (default: the data set the model file names)",
    )
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR",
        help="folder with the four MNIST IDX files, gzip or plain (default: $MON2HLS_DATA_DIR, "
        "else ~/.cache/mon2hls/mnist, downloaded on first use)",
    )
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="evaluate only the first N test inputs (default: all)")
    parser.add_argument(
        "--splitting", choices=[method.value for method in Splitting], default=Splitting.PR.value,
        help="operator splitting used to certify and to solve: fb or pr (default: pr)",
    )
    parser.add_argument(
        "--alpha", type=positive_float, default=None, metavar="A",
        help="splitting step alpha (default: the step with the smallest contraction factor on each W_q)",
    )
    parser.add_argument("--tol", type=positive_float, default=1e-5, metavar="TOL",
                        help="relative tolerance on the step norm(z_(k+1) - z_k) / norm(z_(k+1)) (default: 1e-5)")
    parser.add_argument("--max-iter", type=positive_int, default=500, metavar="N",
                        help="maximum solver iterations per input (default: 500)")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help="also write a PNG of margin and accuracy against bits")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_argument(parser)
    parser.set_defaults(handler=run)


def _check_plot_folder(path: str) -> None:
    # Fail before the sweep runs rather than after minutes of work.
    check_parent_folder(path, "--plot")
    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"cannot write the plot {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the plot {path}: folder {folder} is not writable; choose another --plot")


def _print_table(result: SweepResult) -> None:
    out = sys.stdout
    out.write(
        f"model {result.model_source}\n"
        f"{result.dataset} {result.split}: {result.samples} inputs, {result.scheme.value} quantization of "
        f"{','.join(result.tensors)}, {result.splitting.value.upper()} splitting, tol {result.tol:g}, "
        f"max {result.max_iter} iterations\n"
        f"float: margin {result.float_margin:.4g}, accuracy {result.float_accuracy:.4f}, "
        f"median {result.float_iterations_median:g} iterations\n\n"
    )
    header = ("bits", "mu(W_q)", "a-priori", "alpha", "factor", "certified", "converged", "iter",
              "accuracy", "disp/bound", "bound")
    lines = [header]
    for row in result.rows:
        operator = row.certificate.operator
        displacement = row.displacement
        ratio, bound = "-", "-"
        if displacement.inputs_checked:
            ratio = f"{displacement.ratio_max:.3f}"
            bound = "holds" if displacement.holds else "fails"
        lines.append((
            str(row.bits),
            f"{operator.quantized_margin:.4g}",
            "holds" if operator.certified_a_priori else "fails",
            f"{operator.alpha:.3g}",
            f"{operator.contraction:.4f}",
            "yes" if row.certified else "no",
            f"{row.converged_fraction:.4f}",
            f"{row.iterations_median:g}",
            f"{row.accuracy:.4f}",
            ratio,
            bound,
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        out.write("  ".join(cell.rjust(width) for cell, width in zip(line, widths)) + "\n")
    threshold = result.certified_threshold_bits
    out.write("\ncertified from " + (f"{threshold} bits\n" if threshold is not None else "no bit width in the range\n"))


def run(args: argparse.Namespace) -> int:
    tensors = QuantizationConfig.parse_tensors(args.tensors)
    QuantizationConfig(bits=args.bits[0], scheme=args.scheme, tensors=tensors,
                       keep_diagonal=args.keep_diagonal, factors=args.factors)
    if args.plot is not None:
        _check_plot_folder(args.plot)

    model = load_model_from_args(args)
    dataset_name = args.dataset or model.dataset
    if dataset_name is None:
        raise DataError(
            f"the model file {args.model} does not name its data set; choose one with --dataset "
            f"({', '.join(DATASETS)})"
        )
    dataset = load_dataset(dataset_name, "test", args.data_dir)

    result = sweep(
        model,
        args.bits,
        args.scheme,
        dataset,
        limit=args.limit,
        splitting=args.splitting,
        tol=args.tol,
        max_iter=args.max_iter,
        tensors=tensors,
        keep_diagonal=args.keep_diagonal,
        factors=args.factors,
        alpha=args.alpha,
        progress=False if args.no_progress else None,
    )
    if args.plot is not None:
        plot_sweep(result, args.plot)
        logger.info("wrote %s", args.plot)

    if args.json:
        print_json(result.to_dict())
    else:
        _print_table(result)
    return EXIT_OK
