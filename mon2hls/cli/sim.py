"""The `mon2hls sim` subcommand: simulate a built accelerator against its golden test vectors."""

from __future__ import annotations

import argparse
import json
import dataclasses
import importlib
import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ToolchainError
from .common import EXIT_NEGATIVE, EXIT_OK, add_json_argument, print_json

logger = logging.getLogger(__name__)

#: Mismatches printed without --json; the JSON document lists all that the simulator reported.
MISMATCHES_SHOWN = 10

# Simulation kind -> (module, function, folder the build writes for it, name in messages).
_SIMULATORS = {
    "csim": ("mon2hls.sim.csim", "run_csim", "hls", "C simulation"),
    "rtl": ("mon2hls.sim.rtl", "run_rtl", "rtl", "RTL simulation"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="simulate a built accelerator (C simulation or RTL) against its test vectors",
        description="Run the generated C++ (--csim, with g++ and the ap_fixed headers) or the generated "
        "Verilog (--rtl) on OUT/vectors and compare every output word with the golden model. Exit code 0 "
        "when every vector matches bit for bit, 1 when any differs, 2 when OUT or a tool is missing.",
    )
    parser.add_argument("output", metavar="OUT", help="folder written by mon2hls build")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--csim", dest="kind", action="store_const", const="csim",
                      help="compile hls/ with g++ and run its testbench")
    kind.add_argument("--rtl", dest="kind", action="store_const", const="rtl",
                      help="simulate rtl/ with its testbench")
    add_json_argument(parser)
    parser.set_defaults(handler=run)


def _simulator(kind: str) -> Any:
    module_name, function_name, _, label = _SIMULATORS[kind]
    try:
        module = importlib.import_module(module_name)
        return getattr(module, function_name)
    except (ImportError, AttributeError):
        raise ToolchainError(f"{label} is not available in this installation of mon2hls") from None


def run(args: argparse.Namespace) -> int:
    kind = args.kind
    _, _, subfolder, label = _SIMULATORS[kind]
    folder = Path(args.output)
    if not folder.is_dir():
        raise ConfigError(f"output folder {folder} not found; build it first with mon2hls build ... -o {folder}")
    if not (folder / subfolder).is_dir():
        raise ConfigError(
            f"{folder} has no {subfolder}/ folder, so it cannot be used for {label}; "
            f"rebuild it with a mon2hls that writes {subfolder}/"
        )
    if not (folder / "vectors").is_dir():
        raise ConfigError(f"{folder} has no vectors/ folder; rebuild it with mon2hls build")

    result = _simulator(kind)(folder)
    counts = _vector_counts(kind, result, folder)
    passed = counts["total"] > 0 and counts["matched"] == counts["total"] and not counts["bounded"]
    mismatches = [_mismatch(m) for m in (getattr(result, "mismatches", None) or [])]
    timing = _cycle_check(result, folder) if kind == "rtl" else {}
    if args.json:
        print_json({"simulation": kind, "output": str(folder), **counts, "passed": passed,
                    **timing, "mismatches": mismatches})
    else:
        at_most = "at most " if counts["bounded"] else ""
        print(f"{label}: matched {at_most}{counts['matched']}/{counts['total']} vectors bit for bit")
        listed = list(getattr(result, "mismatches", None) or [])
        for mismatch in listed[:MISMATCHES_SHOWN]:
            print(f"  mismatch: {_describe_mismatch(mismatch)}")
        if len(listed) > MISMATCHES_SHOWN:
            print(f"  ... and {len(listed) - MISMATCHES_SHOWN} more (all of them with --json)")
        if timing.get("cycles_measured"):
            print(f"cycles per inference: mean {timing['cycles_mean']:,.1f}; equal to the report's formula on "
                  f"{timing['cycles_match_formula']}/{timing['cycles_measured']} inferences")
    if not passed:
        logger.error(
            "%s: %d of %d vectors differ from the golden model", label, counts["total"] - counts["matched"],
            counts["total"],
        )
    return EXIT_OK if passed else EXIT_NEGATIVE


def _vector_counts(kind: str, result: Any, folder: Path) -> dict[str, Any]:
    """Count matched vectors (inferences). The RTL simulator counts inferences, the C testbench output words.

    From word counts, every vector matched when every word did; otherwise the
    vectors named in the mismatch list failed. The C testbench lists at most
    its first few mismatching words, so when the list is shorter than the
    mismatching words, the matched count is an upper bound (`bounded`).
    """
    matched, total = int(result.matched), int(result.total)
    if kind == "rtl":
        return {"matched": matched, "total": total, "words_matched": None, "words_total": None, "bounded": False}
    if total == 0:
        return {"matched": 0, "total": 0, "words_matched": 0, "words_total": 0, "bounded": False}
    vectors = sum(1 for line in (folder / "vectors" / "inputs.hex").read_text().splitlines() if line.strip())
    mismatches = list(getattr(result, "mismatches", None) or [])
    failed = {getattr(m, "inference", index) for index, m in enumerate(mismatches)}
    if matched == total:
        failed = set()
    bounded = bool(matched != total and len(mismatches) < total - matched)
    if matched != total and not failed:
        failed = {None}
    return {
        "matched": vectors - len(failed),
        "total": vectors,
        "words_matched": matched,
        "words_total": total,
        "bounded": bounded,
    }


def _describe_mismatch(mismatch: Any) -> str:
    """Describe one mismatch as "inference I word J: expected 0x.. got 0x..", or as its simulator does."""
    if hasattr(mismatch, "describe"):
        return str(mismatch.describe())
    fields = _mismatch(mismatch)
    if isinstance(fields, dict) and {"inference", "word", "expected"} <= set(fields):
        got = fields.get("got")
        received = "nothing (the word is missing)" if got is None else f"0x{got:08x}"
        expected = f"0x{fields['expected']:08x}"
        return f"inference {fields['inference']} word {fields['word']}: expected {expected} got {received}"
    return str(fields)


def _mismatch(mismatch: Any) -> Any:
    if hasattr(mismatch, "to_dict"):
        return mismatch.to_dict()
    if dataclasses.is_dataclass(mismatch):
        return dataclasses.asdict(mismatch)
    if isinstance(mismatch, (dict, list, tuple, str, int)):
        return mismatch
    return str(mismatch)


def _cycle_check(result: Any, folder: Path) -> dict[str, Any]:
    """Compare the measured cycles of each inference with load + injection + I per_iteration + output.

    The terms come from report.json, so this checks mon2hls's own Verilog;
    Verilog that Vitis HLS generated follows another schedule.
    """
    cycles = list(getattr(result, "cycles", None) or [])
    iterations = list(getattr(result, "iterations", None) or [])
    if not cycles or len(cycles) != len(iterations):
        return {}
    try:
        terms = json.loads((folder / "report.json").read_text(encoding="utf-8"))["cycles"]
        fixed = terms["load"] + terms["injection"] + terms["output"]
        per_iteration = terms["per_iteration"]
    except (OSError, ValueError, KeyError, TypeError):
        return {"cycles_measured": len(cycles), "cycles_mean": sum(cycles) / len(cycles)}
    expected = [fixed + count * per_iteration for count in iterations]
    return {
        "cycles_measured": len(cycles),
        "cycles_mean": sum(cycles) / len(cycles),
        "cycles_match_formula": sum(1 for got, want in zip(cycles, expected) if got == want),
    }
