"""Tests of `mon2hls inspect`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mon2hls.analysis import analyze_operator
from mon2hls.cli import main
from mon2hls.model import MonModel, compose_weight

INSPECT_KEYS = {
    "source",
    "sha256",
    "layout",
    "dataset",
    "hidden_units",
    "input_features",
    "classes",
    "margin_parameter",
    "margin",
    "lipschitz",
    "condition_number",
    "relative_condition_number",
    "fb",
    "pr",
}


def write_generic(path, seed: int = 0, n: int = 7, d: int = 3, k: int = 5, m: float = 0.5) -> MonModel:
    rng = np.random.default_rng(seed)
    A = rng.normal(scale=0.3, size=(n, n))
    B = rng.normal(scale=0.3, size=(n, n))
    arrays = dict(
        W=compose_weight(A, B, m),
        U=rng.normal(size=(n, d)),
        b=rng.normal(size=n),
        W_out=rng.normal(size=(k, n)),
        b_out=rng.normal(size=k),
    )
    np.savez(path, **arrays)
    return MonModel(**arrays)


def run_json(capsys, argv: list[str]) -> tuple[dict, str]:
    """Run the CLI in-process; return the JSON document from stdout and the text on stderr."""
    assert main(argv) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_inspect_locuslab_figures(capsys, locuslab_path):
    document, _ = run_json(capsys, ["inspect", str(locuslab_path), "--m", "1.0", "--json"])

    assert set(document) == INSPECT_KEYS
    assert (document["input_features"], document["hidden_units"], document["classes"]) == (784, 87, 10)
    assert document["margin"] == pytest.approx(1.000, abs=1e-3)
    assert document["lipschitz"] == pytest.approx(5.54, abs=0.01)
    assert document["condition_number"] == pytest.approx(document["lipschitz"] / document["margin"])
    assert document["layout"] == "locuslab"
    assert document["dataset"] == "mnist"
    assert len(document["sha256"]) == 64
    assert 0 < document["fb"]["contraction"] < 1
    assert 0 < document["pr"]["contraction"] < document["fb"]["contraction"]


def test_inspect_small_model_matches_analysis(capsys, tmp_path):
    path = tmp_path / "mon.npz"
    model = write_generic(path)

    document, _ = run_json(capsys, ["inspect", str(path), "--json"])

    analysis = analyze_operator(model.W)
    assert document["margin"] == pytest.approx(analysis.margin, rel=1e-12)
    assert document["lipschitz"] == pytest.approx(analysis.lipschitz, rel=1e-12)
    assert document["relative_condition_number"] == pytest.approx(analysis.relative_condition_number)
    assert document["fb"] == pytest.approx(analysis.fb.to_dict())
    assert document["pr"] == pytest.approx(analysis.pr.to_dict())
    assert (document["input_features"], document["hidden_units"], document["classes"]) == (3, 7, 5)
    assert document["margin_parameter"] is None
    assert document["source"] == str(path)


def test_inspect_table(capsys, tmp_path):
    path = tmp_path / "mon.npz"
    model = write_generic(path)

    assert main(["inspect", str(path)]) == 0

    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        label, _, value = line.rpartition("  ")
        rows[label.strip()] = value.strip()
    assert rows["hidden units"] == "7"
    assert rows["input features"] == "3"
    assert float(rows["margin mu(W)"]) == pytest.approx(analyze_operator(model.W).margin, rel=1e-5)
    assert rows["layout"] == "generic"


def test_inspect_non_monotone_model_warns(capsys, tmp_path):
    path = tmp_path / "mon.npz"
    n = 4
    np.savez(
        path, W=2.0 * np.eye(n), U=np.ones((n, 2)), b=np.zeros(n), W_out=np.ones((1, n)), b_out=np.zeros(1)
    )

    document, err = run_json(capsys, ["inspect", str(path), "--json"])

    assert document["margin"] == pytest.approx(-1.0)
    assert document["condition_number"] is None
    assert "WARNING: the model is not monotone: mu(W) = -1 <= 0" in err
