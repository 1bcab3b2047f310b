"""The build report: report.json (the machine-readable figures) and report.md (the same, for people).

`render_markdown` works from the JSON document alone, so both files always
carry the same figures. A build whose certificate failed (only possible with
--force) opens both with a CERTIFICATE FAILED banner.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["FAILED_BANNER", "clean_json", "render_json", "render_markdown", "write_reports"]

FAILED_BANNER = "CERTIFICATE FAILED"


def clean_json(value: Any) -> Any:
    """Convert numpy scalars, tuples and paths to JSON types; Inf and NaN become None, as JSON has neither."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return clean_json(value.item())
    if hasattr(value, "value") and type(value).__module__ != "builtins" and hasattr(type(value), "__members__"):
        return value.value  # enum members
    return value


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(clean_json(document), indent=2, allow_nan=False) + "\n"


def _format(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format(v) for v in value)
    return str(value)


def _flatten(document: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _table(rows: list[tuple[str, Any]], header: tuple[str, str] = ("figure", "value")) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines.extend(f"| {name} | {_format(value)} |" for name, value in rows)
    return lines


def _banner(document: dict[str, Any]) -> list[str]:
    if document.get("certified"):
        return []
    lines = [
        f"> **{FAILED_BANNER}.** This accelerator was built with --force although its certificate does not "
        "hold. Its outputs may differ from the model's, it may not converge, and its saturators may clip. "
        "Do not deploy it.",
        ">",
    ]
    lines.extend(f"> - {reason}" for reason in document.get("failures", []))
    return lines + [""]


#: Keys of the Yosys counts for each resource row of the report.
_SYNTHESIS_KEYS = {"DSP": "dsp", "BRAM36": "bram", "LUT": "lut", "FF": "ff"}


def _resources_section(resources: dict[str, Any], synthesis: dict[str, Any] | None = None) -> list[str]:
    if synthesis:
        lines = [
            "| resource | estimated | Yosys | available | use (Yosys) |",
            "|---|---|---|---|---|",
        ]
    else:
        lines = [
            "| resource | estimated | available | use |",
            "|---|---|---|---|",
        ]
    for kind, row in resources.get("resources", {}).items():
        available = row.get("available")
        if synthesis:
            counted = synthesis.get(_SYNTHESIS_KEYS.get(kind, ""))
            use = "n/a" if not available or counted is None else f"{100.0 * counted / available:.1f} %"
            lines.append(
                f"| {kind} | {_format(row.get('estimated'))} | {_format(counted)} | {_format(available)} | {use} |"
            )
            continue
        percent = row.get("percent")
        use = "n/a" if percent is None else f"{percent:.1f} %"
        lines.append(f"| {kind} | {_format(row.get('estimated'))} | {_format(available)} | {use} |")
    lines.append("")
    lines.append(f"The estimated column is {resources.get('note', 'not synthesized')}.")
    if synthesis:
        lines.append(f"The Yosys column comes from {synthesis.get('tool')} for {synthesis.get('part')} "
                     f"({synthesis.get('note')}).")
    return lines


#: Scope of the verdict, printed under it.
CERTIFIED_MEANING = (
    "*Certified* means, for every input of the input format: the stored operator is monotone and the "
    "splitting contracts, the iteration stops within the certified iteration bound with its state "
    "inside the rounding ball, and no register or accumulator overflows. It bounds the distance to the "
    "float model's equilibrium, but it does not promise accuracy: compare the golden and float "
    "accuracies below."
)


def _displacement_note(certificate: dict[str, Any]) -> list[str]:
    """Say so when the displacement bound is too loose to mean anything."""
    displacement = certificate.get("displacement") or {}
    overflow = certificate.get("overflow") or {}
    bound, state_bound = displacement.get("bound"), overflow.get("state_bound")
    if bound is None or state_bound is None or bound < state_bound:
        return []
    measured = displacement.get("measured")
    measured_text = "not measured" if measured is None else f"measured {_format(measured)}"
    return [
        f"Note: the displacement bound {_format(bound)} exceeds the state bound {_format(state_bound)}, "
        f"so it carries no information for this model ({measured_text} on the test vectors)."
    ]


#: Keys of the datapath document that other sections already show.
_SHOWN_ELSEWHERE = ("certificate", "model", "hidden_units", "input_features", "classes", "bits", "scheme")


def _datapath_only(document: dict[str, Any]) -> dict[str, Any]:
    datapath = document.get("datapath", {})
    return {key: value for key, value in datapath.items() if key not in _SHOWN_ELSEWHERE}


def render_markdown(document: dict[str, Any]) -> str:
    """Render the report document as Markdown: verdict, model, datapath, certificate, speed, size, accuracy."""
    document = clean_json(document)
    model = document.get("model", {})
    title = f"# mon2hls build report: {model.get('name', 'model')}"
    if not document.get("certified"):
        title += f" ({FAILED_BANNER})"
    lines = [title, ""]
    lines.extend(_banner(document))

    verdict = "certified" if document.get("certified") else "NOT certified (built with --force)"
    target = document.get("target", {})
    # A bare --part is described by its part name already, so the part is not repeated.
    device = target.get("description") or target.get("name")
    if target.get("part") and target.get("part") not in str(device):
        device = f"{device}: part {target.get('part')}"
    lines += [
        f"Verdict: **{verdict}**. Generated by mon2hls {document.get('mon2hls_version')}; "
        "rebuild with `mon2hls build --config mon2hls.yaml -o OUT`.",
        "",
        CERTIFIED_MEANING,
        "",
        "## Model",
        "",
        *_table(_flatten(model)),
        "",
        "## Quantization and datapath",
        "",
        *_table(_flatten(document.get("quantization", {})) + _flatten(_datapath_only(document))),
        "",
        "## Certificate",
        "",
        *_table(_flatten({k: v for k, v in document.get("certificate", {}).items() if k != "notes"})),
        "",
        *[f"Note: {note}" for note in document.get("certificate", {}).get("notes", [])],
        *_displacement_note(document.get("certificate", {})),
        "",
        "## Target",
        "",
        f"{device}, clock {_format(target.get('clock_mhz'))} MHz, "
        f"parallelism {document.get('parallel')} multipliers "
        f"({document.get('parallel_rule')}).",
        "",
    ]
    if not target.get("resources_known"):
        lines += [
            "The capacity of this part is unknown to mon2hls, so the estimate below is not checked against it.",
            "",
        ]

    cycles = document.get("cycles", {})
    lines += [
        "## Estimated cycles per inference",
        "",
        *_table([(k, v) for k, v in cycles.items()]),
        "",
        "The latencies assume the target clock; no timing analysis has been run on this design. "
        "The HLS design's latency is what Vitis HLS reports after csynth_design.",
        "",
        "## Estimated resources",
        "",
        *_resources_section(document.get("resources", {}), document.get("synthesis")),
        "",
        "## Golden-model accuracy",
        "",
        *_table(_flatten(document.get("accuracy", {}))),
        "",
        *[f"**Warning:** {warning}\n" for warning in document.get("warnings", [])],
        "## Files",
        "",
        "- `hls/`: Vitis HLS C++ and the C simulation testbench (`mon2hls sim OUT --csim`)",
    ]
    if document.get("rtl"):
        lines.append("- `rtl/`: Verilog and its testbench (`mon2hls sim OUT --rtl`)")
    lines += [
        "- `vectors/`: test inputs and the golden model's expected outputs, bit for bit",
        "- `mon2hls.yaml`: the resolved build configuration",
        "",
    ]
    return "\n".join(lines)


def write_reports(folder: str | Path, document: dict[str, Any]) -> list[Path]:
    """Write report.json and report.md into `folder`; returns their paths."""
    folder = Path(folder)
    json_path = folder / "report.json"
    markdown_path = folder / "report.md"
    json_path.write_text(render_json(document), encoding="utf-8")
    markdown_path.write_text(render_markdown(document), encoding="utf-8")
    return [json_path, markdown_path]
