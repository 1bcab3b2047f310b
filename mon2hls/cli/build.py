"""The `mon2hls build` subcommand: a certified accelerator folder from a trained model."""

from __future__ import annotations

import argparse
import logging
import math
from typing import TYPE_CHECKING

from ..errors import CertificationError
from .common import EXIT_NEGATIVE, EXIT_OK, MODEL_HELP, UsageError, add_json_argument, positive_float, print_json

if TYPE_CHECKING:
    from ..build import BuildConfig

logger = logging.getLogger(__name__)

# Options that map one to one onto BuildConfig fields, by destination name.
_CONFIG_FIELDS = (
    "m", "layout", "bits", "scheme", "splitting", "alpha", "tolerance", "max_iterations", "parallel",
    "target", "part", "clock_mhz", "input_range", "state_format", "range_mode", "vectors", "data_dir", "synth",
)


def _whole_number(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build",
        help="write a certified accelerator: Vitis HLS C++, Verilog, test vectors and a report",
        description="Design, certify and generate a fixed-point accelerator for a trained MON. Nothing is "
        "written unless the datapath is certified (or --force is given); the output folder appears only "
        "when it is complete.",
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", default=None, help=MODEL_HELP)
    parser.add_argument("--config", metavar="FILE", help="read every option from a mon2hls.yaml written by an "
                        "earlier build; options given here override it")
    parser.add_argument("--m", type=positive_float, metavar="M", help="margin parameter m of "
                        "W = (1 - m) I - A^T A + B - B^T; required for locuslab files (the published MNIST "
                        "model used --m 1.0)")
    parser.add_argument("--layout", choices=("auto", "locuslab", "generic", "mon2hls"),
                        help="key layout of MODEL (default: auto, recognized from the keys)")
    parser.add_argument("-o", "--output", metavar="OUT", required=True, help="output folder to create")

    datapath = parser.add_argument_group("datapath")
    datapath.add_argument("--bits", type=_whole_number, metavar="B", help="weight bits, 2 to 16 (required "
                          "unless --config gives it)")
    datapath.add_argument("--scheme", choices=("max-abs", "pow2", "per-row"),
                          help="weight quantization scheme (default: max-abs)")
    datapath.add_argument("--splitting", choices=("fb", "pr"), type=str.lower,
                          help="operator splitting: fb (forward-backward) or pr (Peaceman-Rachford, default)")
    datapath.add_argument("--alpha", type=positive_float, metavar="A",
                          help="splitting step (default: the step that minimizes the contraction factor)")
    datapath.add_argument("--tolerance", type=positive_float, metavar="T",
                          help="stopping tolerance on the largest change of one state element, in real units "
                          "(default: 2^-5)")
    datapath.add_argument("--max-iterations", type=_whole_number, metavar="K",
                          help="iteration limit, 1 to 65535 (default: the certified iteration bound)")
    datapath.add_argument("--input-range", type=_finite, nargs=2, metavar=("LO", "HI"),
                          help="range of the raw inputs, for models whose input format is not known")
    datapath.add_argument("--state-format", metavar="W,I",
                          help="state format: total bits W (at most 32) and integer bits I including the sign "
                          "(default: chosen by the certificate)")
    datapath.add_argument("--range", dest="range_mode", choices=("worst-case", "data"),
                          help="state range from the worst case over every input (a proof, default) or from "
                          "calibration data (not a proof)")

    hardware = parser.add_argument_group("hardware")
    where = hardware.add_mutually_exclusive_group()
    where.add_argument("--target", metavar="BOARD", help="board: pynq-z2 (alias pynq, default), ultra96v2, "
                       "zcu104, kv260")
    where.add_argument("--part", metavar="PART", help="any AMD part, for example xczu9eg-ffvb1156-2-e; its "
                       "capacity is then unknown")
    hardware.add_argument("--clock", dest="clock_mhz", type=positive_float, metavar="MHZ",
                          help="clock target in MHz (default: the board's, 100 MHz for a bare --part)")
    hardware.add_argument("--parallel", type=_whole_number, metavar="P",
                          help="parallel multipliers, 1 to the smaller of the target's DSP slices and "
                          "n * max(n, k) for n hidden units and k classes, the most the datapath can use "
                          "(default: "
                          "min(hidden units, DSP slices); 16 when the capacity is unknown)")

    vectors = parser.add_argument_group("test vectors")
    vectors.add_argument("--vectors", type=_whole_number, metavar="N",
                         help="test vectors to write (default: 200): the first N test images for MNIST and "
                         "digits models, random inputs otherwise")
    vectors.add_argument("--data-dir", metavar="DIR", help="folder with the MNIST IDX files (default: "
                         "$MON2HLS_DATA_DIR or ~/.cache/mon2hls/mnist; never downloaded by build). "
                         "A folder named "
                         "here or in $MON2HLS_DATA_DIR that cannot be read is an error (exit 2)")

    parser.add_argument("--synth", action="store_const", const=True, default=None,
                        help="synthesize rtl/ with Yosys (synth_xilinx for the target's part) and put the LUT, "
                        "FF, DSP and BRAM counts in the report next to the estimate; takes minutes for "
                        "MNIST-sized models")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder, and build "
                        "even when the certificate fails: the folder is written, the report says CERTIFICATE "
                        "FAILED and the exit code is 1")
    add_json_argument(parser)
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> "BuildConfig":
    """Merge the command line over --config (if given) into a BuildConfig."""
    from ..build import BuildConfig, read_config

    overrides = {name: getattr(args, name) for name in _CONFIG_FIELDS if getattr(args, name) is not None}
    if "input_range" in overrides:
        overrides["input_range"] = tuple(overrides["input_range"])
    if args.config is not None:
        base = read_config(args.config)
        if args.model is not None:
            overrides["model"] = args.model
            overrides["model_sha256"] = None
        if "target" in overrides:
            overrides["part"] = None
        if "part" in overrides:
            overrides["target"] = None
        if overrides:
            # Changed options may change what the build would choose (alpha, state format,
            # parallelism), so those choices are made again; an unchanged rebuild keeps them.
            base = base.unchosen(keep=set(overrides))
        return base.replace(**overrides)
    if args.model is None:
        raise UsageError("the following arguments are required: MODEL (or --config FILE)")
    if "bits" not in overrides:
        raise UsageError("the following arguments are required: --bits (or --config FILE)")
    return BuildConfig(model=args.model, **overrides)


