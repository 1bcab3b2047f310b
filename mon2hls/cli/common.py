"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from ..errors import Mon2hlsError

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_USAGE = 2


class UsageError(Mon2hlsError):
    """A command-line option is invalid; reported like an argparse error."""


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print exactly one JSON document on stdout (logs stay on stderr)"
    )


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def print_json(document: Any) -> None:
    """Print one JSON document on stdout; Inf and NaN become null, as JSON has neither."""
    json.dump(_clean(document), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
    sys.stdout.flush()
