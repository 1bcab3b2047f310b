"""The `mon2hls inspect` subcommand: sizes and spectral figures of a model."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from ..analysis import analyze_operator
from ..model import MonModel
from .common import EXIT_OK, add_json_argument, add_model_arguments, load_model_from_args, print_json

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="show the sizes, margin, Lipschitz constant and best splitting steps of a model",
        description="Load a model and print its sizes, monotonicity margin mu(W), Lipschitz constant "
        "norm(I - W, 2), condition numbers and the best step alpha with its exact contraction factor "
        "for forward-backward (FB) and Peaceman-Rachford (PR) splitting.",
    )
    add_model_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=run)


def inspect_document(model: MonModel) -> dict[str, Any]:
    """Collect the figures `mon2hls inspect` reports, keyed as in its JSON output."""
    analysis = analyze_operator(model.W)
    return {
        "source": model.source,
        "sha256": model.sha256,
        "layout": model.layout,
        "dataset": model.dataset,
        "hidden_units": model.hidden_units,
        "input_features": model.input_features,
        "classes": model.classes,
        "margin_parameter": model.m,
        "margin": analysis.margin,
        "lipschitz": analysis.lipschitz,
        "condition_number": analysis.condition_number,
        "relative_condition_number": analysis.relative_condition_number,
        "fb": analysis.fb.to_dict(),
        "pr": analysis.pr.to_dict(),
    }


def _format_number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _print_table(document: dict[str, Any]) -> None:
    rows = [
        ("model", document["source"]),
        ("sha256", document["sha256"]),
        ("layout", document["layout"]),
        ("dataset", document["dataset"] or "unknown"),
        ("input features", document["input_features"]),
        ("hidden units", document["hidden_units"]),
        ("classes", document["classes"]),
        ("margin parameter m", document["margin_parameter"]),
        ("margin mu(W)", document["margin"]),
        ("Lipschitz constant L", document["lipschitz"]),
        ("condition number L/mu", document["condition_number"]),
        ("relative condition number", document["relative_condition_number"]),
        ("FB best alpha", document["fb"]["alpha"]),
        ("FB contraction factor", document["fb"]["contraction"]),
        ("PR best alpha", document["pr"]["alpha"]),
        ("PR contraction factor", document["pr"]["contraction"]),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        sys.stdout.write(f"{label:<{width}}  {_format_number(value)}\n")


def run(args: argparse.Namespace) -> int:
    model = load_model_from_args(args)
    document = inspect_document(model)
    if document["margin"] <= 0:
        logger.warning(
            "the model is not monotone: mu(W) = %.4g <= 0, so its equilibrium may not exist",
            document["margin"],
        )
    if args.json:
        print_json(document)
    else:
        _print_table(document)
    return EXIT_OK
