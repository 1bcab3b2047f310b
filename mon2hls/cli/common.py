"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, Mon2hlsError

if TYPE_CHECKING:
    from ..model import MonModel

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_USAGE = 2


class UsageError(Mon2hlsError):
    """A command-line option is invalid; reported like an argparse error."""


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print exactly one JSON document on stdout (logs stay on stderr)"
    )


def print_json(document: Any) -> None:
    """Print one JSON document on stdout; Inf and NaN become null, as JSON has neither."""
    from ..report import clean_json

    json.dump(clean_json(document), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


MODEL_HELP = (
    "trained model file: a locuslab/monotone_op_net state_dict (.pt), the generic dense format "
    "(.npz or .pt with W, U, b, W_out, b_out) or a mon2hls checkpoint; see docs/model-formats.md. "
    "ONNX import: planned"
)


def positive_float(text: str) -> float:
    """Parse a positive finite number for argparse (used by --m)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """Parse a positive whole number for argparse."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return value


def bits_argument(text: str) -> int:
    """Parse a bit width for argparse with the range check of the quantizer (2 to 16)."""
    from ..quantize import check_bits

    try:
        return check_bits(text)
    except Mon2hlsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the positional MODEL and the options --m and --layout that every model-reading subcommand takes."""
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument(
        "--m",
        type=positive_float,
        default=None,
        metavar="M",
        help="margin parameter m of W = (1 - m) I - A^T A + B - B^T; required for locuslab files, which do "
        "not store it (the published MNIST model used --m 1.0)",
    )
    parser.add_argument(
        "--layout",
        choices=("auto", "locuslab", "generic", "mon2hls"),
        default="auto",
        help="key layout of MODEL (default: auto, recognized from the keys)",
    )


def load_model_from_args(args: argparse.Namespace) -> "MonModel":
    """Load the model named by the options `add_model_arguments` added."""
    from ..load import load_model

    return load_model(args.model, m=args.m, layout=args.layout)


def check_parent_folder(path: str | os.PathLike[str], option: str) -> None:
    """Reject an output `path` whose nearest existing parent is a file rather than a folder.

    Without this check the later "does not exist" error hides that a file sits where a folder should be.
    """
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"cannot write {path}: {parent} is a file, not a folder; choose another {option}"
                )
            return
