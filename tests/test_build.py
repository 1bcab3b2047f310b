"""`mon2hls build`: the locuslab model end to end, uncertified configurations and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from mon2hls.cli import main
from mon2hls.errors import ToolchainError
from mon2hls.model import MonModel
from mon2hls.report import FAILED_BANNER

#: Float accuracy of the locuslab MNIST model on the 10,000 test images.
LOCUSLAB_FLOAT_ACCURACY = 0.9819


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def locuslab_build(tmp_path_factory, locuslab_path, mnist_dir):
    """The locuslab model built once at 6 bits for the PYNQ-Z2: (exit code, output folder)."""
    out = tmp_path_factory.mktemp("build") / "mnist-6bit"
    code = main(["build", str(locuslab_path), "--m", "1.0", "--bits", "6", "--target", "pynq",
                 "--data-dir", str(mnist_dir), "-o", str(out)])
    return code, out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random 8-unit MON with margin 0.02 in the generic .npz layout: certified at 6 bits, not at 3."""
    rng = np.random.default_rng(7)
    n, d, k = 8, 4, 3
    model = MonModel.from_factors(
        rng.normal(size=(n, n)) * 0.6, rng.normal(size=(n, n)) * 0.6, 0.02,
        rng.normal(size=(n, d)), rng.normal(size=n) * 0.1, rng.normal(size=(k, n)), rng.normal(size=k) * 0.1,
    )
    path = tmp_path_factory.mktemp("models") / "tiny.npz"
    np.savez(path, W=model.W, U=model.U, b=model.b, W_out=model.W_out, b_out=model.b_out)
    return path


def _tiny_args(tiny_model: Path, out: Path, *extra: str) -> list[str]:
    return ["build", str(tiny_model), "--input-range", "-1", "1", "--vectors", "20", "-o", str(out), *extra]


# The locuslab model, built once.

def test_locuslab_build_succeeds(locuslab_build):
    code, out = locuslab_build
    assert code == 0
    assert out.is_dir()


def test_locuslab_build_folder_complete(locuslab_build):
    _, out = locuslab_build
    for name in ("hls", "vectors", "report.md", "report.json", "mon2hls.yaml"):
        assert (out / name).exists(), name
    assert any((out / "hls").iterdir())
    assert (out / "rtl").is_dir()
    assert any((out / "rtl").iterdir())
    inputs = (out / "vectors" / "inputs.hex").read_text().splitlines()
    outputs = (out / "vectors" / "outputs.hex").read_text().splitlines()
    labels = (out / "vectors" / "labels.txt").read_text().split()
    assert len(inputs) == len(outputs) == len(labels) == 200
    # 784 pixels at 4 per 32-bit beat; 10 logits and a status word.
    assert len(inputs[0].split()) == 196
    assert len(outputs[0].split()) == 11
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_locuslab_report_json(locuslab_build):
    _, out = locuslab_build
    report = json.loads((out / "report.json").read_text())
    assert report["certified"] is True
    assert report["failures"] == []
    assert report["model"]["hidden_units"] == 87
    assert report["model"]["inputs"] == 784
    assert report["model"]["classes"] == 10
    assert len(report["model"]["sha256"]) == 64
    assert report["quantization"] == {"bits": 6, "scheme": "max-abs"}
    assert report["certificate"]["certified"] is True
    assert 0 < report["certificate"]["contraction"] < 1
    assert report["target"]["part"] == "xc7z020clg400-1"
    assert report["parallel"] == 87
    # 87 lanes and the requantization multiply.
    assert report["resources"]["resources"]["DSP"] == {
        "estimated": 89, "available": 220, "percent": pytest.approx(100 * 89 / 220), "fits": True,
    }
    # One ROM, 87 codes of 6 bits wide and 967 tiles deep: 8 x 2 BRAM36.
    assert report["resources"]["resources"]["BRAM36"]["estimated"] == 16
    cycles = report["cycles"]
    # 196 input beats, plus the start cycle when the Verilog schedule gives the figures.
    assert cycles["load"] in (196, 197)
    assert cycles["total_at_max_iterations"] >= cycles["total_at_median_iterations"] > cycles["injection"]
    assert cycles["median_iterations"] <= cycles["max_iterations"]


