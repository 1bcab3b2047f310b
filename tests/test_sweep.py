"""Tests of the bit-width sweep, its plot and the `mon2hls sweep` command."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest

from mon2hls.cli import main
from mon2hls.data import Dataset, load_digits
from mon2hls.errors import ConfigError, DataError
from mon2hls.evaluate import parse_bits_range, plot_sweep, sweep
from mon2hls.model import InputPreprocessing, MonModel

ROW_KEYS = {
    "bits", "scheme", "weight_perturbation_norm", "margin", "quantized_margin", "certified_a_priori",
    "splitting", "alpha", "contraction", "certified", "solver_alpha", "converged_fraction",
    "diverged_fraction", "iterations_median", "accuracy", "displacement",
}
DISPLACEMENT_KEYS = {"inputs_checked", "measured_max", "bound_max", "ratio_max", "holds"}
TOP_KEYS = {
    "model", "dataset", "split", "samples", "scheme", "tensors", "splitting", "tol", "max_iter", "margin",
    "float_accuracy", "float_iterations_median", "float_converged_fraction", "smallest_certified_bits",
    "certified_threshold_bits", "rows",
}


def random_mon(rng: np.random.Generator, n: int = 16, d: int = 10, k: int = 3, m: float = 0.5) -> MonModel:
    return MonModel.from_factors(
        A=rng.normal(scale=0.3, size=(n // 2, n)),
        B=rng.normal(scale=0.3, size=(n, n)),
        m=m,
        U=rng.normal(size=(n, d)),
        b=rng.normal(scale=0.5, size=n),
        W_out=rng.normal(size=(k, n)),
        b_out=rng.normal(size=k),
        preprocessing=InputPreprocessing(scale=1.0 / 255.0),
    )


def random_dataset(rng: np.random.Generator, samples: int, features: int, classes: int) -> Dataset:
    return Dataset(
        raw=rng.integers(0, 256, size=(samples, features), dtype=np.uint8),
        labels=rng.integers(0, classes, size=samples),
        name="random",
        split="test",
    )


def digits_model_file(tmp_path, rng) -> str:
    """Write a random MON for the 64-pixel digits in the generic .npz layout."""
    n = 20
    model = MonModel.from_factors(
        A=rng.normal(scale=0.3, size=(n, n)), B=rng.normal(scale=0.3, size=(n, n)), m=1.0,
        U=rng.normal(scale=0.3, size=(n, 64)), b=rng.normal(size=n),
        W_out=rng.normal(size=(10, n)), b_out=np.zeros(10),
    )
    path = tmp_path / "digits_mon.npz"
    np.savez(path, W=model.W, U=model.U, b=model.b, W_out=model.W_out, b_out=model.b_out,
             input_scale=1.0 / 16.0, dataset="digits")
    return str(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3-8", [3, 4, 5, 6, 7, 8]), ("6", [6]), ("2-16", list(range(2, 17))), (" 4 - 5 ", [4, 5])],
)
def test_parse_bits_range_valid(text, expected):
    assert parse_bits_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3-1", r"^bit range '3-1' is invalid: bit widths must be from 2 to 16$"),
        ("8-4", r"^bit range '8-4' is invalid: LO must not exceed HI \(write 4-8\), from 2 to 16$"),
        ("0-4", r"^bit range '0-4' is invalid: bit widths must be from 2 to 16$"),
        ("4-17", r"^bit range '4-17' is invalid: bit widths must be from 2 to 16$"),
        ("a-b", r"^bit range must be LO-HI .* from 2 to 16, for example 3-8, not 'a-b'$"),
        ("", r"not ''$"),
    ],
)
def test_parse_bits_range_invalid(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_bits_range(text)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scheme", ["max-abs", "per-row"])
def test_displacement_bound_holds(seed, scheme):
    rng = np.random.default_rng(seed)
    model = random_mon(rng)
    dataset = random_dataset(rng, 60, model.input_features, model.classes)

    result = sweep(model, range(2, 13), scheme, dataset, tol=1e-8, max_iter=5000, progress=False)

    checked = [row for row in result.rows if row.displacement.inputs_checked > 0]
    assert len(checked) >= 6
    for row in checked:
        assert row.displacement.holds, f"bound fails at {row.bits} bits: ratio {row.displacement.ratio_max}"
        assert row.displacement.ratio_max <= 1.0 + 1e-6
        assert row.displacement.measured_max <= row.displacement.bound_max * (1 + 1e-6)
    for row in result.rows:
        if row.certificate.operator.quantized_margin > 0.05:
            assert row.displacement.inputs_checked == 60


def test_displacement_shrinks_with_bits(rng):
    model = random_mon(rng)
    dataset = random_dataset(rng, 40, model.input_features, model.classes)

    result = sweep(model, [8, 12, 16], "max-abs", dataset, progress=False)

    measured = [row.displacement.measured_max for row in result.rows]
    assert measured[0] > measured[1] > measured[2]
    assert measured[2] < 1e-3


def test_sweep_rows_match_float_at_16_bits(rng):
    model = random_mon(rng)
    dataset = random_dataset(rng, 50, model.input_features, model.classes)

    result = sweep(model, [16], "max-abs", dataset, progress=False)

    row = result.rows[0]
    assert row.certified
    assert row.converged_fraction == 1.0
    assert row.accuracy == pytest.approx(result.float_accuracy, abs=0.02)
    assert 0.0 <= row.accuracy <= 1.0
    assert result.samples == 50


def test_sweep_non_monotone_rows_reported(rng):
    # A margin of 0.02 is lost at 2 bits, so the sweep reports a failed certificate
    # and the convergence it measured instead of raising.
    model = random_mon(rng, m=0.02)
    dataset = random_dataset(rng, 20, model.input_features, model.classes)

    result = sweep(model, [2, 3], "max-abs", dataset, max_iter=50, progress=False)

    failing = [row for row in result.rows if row.certificate.operator.quantized_margin <= 0]
    assert failing
    for row in failing:
        assert not row.certified
        assert 0.0 <= row.converged_fraction <= 1.0


def test_sweep_limit_and_feature_check(rng):
    model = random_mon(rng)
    dataset = random_dataset(rng, 30, model.input_features, model.classes)

    result = sweep(model, [8], "max-abs", dataset, limit=7, progress=False)
    assert result.samples == 7

    with pytest.raises(DataError, match=r"the model takes 10 input features, but data set digits has 64"):
        sweep(model, [8], "max-abs", load_digits("test"), progress=False)


def test_plot_is_png(tmp_path, rng):
    model = random_mon(rng)
    dataset = random_dataset(rng, 20, model.input_features, model.classes)
    result = sweep(model, range(2, 7), "max-abs", dataset, progress=False)

    path = plot_sweep(result, tmp_path / "sweep.png")

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_plot_missing_folder(tmp_path, rng):
    model = random_mon(rng)
    dataset = random_dataset(rng, 5, model.input_features, model.classes)
    result = sweep(model, [8], "max-abs", dataset, progress=False)

    with pytest.raises(ConfigError, match=r"folder .*absent does not exist"):
        plot_sweep(result, tmp_path / "absent" / "sweep.png")


def test_cli_sweep_json(tmp_path, rng, capsys):
    model_path = digits_model_file(tmp_path, rng)
    plot_path = tmp_path / "plot.png"

    code = main(["sweep", model_path, "--bits", "3-5", "--json", "--no-progress", "--plot", str(plot_path)])

    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == TOP_KEYS
    assert document["dataset"] == "digits"
    assert document["samples"] == 360
    assert [row["bits"] for row in document["rows"]] == [3, 4, 5]
    for row in document["rows"]:
        assert set(row) == ROW_KEYS
        assert set(row["displacement"]) == DISPLACEMENT_KEYS
        assert 0.0 <= row["accuracy"] <= 1.0
    assert plot_path.read_bytes()[:4] == b"\x89PNG"


def test_cli_sweep_table(tmp_path, rng, capsys):
    model_path = digits_model_file(tmp_path, rng)

    code = main(["sweep", model_path, "--bits", "6-7", "--limit", "50", "--no-progress"])

    assert code == 0
    output = capsys.readouterr().out
    assert "digits test: 50 inputs" in output
    assert "certified from" in output


@pytest.mark.parametrize("bits", ["3-1", "0-4", "a-b"])
def test_cli_sweep_bad_bits_range(tmp_path, rng, capsys, bits):
    model_path = digits_model_file(tmp_path, rng)

    with pytest.raises(SystemExit) as info:
        main(["sweep", model_path, "--bits", bits])

    assert info.value.code == 2
    assert "2 to 16" in capsys.readouterr().err


def test_cli_sweep_mnist_folder_without_files(tmp_path, rng, capsys):
    model_path = digits_model_file(tmp_path, rng)
    empty = tmp_path / "empty"
    empty.mkdir()

    code = main(["sweep", model_path, "--bits", "4-5", "--dataset", "mnist", "--data-dir", str(empty)])

    assert code == 2
    error = capsys.readouterr().err
    assert f"not found in {empty}" in error
    assert "--data-dir" in error


def test_cli_sweep_corrupt_mnist(tmp_path, rng, capsys):
    model_path = digits_model_file(tmp_path, rng)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"))

    code = main(["sweep", model_path, "--bits", "4", "--dataset", "mnist", "--data-dir", str(tmp_path)])

    assert code == 2
    assert "t10k-images-idx3-ubyte.gz is corrupt or not the MNIST file" in capsys.readouterr().err


@pytest.mark.shared
def test_cli_sweep_model_does_not_fit_digits(locuslab_path, capsys):
    code = main(["sweep", str(locuslab_path), "--m", "1.0", "--bits", "6", "--dataset", "digits", "--json"])

    assert code == 2
    assert json.loads(capsys.readouterr().out)["exit_code"] == 2


def test_cli_sweep_plot_folder_not_writable(tmp_path, rng):
    model_path = digits_model_file(tmp_path, rng)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("running as a user who can write anywhere")

    code = main(["sweep", model_path, "--bits", "6", "--plot", str(locked / "p.png"), "--no-progress"])

    assert code == 2
    assert list(locked.iterdir()) == []


def test_cli_sweep_plot_under_a_file(tmp_path, rng, capsys):
    model_path = digits_model_file(tmp_path, rng)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")

    code = main(["sweep", model_path, "--bits", "6", "--plot", str(blocker / "p.png"), "--no-progress"])

    assert code == 2
    assert f"{blocker} is a file, not a folder; choose another --plot" in capsys.readouterr().err


@pytest.mark.shared
def test_locuslab_sweep_figures(locuslab_path, mnist_dir):
    from mon2hls.data import load_mnist
    from mon2hls.load import load_model

    model = load_model(locuslab_path, m=1.0)
    dataset = load_mnist("test", mnist_dir)

    result = sweep(model, [3, 4, 6], "max-abs", dataset, limit=1000, max_iter=100, progress=False)

    rows = {row.bits: row for row in result.rows}
    assert rows[3].certificate.operator.quantized_margin == pytest.approx(-0.056, abs=0.002)
    assert not rows[3].certified
    assert rows[4].certificate.operator.quantized_margin == pytest.approx(0.60, abs=0.01)
    assert rows[4].certified
    assert rows[6].converged_fraction == 1.0
    assert rows[6].displacement.holds
    assert result.certified_threshold_bits == 4
    assert abs(rows[6].accuracy - result.float_accuracy) < 0.01
