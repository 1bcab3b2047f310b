"""The `mon2hls certify` subcommand: quantize a model and certify the quantized operator."""

from __future__ import annotations

import argparse
import logging
import sys

from ..analysis import Splitting
from ..certify import Certificate, certify_quantized
from ..quantize import DEFAULT_QUANTIZED_TENSORS, MAX_BITS, MIN_BITS, QuantizationConfig, Scheme
from .common import (
    EXIT_NEGATIVE,
    EXIT_OK,
    add_json_argument,
    add_model_arguments,
    bits_argument,
    load_model_from_args,
    positive_float,
    print_json,
)

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "certify",
        help="quantize a model and certify that the quantized operator is monotone and contracts",
        description="Quantize the model's weights and check, on the quantized weight W_q, that it is "
        "still monotone (mu(W_q) > 0) and that the chosen splitting contracts (exact factor < 1). "
        "Exit code 0 when certified, 1 when not, 2 on bad input.",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--bits",
        type=bits_argument,
        required=True,
        metavar="B",
        help=f"bits per weight, sign included ({MIN_BITS} to {MAX_BITS})",
    )
    parser.add_argument(
        "--scheme",
        choices=[scheme.value for scheme in Scheme],
        default=Scheme.MAX_ABS.value,
        help="how the quantization scale is chosen: max-abs (per tensor), pow2 (a power of two, plain "
        "fixed point) or per-row (one scale per output row); default: max-abs",
    )
    parser.add_argument(
        "--splitting",
        choices=[method.value for method in Splitting],
        default=Splitting.PR.value,
        help="operator splitting whose contraction is certified: fb (forward-backward) or pr "
        "(Peaceman-Rachford); default: pr",
    )
    parser.add_argument(
        "--alpha",
        type=positive_float,
        default=None,
        metavar="A",
        help="splitting step alpha (default: the step with the smallest contraction factor on W_q)",
    )
    parser.add_argument(
        "--tensors",
        default=",".join(DEFAULT_QUANTIZED_TENSORS),
        metavar="LIST",
        help="comma-separated tensors to quantize, from W, U, b, W_out, b_out (default: W,U,b)",
    )
    parser.add_argument(
        "--keep-diagonal",
        action="store_true",
        help="keep the diagonal of W exact and quantize only its off-diagonal part",
    )
    parser.add_argument(
        "--factors",
        action="store_true",
        help="quantize the MON factors A and B and compose W_q = (1 - m) I - A_q^T A_q + B_q - B_q^T, "
        "which keeps mu(W_q) >= m (needs a model that stores A, B and m)",
    )
    add_json_argument(parser)
    parser.set_defaults(handler=run)


def _print_summary(certificate: Certificate) -> None:
    operator = certificate.operator
    rows = [
        ("bits", str(operator.bits)),
        ("scheme", operator.scheme),
        ("norm(Delta_W, 2)", f"{operator.weight_perturbation_norm:.6g}"),
        ("margin mu(W)", f"{operator.margin:.6g}"),
        ("quantized margin mu(W_q)", f"{operator.quantized_margin:.6g}"),
        ("a-priori test norm(Delta_W) < mu(W)", "holds" if operator.certified_a_priori else "fails"),
        ("splitting", operator.splitting.upper()),
        ("alpha", f"{operator.alpha:.6g}"),
        ("contraction factor", f"{operator.contraction:.6g}"),
        ("certified", "yes" if certificate.certified else "no"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        sys.stdout.write(f"{label:<{width}}  {value}\n")


def run(args: argparse.Namespace) -> int:
    config = QuantizationConfig(
        bits=args.bits,
        scheme=Scheme.parse(args.scheme),
        tensors=QuantizationConfig.parse_tensors(args.tensors),
        keep_diagonal=args.keep_diagonal,
        factors=args.factors,
    )
    model = load_model_from_args(args)
    certificate = certify_quantized(model, config, Splitting.parse(args.splitting), alpha=args.alpha)

    for reason in certificate.failures():
        logger.warning("not certified: %s", reason)
    if args.json:
        print_json(certificate.to_dict())
    else:
        _print_summary(certificate)
    return EXIT_OK if certificate.certified else EXIT_NEGATIVE