def test_locuslab_golden_accuracy(locuslab_build):
    _, out = locuslab_build
    accuracy = json.loads((out / "report.json").read_text())["accuracy"]
    assert accuracy["dataset"]["samples"] == 10000
    assert abs(accuracy["dataset"]["accuracy"] - LOCUSLAB_FLOAT_ACCURACY) <= 0.003
    assert accuracy["dataset"]["converged"] == 10000
    assert accuracy["vectors"]["count"] == 200
    assert accuracy["vectors"]["accuracy"] >= 0.95


def test_locuslab_displacement_measured(locuslab_build):
    _, out = locuslab_build
    displacement = json.loads((out / "report.json").read_text())["certificate"]["displacement"]
    assert displacement["measured_inputs"] == 200
    assert 0 < displacement["measured"] <= displacement["bound"]
    assert "| displacement.measured | n/a |" not in (out / "report.md").read_text()


def test_locuslab_float_baseline(locuslab_build):
    _, out = locuslab_build
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy"]["dataset"]["float_accuracy"] == LOCUSLAB_FLOAT_ACCURACY
    assert report["accuracy"]["vectors"]["float_accuracy"] >= 0.95
    assert report["warnings"] == []
    assert "dataset.float_accuracy | 0.9819" in (out / "report.md").read_text()


def test_accuracy_loss_is_warned(locuslab_path, mnist_dir, tmp_path, capsys):
    # 2-bit PR weights are certified, yet classify about 20 % of MNIST correctly.
    out = tmp_path / "out"
    code = main(["build", str(locuslab_path), "--m", "1", "--bits", "2", "--vectors", "5",
                 "--data-dir", str(mnist_dir), "-o", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "WARNING: the golden accuracy" in captured.err
    assert "(float model 98.19 %)" in captured.out
    report = json.loads((out / "report.json").read_text())
    assert report["certified"] is True
    assert report["accuracy"]["dataset"]["accuracy"] < 0.5
    assert len(report["warnings"]) == 1
    assert "not accuracy" in report["warnings"][0]
    assert "**Warning:** the golden accuracy" in (out / "report.md").read_text()


def test_locuslab_report_markdown(locuslab_build):
    _, out = locuslab_build
    text = (out / "report.md").read_text()
    assert "Verdict: **certified**" in text
    assert FAILED_BANNER not in text
    assert "estimate" in text


def test_locuslab_resolved_config(locuslab_build, locuslab_path):
    _, out = locuslab_build
    config = yaml.safe_load((out / "mon2hls.yaml").read_text())
    assert config["model"]["path"] == str(locuslab_path.resolve())
    assert len(config["model"]["sha256"]) == 64
    assert config["quantization"] == {"bits": 6, "scheme": "max-abs"}
    assert config["datapath"]["splitting"] == "pr"
    assert config["datapath"]["alpha"] > 0
    assert config["datapath"]["max_iterations"] >= 1
    assert len(config["datapath"]["state_format"]) == 2
    assert config["hardware"] == {
        "target": "pynq-z2", "part": None, "clock_mhz": 100.0, "parallel": 87, "synth": False,
    }


def test_rebuild_from_config_identical(locuslab_build, tmp_path):
    _, out = locuslab_build
    other = tmp_path / "again"
    assert main(["build", "--config", str(out / "mon2hls.yaml"), "-o", str(other)]) == 0
    first, second = _files(out), _files(other)
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == []


def test_config_options_can_be_overridden(tiny_model, tmp_path):
    first = tmp_path / "first"
    assert main(_tiny_args(tiny_model, first, "--bits", "6")) == 0
    second = tmp_path / "second"
    assert main(["build", "--config", str(first / "mon2hls.yaml"), "--parallel", "2", "--bits", "8",
                 "-o", str(second)]) == 0
    report = json.loads((second / "report.json").read_text())
    assert report["parallel"] == 2
    assert report["parallel_rule"] == "set by --parallel"
    assert report["quantization"]["bits"] == 8


def test_config_must_be_a_mapping(tmp_path, capsys):
    config = tmp_path / "mon2hls.yaml"
    config.write_text("- just\n- a list\n")
    assert main(["build", "--config", str(config), "-o", str(tmp_path / "out")]) == 2
    assert "must be a YAML mapping" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("- just\n- a list\n", "not a single list"),
        ("model: {path: m.pt}\ndatapath: {}\nhardware: {}\n", "lacks the required section quantization"),
        ("model: {path: m.pt}\nquantization: 6\ndatapath: {}\nhardware: {}\n",
         "section quantization must be a mapping of options, not a number"),
        ("model: {path: m.pt}\nquantization: {scheme: pow2}\ndatapath: {}\nhardware: {}\n",
         "lacks the required key quantization.bits"),
        ("model: {path: m.pt}\nquantization: {bits: 6}\ndatapath: {}\nhardware: {}\nvectors: {count: many}\n",
         "has a value of the wrong type"),
    ],
)
def test_config_errors_name_the_problem(tmp_path, capsys, text, message):
    config = tmp_path / "mon2hls.yaml"
    config.write_text(text)
    assert main(["build", "--config", str(config), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "NoneType" not in err
    assert "KeyError" not in err


def test_config_rejects_changed_model(tiny_model, tmp_path, capsys):
    first = tmp_path / "first"
    assert main(_tiny_args(tiny_model, first, "--bits", "6")) == 0
    text = (first / "mon2hls.yaml").read_text()
    sha256 = yaml.safe_load(text)["model"]["sha256"]
    (tmp_path / "edited.yaml").write_text(text.replace(sha256, "f" * 64))
    assert main(["build", "--config", str(tmp_path / "edited.yaml"), "-o", str(tmp_path / "second")]) == 2
    assert "has changed since the configuration was written" in capsys.readouterr().err
    assert not (tmp_path / "second").exists()


# Uncertified configurations.

def test_uncertified_exits_1_and_writes_nothing(tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "3")) == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    message = capsys.readouterr().err
    assert "not certified" in message
    assert "not monotone" in message
    assert "the next bit width above 3 that is certified with these options is 4: try --bits 4" in message


def test_uncertified_with_force_is_marked(tiny_model, tmp_path):
    out = tmp_path / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "3", "--max-iterations", "50", "--force")) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["certified"] is False
    assert report["failures"]
    markdown = (out / "report.md").read_text()
    assert markdown.splitlines()[0].endswith(f"({FAILED_BANNER})")
    assert len((out / "vectors" / "inputs.hex").read_text().splitlines()) == 20


