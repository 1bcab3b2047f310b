"""The `mon2hls` command line.

Exit codes: 0 success, 1 a verdict the user asked about is negative (for
example a model that is not certified), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import Mon2hlsError
from .common import EXIT_USAGE, UsageError, print_json

__all__ = ["main"]

logger = logging.getLogger("mon2hls")

#: Subcommand modules, in the order of the pipeline. Each defines
#: `register(subparsers)`, which adds its parser and sets `handler`.
SUBCOMMANDS = ("inspect", "certify", "sweep", "train", "build", "sim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mon2hls",
        description="Turn a trained monotone operator equilibrium network (MON) into a certified "
        "fixed-point FPGA accelerator.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        module = importlib.import_module(f".{name}", __name__)
        module.register(subparsers)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    if quiet:
        level = logging.WARNING
    elif verbose > 0:
        level = logging.DEBUG
    else:
        level = logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("mon2hls")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _print_json_error(args: argparse.Namespace, error: Mon2hlsError) -> None:
    # With --json, stdout carries exactly one JSON document, on failure too.
    if getattr(args, "json", False):
        print_json({"error": str(error), "exit_code": EXIT_USAGE})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    try:
        return int(args.handler(args) or 0)
    except UsageError as error:
        _print_json_error(args, error)
        parser.exit(EXIT_USAGE, f"mon2hls {args.command}: error: {error}\n")
    except Mon2hlsError as error:
        logger.error("%s", error)
        _print_json_error(args, error)
        return EXIT_USAGE
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