def run(args: argparse.Namespace) -> int:
    from ..build import build

    config = config_from_args(args)
    try:
        result = build(config, args.output, force=args.force)
    except CertificationError as error:
        logger.error("%s", error)
        if args.json:
            print_json({"certified": False, "output": None, "message": str(error)})
        return EXIT_NEGATIVE

    report = result.report
    # A build forced past a failed certificate still writes the folder, but the
    # verdict the user asked about is negative, with or without --json.
    code = EXIT_OK if result.certified else EXIT_NEGATIVE
    if args.json:
        print_json({"certified": result.certified, "output": str(result.folder), "report": report})
        return code

    figures = [f"wrote {result.folder}"]
    figures.append("certified" if result.certified else "CERTIFICATE FAILED (built with --force)")
    scores = report["accuracy"].get("dataset") or {}
    if "accuracy" in scores:
        figures.append(f"golden accuracy {100 * scores['accuracy']:.2f} % (float model "
                       f"{100 * scores['float_accuracy']:.2f} %) on {scores['samples']} "
                       f"{scores['name']} samples")
    elif "skipped" in scores:
        figures.append(f"{scores['name']} not scored: {scores['skipped']}")
    cycles = report["cycles"]
    figures.append(f"{cycles['total_at_max_iterations']:,} cycles per inference at "
                   f"{cycles['max_iterations']} iterations ({cycles['source']})")
    synthesis = report.get("synthesis")
    if synthesis:
        figures.append(f"Yosys: {synthesis['lut']:,} LUT, {synthesis['ff']:,} FF, {synthesis['dsp']:,} DSP, "
                       f"{synthesis['bram']:g} BRAM36")
    print("; ".join(figures))
    return code
