"""Build reports: JSON cleaning, the Markdown rendering and the failed-certificate banner."""

from __future__ import annotations

import json

import numpy as np

from mon2hls.report import FAILED_BANNER, clean_json, render_json, render_markdown, write_reports
from mon2hls.targets import get_target, target_for_part


def _document(certified: bool, target=None) -> dict:
    target = target or get_target("pynq")
    return {
        "mon2hls_version": "0.1.0",
        "certified": certified,
        "failures": [] if certified else ["the quantized weight is not monotone: mu(W_q) = -0.05 <= 0"],
        "model": {"name": "tiny.npz", "hidden_units": 8},
        "quantization": {"bits": 3, "scheme": "max-abs"},
        "datapath": {"splitting": "pr", "formats": {"state": {"width": 16, "integer_bits": 6}}},
        "certificate": {"contraction": 0.5, "certified": certified, "rounding": {"radius": 1e-3}},
        "target": target.to_dict(),
        "parallel": 8,
        "parallel_rule": "set by --parallel",
        "cycles": {"load": 1, "injection": 12, "per_iteration": 16, "output": 20, "total_at_max_iterations": 200},
        "resources": {
            "note": "estimates",
            "resources": {"DSP": {"estimated": 8, "available": target.dsp_count,
                                  "percent": None if target.dsp_count is None else 800 / target.dsp_count}},
        },
        "accuracy": {"vectors": {"count": 20}, "dataset": None},
        "rtl": False,
    }


def test_clean_json_converts_numpy_and_infinity():
    cleaned = clean_json({"a": np.float64(1.5), "b": np.int64(3), "c": float("inf"), "d": (1, 2)})
    assert cleaned == {"a": 1.5, "b": 3, "c": None, "d": [1, 2]}


def test_render_json_round_trips():
    document = _document(True)
    assert json.loads(render_json(document))["certified"] is True


def test_certified_report_has_no_banner():
    text = render_markdown(_document(True))
    assert FAILED_BANNER not in text
    assert "Verdict: **certified**" in text
    assert "| certificate.rounding.radius |" not in text
    assert "| rounding.radius | 0.001 |" in text


def test_failed_report_opens_with_banner():
    text = render_markdown(_document(False))
    first_lines = text.splitlines()[:4]
    assert FAILED_BANNER in first_lines[0]
    assert any(FAILED_BANNER in line and "Do not deploy" in line for line in first_lines)
    assert "mu(W_q) = -0.05" in text


def test_unknown_capacity_is_stated():
    text = render_markdown(_document(True, target_for_part("xcvu9p-flga2104-2L-e")))
    assert "capacity of this part is unknown" in text
    assert "| DSP | 8 | n/a | n/a |" in text


def test_write_reports_writes_both_files(tmp_path):
    paths = write_reports(tmp_path, _document(False))
    assert sorted(p.name for p in paths) == ["report.json", "report.md"]
    assert json.loads((tmp_path / "report.json").read_text())["certified"] is False
    assert FAILED_BANNER in (tmp_path / "report.md").read_text()


def test_counts_have_thousands_separators():
    document = _document(True)
    document["resources"]["resources"]["LUT"] = {"estimated": 7704, "available": 53200, "percent": 14.5}
    text = render_markdown(document)
    assert "| LUT | 7,704 | 53,200 | 14.5 % |" in text
    assert "| total_at_max_iterations | 200 |" in text


def test_target_line_names_part_once():
    text = render_markdown(_document(True, target_for_part("xczu9eg-ffvb1156-2-e")))
    assert "part xczu9eg-ffvb1156-2-e, clock 100 MHz" in text
    assert text.count("xczu9eg-ffvb1156-2-e") == 1


def test_board_target_line_names_part():
    text = render_markdown(_document(True))
    assert "TUL PYNQ-Z2 (Zynq-7000 XC7Z020): part xc7z020clg400-1, clock 100 MHz" in text


def test_accuracy_warning_is_rendered():
    document = _document(True)
    document["warnings"] = ["the golden accuracy 20.37 % is 77.82 percentage points below the float model's"]
    assert "**Warning:** the golden accuracy 20.37 %" in render_markdown(document)
