"""Tests of the command line: model options, certify, exit codes and output streams."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mon2hls.cli import main

CERTIFY_KEYS = [
    "bits",
    "scheme",
    "weight_perturbation_norm",
    "margin",
    "quantized_margin",
    "certified_a_priori",
    "splitting",
    "alpha",
    "contraction",
    "certified",
]


def write_locuslab(path: Path, seed: int = 0, n: int = 6, d: int = 4, k: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    state = {
        "mon.linear_module.U.weight": torch.tensor(rng.normal(size=(n, d))),
        "mon.linear_module.U.bias": torch.tensor(rng.normal(size=n)),
        "mon.linear_module.A.weight": torch.tensor(rng.normal(scale=0.3, size=(n, n))),
        "mon.linear_module.B.weight": torch.tensor(rng.normal(scale=0.3, size=(n, n))),
        "Wout.weight": torch.tensor(rng.normal(size=(k, n))),
        "Wout.bias": torch.tensor(rng.normal(size=k)),
    }
    torch.save(state, path)
    return path


def run_usage_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process, expect exit code 2 and empty stdout, and return stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def run_input_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process on input the library rejects; expect exit code 2 and, with --json, one error
    document on stdout (else nothing)."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    if "--json" in argv:
        document = json.loads(captured.out)
        assert document["exit_code"] == 2
        assert captured.err.startswith(f"ERROR: {document['error']}")
    else:
        assert captured.out == ""
    return captured.err


@pytest.fixture
def small_model(tmp_path) -> Path:
    return write_locuslab(tmp_path / "mon.pt")


def test_certify_locuslab_four_bits(capsys, locuslab_path):
    code = main(["certify", str(locuslab_path), "--m", "1.0", "--bits", "4", "--json"])
    captured = capsys.readouterr()

    assert code == 0
    document = json.loads(captured.out)
    assert list(document) == CERTIFY_KEYS
    assert document["quantized_margin"] == pytest.approx(0.600, abs=0.002)
    assert document["margin"] == pytest.approx(1.000, abs=1e-3)
    assert document["certified"] is True
    assert document["scheme"] == "max-abs"
    assert document["splitting"] == "pr"
    assert "INFO: loaded" in captured.err


def test_certify_locuslab_three_bits_exit_one(capsys, locuslab_path):
    code = main(["certify", str(locuslab_path), "--m", "1.0", "--bits", "3", "--json"])
    captured = capsys.readouterr()

    assert code == 1
    document = json.loads(captured.out)
    assert document["quantized_margin"] < 0
    assert document["certified"] is False
    assert "WARNING: not certified: the quantized weight is not monotone" in captured.err


def test_certify_json_is_one_document(capsys, small_model):
    code = main(
        [
            "certify",
            str(small_model),
            "--m",
            "1",
            "--bits",
            "8",
            "--splitting",
            "fb",
            "--alpha",
            "0.1",
            "--json",
        ]
    )
    out = capsys.readouterr().out

    decoder = json.JSONDecoder()
    document, end = decoder.raw_decode(out)
    assert out[end:].strip() == ""
    assert code == (0 if document["certified"] else 1)
    assert document["alpha"] == 0.1
    assert document["splitting"] == "fb"


@pytest.mark.parametrize(
    "option",
    [["--keep-diagonal"], ["--factors"], ["--scheme", "pow2"], ["--scheme", "per-row"], ["--tensors", "W"]],
)
def test_certify_quantization_options(capsys, small_model, option):
    code = main(["certify", str(small_model), "--m", "1", "--bits", "6", "--json", *option])
    document = json.loads(capsys.readouterr().out)

    assert code in (0, 1)
    assert document["bits"] == 6
    if "--factors" in option:
        assert document["quantized_margin"] >= 1.0 - 1e-9
    if "--scheme" in option:
        assert document["scheme"] == option[1]


def test_certify_table_output(capsys, small_model):
    code = main(["certify", str(small_model), "--m", "1", "--bits", "8"])
    out = capsys.readouterr().out

    assert code == 0
    assert out.splitlines()[0].split() == ["bits", "8"]
    assert out.splitlines()[-1].split() == ["certified", "yes"]


@pytest.mark.parametrize(
    ("bits", "message"),
    [
        ("0", r"bit width must be from 2 to 16, not 0$"),
        ("1", r"bit width must be from 2 to 16, not 1$"),
        ("17", r"bit width must be from 2 to 16, not 17$"),
        ("six", r"bit width must be a whole number from 2 to 16, not 'six'$"),
    ],
)
def test_certify_rejects_bits(capsys, small_model, bits, message):
    err = run_usage_error(capsys, ["certify", str(small_model), "--m", "1", "--bits", bits])

    assert re.search(r"^mon2hls certify: error: argument --bits: " + message, err, re.MULTILINE), err


@pytest.mark.parametrize("value", ["0", "-1", "nan", "one"])
def test_rejects_non_positive_m(capsys, small_model, value):
    err = run_usage_error(capsys, ["inspect", str(small_model), "--m", value])

    assert (
        err.splitlines()[-1]
        == f"mon2hls inspect: error: argument --m: must be a positive number, not '{value}'"
    )


def test_rejects_negative_alpha(capsys, small_model):
    err = run_usage_error(capsys, ["certify", str(small_model), "--m", "1", "--bits", "6", "--alpha", "-0.5"])

    assert err.splitlines()[-1].endswith("argument --alpha: must be a positive number, not '-0.5'")


def test_rejects_unknown_tensor(capsys, small_model):
    err = run_input_error(
        capsys, ["certify", str(small_model), "--m", "1", "--bits", "6", "--tensors", "W,V"]
    )

    assert err.startswith("ERROR: unknown tensor name(s) 'V'; choose from: W, U, b, W_out, b_out")


def test_locuslab_without_m(capsys, small_model):
    err = run_input_error(capsys, ["inspect", str(small_model), "--json"])

    assert err.startswith("ERROR: ")
    assert "does not store the margin parameter m; pass the value the model was trained with as --m M" in err


def test_missing_model_file(capsys, tmp_path):
    err = run_input_error(capsys, ["certify", str(tmp_path / "absent.pt"), "--bits", "6", "--json"])

    assert err.startswith(f"ERROR: model file not found: {tmp_path / 'absent.pt'}; check the path")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["inspect", "certify", "sweep", "build", "sim"])
def test_json_error_is_one_document(capsys, tmp_path, command):
    argv = {
        "inspect": ["inspect", str(tmp_path / "absent.pt"), "--json"],
        "certify": ["certify", str(tmp_path / "absent.pt"), "--bits", "6", "--json"],
        "sweep": ["sweep", str(tmp_path / "absent.pt"), "--bits", "4-6", "--json"],
        "build": ["build", str(tmp_path / "absent.pt"), "--bits", "6", "-o", str(tmp_path / "out"), "--json"],
        "sim": ["sim", str(tmp_path / "absent"), "--csim", "--json"],
    }[command]
    assert main(argv) == 2
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"error", "exit_code"}
    assert document["exit_code"] == 2
    assert str(tmp_path / "absent") in document["error"]


def test_train_output_under_a_file(capsys, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")

    err = run_input_error(capsys, ["train", "--dataset", "digits", "-o", str(blocker / "sub" / "m.pt")])

    assert f"{blocker} is a file, not a folder; choose another -o" in err
    assert [p.name for p in tmp_path.iterdir()] == ["blocker"]


def test_text_model_file(capsys, tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("W = [[1, 2], [3, 4]]\n")

    err = run_input_error(capsys, ["inspect", str(path), "--json"])

    assert err.startswith(f"ERROR: {path} is neither a PyTorch checkpoint nor a NumPy .npz archive")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_onnx_model_file(capsys, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")

    err = run_input_error(capsys, ["inspect", str(path)])

    assert err.startswith(f"ERROR: {path}: ONNX import is planned but not supported yet")


def test_unknown_layout_choice(capsys, small_model):
    err = run_usage_error(capsys, ["inspect", str(small_model), "--layout", "onnx"])

    assert "argument --layout: invalid choice: 'onnx'" in err


@pytest.mark.parametrize("command", ["inspect", "certify"])
def test_model_help_mentions_onnx(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())

    assert exit_info.value.code == 0
    assert "ONNX import: planned" in out
    assert "--m M" in out
    assert "--layout {auto,locuslab,generic,mon2hls}" in out


def console_script() -> Path:
    script = Path(sys.executable).parent / "mon2hls"
    if not script.is_file():
        pytest.skip(f"console script not installed next to {sys.executable}")
    return script


def test_console_script_exit_codes(locuslab_path):
    script = console_script()
    common = [str(script), "certify", str(locuslab_path), "--m", "1.0", "--json"]

    rejected = subprocess.run([*common, "--bits", "3"], capture_output=True, text=True, timeout=120)
    bad_bits = subprocess.run([*common, "--bits", "17"], capture_output=True, text=True, timeout=120)

    assert rejected.returncode == 1, rejected.stderr
    assert json.loads(rejected.stdout)["certified"] is False
    assert rejected.stderr.startswith("INFO: loaded")
    assert bad_bits.returncode == 2
    assert bad_bits.stdout == ""
    assert "argument --bits: bit width must be from 2 to 16, not 17" in bad_bits.stderr