def test_forced_uncertified_json_exits_1(tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    args = _tiny_args(tiny_model, out, "--bits", "3", "--max-iterations", "50", "--force", "--json")
    assert main(args) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["certified"] is False
    assert document["output"] == str(out.absolute())
    assert (out / "report.json").is_file()


def test_forced_uncertified_mnist_summary(locuslab_path, mnist_dir, tmp_path, capsys):
    # The whole test set is not scored when the certificate fails; the summary says so.
    out = tmp_path / "out"
    code = main(["build", str(locuslab_path), "--m", "1", "--bits", "4", "--splitting", "fb",
                 "--vectors", "5",
                 "--max-iterations", "100", "--force", "--data-dir", str(mnist_dir), "-o", str(out)])
    assert code == 1
    summary = capsys.readouterr().out
    assert "CERTIFICATE FAILED" in summary
    assert "mnist test not scored" in summary
    assert (out / "report.md").is_file()


def test_random_vectors_include_extremes(tiny_model, tmp_path):
    out = tmp_path / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "6", "--target", "zcu104")) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["certified"] is True
    assert report["parallel"] == 8
    assert "random inputs in [-1, 1]" in report["accuracy"]["vectors"]["source"]
    assert not (out / "vectors" / "labels.txt").exists()
    first = (out / "vectors" / "inputs.hex").read_text().splitlines()[0]
    assert set(first.split()) == {"00000000"}


def test_generated_headers_not_repeated(tiny_model, tmp_path):
    out = tmp_path / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "6")) == 0
    sources = [p for p in out.rglob("*") if p.suffix in (".h", ".cpp", ".v", ".sv")]
    assert sources
    for path in sources:
        text = path.read_text()
        assert text.count("Generated by mon2hls") == 1, path
        assert text.count("sha256") <= 1, path
        assert "mon2hls build --config mon2hls.yaml" in text, path


def test_digits_model_takes_integer_pixels(tmp_path):
    from mon2hls.data import DIGITS_PREPROCESSING
    from mon2hls.load.checkpoint import save_checkpoint

    rng = np.random.default_rng(3)
    n, d, k = 8, 64, 10
    model = MonModel.from_factors(
        rng.normal(size=(n, n)) * 0.3, rng.normal(size=(n, n)) * 0.3, 1.0,
        rng.normal(size=(n, d)) * 0.1, rng.normal(size=n) * 0.1,
        rng.normal(size=(k, n)), rng.normal(size=k) * 0.1,
    ).replace(dataset="digits", preprocessing=DIGITS_PREPROCESSING)
    path = save_checkpoint(tmp_path / "digits.pt", model)
    out = tmp_path / "out"
    assert main(["build", str(path), "--bits", "8", "--vectors", "10", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["datapath"]["formats"]["input"]["c_type"] == "ap_uint<5>"
    assert "static const int input_width = 5;" in (out / "hls" / "mon_config.h").read_text()


def test_data_range_is_marked_not_a_proof(tiny_model, tmp_path):
    out = tmp_path / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "6", "--range", "data")) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["certificate"]["overflow"]["is_proof"] is False
    assert "not a proof" in (out / "report.md").read_text()
    assert yaml.safe_load((out / "mon2hls.yaml").read_text())["datapath"]["range"] == "data"


def test_bare_part_uses_fallback_parallel(tiny_model, tmp_path):
    out = tmp_path / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "6", "--part", "xcvu9p-flga2104-2L-e")) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["target"]["resources_known"] is False
    assert report["parallel"] == 8
    assert "unknown" in report["parallel_rule"]
    assert "capacity of this part is unknown" in (out / "report.md").read_text()


def test_parallel_up_to_usable_multipliers(tiny_model, tmp_path):
    # 8 hidden units and 3 classes: 8 lanes x 8 rows = 64 multipliers at most.
    out = tmp_path / "out"
    args = _tiny_args(tiny_model, out, "--bits", "6", "--part", "xczu9eg-ffvb1156-2-e", "--parallel", "64")
    assert main(args) == 0
    assert json.loads((out / "report.json").read_text())["parallel"] == 64


# Bad input: exit 2 and nothing written.

@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--bits", "6", "--target", "zedboard"], "known targets: pynq-z2"),
        (["--bits", "0"], "bit width"),
        (["--bits", "17"], "bit width"),
        (["--bits", "6", "--parallel", "0"], "at least 1"),
        (["--bits", "6", "--parallel", "10000"], "exceeds the 220 DSP slices"),
        (["--bits", "6", "--part", "xczu9eg-ffvb1156-2-e", "--parallel", "65"], "exceeds the 64 multipliers"),
        (["--bits", "6", "--part", "xczu9eg-ffvb1156-2-e", "--parallel", "1000000000"], "from 1 to 64"),
        (["--bits", "6", "--tolerance", "1e-12"], "smaller than this datapath can be certified for"),
    ],
)
def test_bad_input_exits_2(tiny_model, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(_tiny_args(tiny_model, out, *extra)) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _broken_mnist(mnist_dir: Path, folder: Path, kind: str) -> Path:
    folder.mkdir()
    if kind == "empty":
        return folder
    for source in mnist_dir.glob("*.gz"):
        shutil.copy(source, folder / source.name)
    if kind == "truncated":
        images = folder / "t10k-images-idx3-ubyte.gz"
        images.write_bytes(images.read_bytes()[:1000])
    else:
        # A valid IDX header with labels that are not the MNIST labels.
        import gzip

        header = bytes([0, 0, 8, 1]) + (10000).to_bytes(4, "big")
        labels = folder / "t10k-labels-idx1-ubyte.gz"
        labels.write_bytes(gzip.compress(header + bytes([200]) * 10000))
    return folder


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage-labels"])
def test_unreadable_data_dir_exits_2(locuslab_path, mnist_dir, tmp_path, capsys, kind):
    data = _broken_mnist(mnist_dir, tmp_path / "data", kind)
    out = tmp_path / "out"
    code = main(["build", str(locuslab_path), "--m", "1", "--bits", "6", "--vectors", "5",
                 "--data-dir", str(data), "-o", str(out)])
    assert code == 2
    assert "MNIST" in capsys.readouterr().err
    assert not out.exists()


def test_unreadable_data_dir_variable_exits_2(locuslab_path, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MON2HLS_DATA_DIR", str(empty))
    out = tmp_path / "out"
    args = ["build", str(locuslab_path), "--m", "1", "--bits", "6", "--vectors", "5", "-o", str(out)]
    assert main(args) == 2
    assert not out.exists()


def test_existing_output_needs_force(tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(_tiny_args(tiny_model, out, "--bits", "6")) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_force_replaces_existing_output(tiny_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    assert main(_tiny_args(tiny_model, out, "--bits", "6", "--force")) == 0
    assert not (out / "keep.txt").exists()
    assert (out / "report.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_under_a_file_exits_2(tiny_model, tmp_path, capsys):
    # A regular file as the parent blocks writes even for root, unlike chmod.
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "6")) == 2
    assert f"{blocker} is not a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_missing_parents_are_created(tiny_model, tmp_path):
    out = tmp_path / "a" / "b" / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "6")) == 0
    assert (out / "report.json").is_file()


def test_failed_build_removes_created_parents(tiny_model, tmp_path):
    out = tmp_path / "a" / "b" / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "3")) == 1
    assert list(tmp_path.iterdir()) == []


def test_failed_render_leaves_nothing(tiny_model, tmp_path, monkeypatch):
    import mon2hls.backends.hls

    def broken_writer(*args, **kwargs):
        raise ToolchainError("template missing")

    monkeypatch.setattr(mon2hls.backends.hls, "write_hls", broken_writer)
    out = tmp_path / "a" / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "6")) == 2
    assert list(tmp_path.iterdir()) == []


def test_failed_render_keeps_old_output(tiny_model, tmp_path, monkeypatch):
    import mon2hls.backends.hls

    def broken_writer(*args, **kwargs):
        raise ToolchainError("template missing")

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    monkeypatch.setattr(mon2hls.backends.hls, "write_hls", broken_writer)
    assert main(_tiny_args(tiny_model, out, "--bits", "6", "--force")) == 2
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_missing_bits_is_usage_error(tiny_model, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["build", str(tiny_model), "-o", str(tmp_path / "out")])
    assert exit_info.value.code == 2


# Simulation of the built folder (a copy, because the RTL simulator writes into it).

@pytest.mark.csim
@pytest.mark.slow
def test_locuslab_csim_matches_golden(locuslab_build, tmp_path, capsys):
    pytest.importorskip("mon2hls.sim.csim")
    _, out = locuslab_build
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert main(["sim", str(copy), "--csim", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["matched"] == 200
    assert document["total"] == 200
    assert document["words_total"] == 200 * 11


@pytest.mark.rtl
@pytest.mark.slow
def test_tiny_rtl_matches_golden(tiny_model, tmp_path, capsys):
    pytest.importorskip("mon2hls.sim.rtl")
    out = tmp_path / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "6", "--parallel", "4")) == 0
    capsys.readouterr()
    assert main(["sim", str(out), "--rtl", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["matched"] == 20
    assert document["total"] == 20
    # Every inference takes exactly the cycles the report's formula gives for its iteration count.
    assert document["cycles_measured"] == 20
    assert document["cycles_match_formula"] == 20


@pytest.mark.slow
def test_synth_counts_in_report(tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_tiny_args(tiny_model, out, "--bits", "6", "--parallel", "4", "--synth")) == 0
    assert "Yosys:" in capsys.readouterr().out

    report = json.loads((out / "report.json").read_text())
    synthesis = report["synthesis"]
    # Four lanes need four multipliers at least; Yosys may add a DSP for the requantization.
    assert synthesis["dsp"] >= 4
    assert synthesis["lut"] > 0
    assert synthesis["ff"] > 0
    assert synthesis["part"] == "xc7z020clg400-1"
    markdown = (out / "report.md").read_text()
    assert "| resource | estimated | Yosys | available | use (Yosys) |" in markdown

    config = (out / "mon2hls.yaml").read_text()
    assert "synth: true" in config
