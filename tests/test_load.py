"""Tests of mon2hls.load: layouts, checkpoints and rejection of bad or unsafe files."""

from __future__ import annotations

import hashlib
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mon2hls.analysis import margin
from mon2hls.errors import ConfigError, InvalidModelError, ModelLoadError, UnsupportedModelError
from mon2hls.load import load_model, save_checkpoint
from mon2hls.model import MNIST_PREPROCESSING, InputPreprocessing, MonModel, compose_weight


def make_factors(
    rng: np.random.Generator, n: int = 6, d: int = 4, k: int = 3, r: int | None = None, scale: float = 0.3
) -> dict[str, np.ndarray]:
    """Random MON factors and layers with the shapes of a locuslab SingleFcNet."""
    r = n if r is None else r
    return {
        "A": rng.normal(scale=scale, size=(r, n)),
        "B": rng.normal(scale=scale, size=(n, n)),
        "U": rng.normal(size=(n, d)),
        "b": rng.normal(size=n),
        "W_out": rng.normal(size=(k, n)),
        "b_out": rng.normal(size=k),
    }


def locuslab_state_dict(factors: dict[str, np.ndarray], prefix: str = "mon.linear_module.") -> dict:
    as_tensor = lambda name: torch.tensor(factors[name], dtype=torch.float32)  # noqa: E731
    return {
        f"{prefix}U.weight": as_tensor("U"),
        f"{prefix}U.bias": as_tensor("b"),
        f"{prefix}A.weight": as_tensor("A"),
        f"{prefix}B.weight": as_tensor("B"),
        "Wout.weight": as_tensor("W_out"),
        "Wout.bias": as_tensor("b_out"),
    }


def float32(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float32).astype(np.float64)


def generic_arrays(factors: dict[str, np.ndarray], m: float) -> dict[str, np.ndarray]:
    arrays = {name: factors[name] for name in ("U", "b", "W_out", "b_out")}
    arrays["W"] = compose_weight(factors["A"], factors["B"], m)
    return arrays


def retag_storages_as_cuda(source: Path, target: Path) -> None:
    """Rewrite a torch zip checkpoint so every storage claims to live on cuda:0.

    torch.save pickles each storage with its location string ("cpu"); a
    checkpoint saved from GPU tensors carries "cuda:0" there instead.
    """
    cpu_tag = b"X" + struct.pack("<I", 3) + b"cpu"
    cuda_tag = b"X" + struct.pack("<I", 6) + b"cuda:0"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as patched:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert cpu_tag in data
                data = data.replace(cpu_tag, cuda_tag)
            patched.writestr(info, data)


class CreateFileOnUnpickle:
    """An object whose unpickling would create a marker file: a stand-in for malicious code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# Locuslab layout.


def test_locuslab_layout_composes_weight(tmp_path, rng):
    factors = make_factors(rng)
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(factors), path)

    model = load_model(path, m=0.5)

    expected_W = compose_weight(float32(factors["A"]), float32(factors["B"]), 0.5)
    np.testing.assert_allclose(model.W, expected_W, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.U, float32(factors["U"]))
    np.testing.assert_array_equal(model.b, float32(factors["b"]))
    np.testing.assert_array_equal(model.W_out, float32(factors["W_out"]))
    np.testing.assert_array_equal(model.b_out, float32(factors["b_out"]))
    np.testing.assert_array_equal(model.A, float32(factors["A"]))
    assert model.m == 0.5
    assert model.layout == "locuslab"
    assert model.source == str(path)
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.dataset is None
    assert model.preprocessing.is_identity


def test_locuslab_reference_model(locuslab_path):
    model = load_model(locuslab_path, m=1.0)

    assert (model.input_features, model.hidden_units, model.classes) == (784, 87, 10)
    assert model.dataset == "mnist"
    assert model.preprocessing == MNIST_PREPROCESSING
    assert model.layout == "locuslab"
    assert margin(model.W) == pytest.approx(1.0, abs=1e-3)


def test_locuslab_without_m_names_option(tmp_path, rng):
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(make_factors(rng)), path)

    with pytest.raises(
        ModelLoadError, match=r"does not store the margin parameter m; pass the value .* as --m M"
    ):
        load_model(path)


def test_locuslab_short_prefix(tmp_path, rng):
    factors = make_factors(rng)
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(factors, prefix="linear_module."), path)

    model = load_model(path, m=1.0)

    np.testing.assert_array_equal(model.B, float32(factors["B"]))
    assert model.layout == "locuslab"


def test_locuslab_both_prefixes_equal(tmp_path, rng):
    factors = make_factors(rng)
    state = locuslab_state_dict(factors)
    state.update(locuslab_state_dict(factors, prefix="linear_module."))
    path = tmp_path / "mon.pt"
    torch.save(state, path)

    model = load_model(path, m=1.0)

    np.testing.assert_array_equal(model.A, float32(factors["A"]))


def test_locuslab_both_prefixes_differ(tmp_path, rng):
    state = locuslab_state_dict(make_factors(rng))
    state.update(locuslab_state_dict(make_factors(rng), prefix="linear_module."))
    path = tmp_path / "mon.pt"
    torch.save(state, path)

    with pytest.raises(
        ModelLoadError,
        match=r"'mon\.linear_module\.U\.weight' and 'linear_module\.U\.weight' "
        r"hold different values",
    ):
        load_model(path, m=1.0)


@pytest.mark.parametrize("wrapper", ["state_dict", "model_state_dict"])
def test_locuslab_wrapped_state_dict(tmp_path, rng, wrapper):
    factors = make_factors(rng)
    path = tmp_path / "mon.pt"
    torch.save({wrapper: locuslab_state_dict(factors), "epoch": 10}, path)

    model = load_model(path, m=1.0)

    np.testing.assert_array_equal(model.U, float32(factors["U"]))


def test_locuslab_rectangular_factor(tmp_path, rng):
    factors = make_factors(rng, n=8, r=3)
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(factors), path)

    model = load_model(path, m=0.25)

    assert model.A.shape == (3, 8)
    # A has a null direction, so mu(W) equals m exactly.
    assert margin(model.W) == pytest.approx(0.25, abs=1e-9)


def test_explicit_layout_mismatch(tmp_path, rng):
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(make_factors(rng)), path)

    with pytest.raises(ModelLoadError, match=r"not a valid generic model: missing W, U, b, W_out, b_out"):
        load_model(path, layout="generic")


# Generic dense format.


def test_generic_npz_round_trip(tmp_path, rng):
    factors = make_factors(rng)
    arrays = generic_arrays(factors, 1.0)
    path = tmp_path / "mon.npz"
    np.savez(path, **arrays, input_scale=1 / 255, input_mean=0.5, input_std=0.25, dataset="digits")

    model = load_model(path)

    for name, array in arrays.items():
        np.testing.assert_array_equal(getattr(model, name), array)
    assert model.preprocessing == InputPreprocessing(scale=1 / 255, mean=0.5, std=0.25)
    assert model.dataset == "digits"
    assert model.layout == "generic"
    assert model.A is None
    assert model.m is None


def test_text_tensor_names_element_type(tmp_path, rng):
    arrays = generic_arrays(make_factors(rng), 1.0)
    arrays["W"] = np.full(arrays["W"].shape, "x")
    path = tmp_path / "mon.npz"
    np.savez(path, **arrays)

    with pytest.raises(ModelLoadError, match=r"'W' must be a numeric tensor or array, not an array of <U1"):
        load_model(path)


def test_generic_torch_dict_with_factors(tmp_path, rng):
    factors = make_factors(rng)
    arrays = generic_arrays(factors, 2.0)
    content = {name: torch.from_numpy(array) for name, array in arrays.items()}
    content.update(A=torch.from_numpy(factors["A"]), B=torch.from_numpy(factors["B"]), m=2.0, dataset="mnist")
    path = tmp_path / "mon.pt"
    torch.save(content, path)

    model = load_model(path)

    np.testing.assert_array_equal(model.W, arrays["W"])
    np.testing.assert_array_equal(model.A, factors["A"])
    assert model.m == 2.0
    assert model.dataset == "mnist"


def test_generic_factors_inconsistent_with_weight(tmp_path, rng):
    factors = make_factors(rng)
    arrays = generic_arrays(factors, 1.0)
    path = tmp_path / "mon.npz"
    np.savez(path, **arrays, A=factors["A"], B=factors["B"], m=3.0)

    with pytest.raises(InvalidModelError, match=r"W differs from \(1 - m\) I - A\^T A \+ B - B\^T by up to"):
        load_model(path)


def test_generic_stored_m_conflicts_with_argument(tmp_path, rng):
    path = tmp_path / "mon.npz"
    np.savez(path, **generic_arrays(make_factors(rng), 1.0), m=1.0)

    with pytest.raises(ModelLoadError, match=r"stores m = 1\.0 but m = 2\.0 was passed"):
        load_model(path, m=2.0)


def test_generic_argument_m_fills_missing(tmp_path, rng):
    factors = make_factors(rng)
    path = tmp_path / "mon.npz"
    np.savez(path, **generic_arrays(factors, 0.5), A=factors["A"], B=factors["B"])

    model = load_model(path, m=0.5)

    assert model.m == 0.5


# mon2hls checkpoint.


def test_checkpoint_round_trip(tmp_path, rng):
    factors = make_factors(rng)
    model = MonModel.from_factors(
        factors["A"],
        factors["B"],
        0.75,
        factors["U"],
        factors["b"],
        factors["W_out"],
        factors["b_out"],
        preprocessing=MNIST_PREPROCESSING,
        dataset="mnist",
    )
    training = {"epochs": 3, "lr": 1e-3, "splitting": "pr", "seed": 7, "tensors": ["W", "U"]}
    path = tmp_path / "out" / "model.pt"

    written = save_checkpoint(path, model, training=training)
    loaded = load_model(written)

    for name in ("W", "U", "b", "W_out", "b_out", "A", "B"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.m == 0.75
    assert loaded.preprocessing == MNIST_PREPROCESSING
    assert loaded.dataset == "mnist"
    assert loaded.metadata["training"] == training
    assert loaded.layout == "mon2hls"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]


def test_checkpoint_overwrite_is_atomic(tmp_path, rng):
    factors = make_factors(rng)
    model = MonModel.from_factors(
        factors["A"], factors["B"], 1.0, factors["U"], factors["b"], factors["W_out"], factors["b_out"]
    )
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, training={"epochs": 1})
    before = path.read_bytes()

    with pytest.raises(ConfigError, match=r"^training setting training\['device'\] must be None, a bool"):
        save_checkpoint(path, model, training={"device": torch.device("cpu")})

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_checkpoint_newer_version_rejected(tmp_path, rng):
    factors = make_factors(rng)
    model = MonModel.from_factors(
        factors["A"], factors["B"], 1.0, factors["U"], factors["b"], factors["W_out"], factors["b_out"]
    )
    path = tmp_path / "model.pt"
    save_checkpoint(path, model)
    content = torch.load(path, weights_only=True)
    content["version"] = 2
    torch.save(content, path)

    with pytest.raises(UnsupportedModelError, match=r"mon2hls-checkpoint version 2 is not supported"):
        load_model(path)


# Robustness.


def test_cuda_saved_tensors_load_on_cpu(tmp_path, rng):
    factors = make_factors(rng)
    plain = tmp_path / "cpu.pt"
    torch.save(locuslab_state_dict(factors), plain)
    path = tmp_path / "cuda.pt"
    retag_storages_as_cuda(plain, path)

    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    model = load_model(path, m=1.0)

    np.testing.assert_array_equal(model.U, float32(factors["U"]))


def test_large_margin(tmp_path, rng):
    n = 10
    factors = make_factors(rng, n=n)
    # Columns of A with squared norm about 21 put the diagonal of W near (1 - 20) - 21 = -40.
    factors["A"] = rng.normal(scale=np.sqrt(21.0 / n), size=(n, n))
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(factors), path)

    model = load_model(path, m=20.0)

    assert np.mean(np.diag(model.W)) == pytest.approx(-40.0, abs=5.0)
    assert margin(model.W) >= 20.0 - 1e-9


@pytest.mark.parametrize(("inputs", "classes"), [(3, 5), (784, 10), (3072, 10)])
def test_input_sizes(tmp_path, rng, inputs, classes):
    factors = make_factors(rng, n=5, d=inputs, k=classes)
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(factors), path)

    model = load_model(path, m=1.0)

    assert (model.input_features, model.hidden_units, model.classes) == (inputs, 5, classes)
    assert model.dataset == ("mnist" if inputs == 784 else None)


def test_convolutional_mon_unsupported(tmp_path):
    state = {
        "mon.linear_module.A.weight": torch.zeros(8, 8, 3, 3),
        "mon.linear_module.B.weight": torch.zeros(8, 8, 3, 3),
        "mon.linear_module.U.weight": torch.zeros(8, 1, 3, 3),
        "mon.linear_module.U.bias": torch.zeros(8),
        "mon.linear_module.g": torch.tensor(1.0),
        "mon.linear_module.h": torch.tensor(1.0),
        "Wout.weight": torch.zeros(10, 8 * 14 * 14),
        "Wout.bias": torch.zeros(10),
    }
    path = tmp_path / "conv.pt"
    torch.save(state, path)

    with pytest.raises(UnsupportedModelError, match=r"recognized a convolutional MON .*generic dense format"):
        load_model(path, m=1.0)


def test_scaled_parameterization_unsupported(tmp_path):
    state = {
        "mon.linear_module.psi": torch.zeros(6),
        "mon.linear_module.V.weight": torch.zeros(6, 6),
        "mon.linear_module.S.weight": torch.zeros(6, 6),
        "mon.linear_module.G.weight": torch.zeros(6, 6),
        "Wout.weight": torch.zeros(3, 6),
    }
    path = tmp_path / "psi.pt"
    torch.save(state, path)

    with pytest.raises(
        UnsupportedModelError,
        match=r"recognized a MON with a diagonal scaling psi and factors G, S, V; .*generic dense",
    ):
        load_model(path)


def test_other_network_lists_keys(tmp_path):
    network = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    path = tmp_path / "mlp.pt"
    torch.save(network.state_dict(), path)

    with pytest.raises(
        ModelLoadError,
        match=r"unrecognized model layout; keys found: 0\.weight, 0\.bias, "
        r"2\.weight, 2\.bias\. supported layouts: locuslab",
    ):
        load_model(path)


def test_long_key_list_truncated(tmp_path):
    path = tmp_path / "many.pt"
    torch.save({f"layer{i}.weight": torch.zeros(1) for i in range(40)}, path)

    with pytest.raises(ModelLoadError, match=r"layer11\.weight, \.\.\. \(28 more\)\. supported layouts"):
        load_model(path)


# Unsafe and bad files.


def test_malicious_torch_checkpoint_rejected(tmp_path, rng):
    marker = tmp_path / "marker"
    state = locuslab_state_dict(make_factors(rng))
    state["extra"] = CreateFileOnUnpickle(marker)
    path = tmp_path / "evil.pt"
    torch.save(state, path)
    assert not marker.exists()

    with pytest.raises(ModelLoadError, match=r"^rejected .*evil\.pt: it contains pickled Python objects"):
        load_model(path, m=1.0)

    assert not marker.exists()


def test_malicious_raw_pickle_rejected(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(CreateFileOnUnpickle(marker), protocol=2))

    with pytest.raises(ModelLoadError, match=r"^rejected .*evil\.pt: it contains pickled Python objects"):
        load_model(path, m=1.0)

    assert not marker.exists()


def test_npz_with_object_array_rejected(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, W=np.array([{"a": 1}], dtype=object))

    with pytest.raises(
        ModelLoadError, match=r"^rejected .*evil\.npz: the archive contains pickled Python objects"
    ):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match=r"^model file not found: .*absent\.pt; check the path$"):
        load_model(tmp_path / "absent.pt")


def test_directory_rejected(tmp_path):
    with pytest.raises(ModelLoadError, match=r"^model path is not a regular file"):
        load_model(tmp_path)


def test_text_file_rejected(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")

    with pytest.raises(ModelLoadError, match=r"is neither a PyTorch checkpoint nor a NumPy \.npz archive"):
        load_model(path)


def test_empty_file_rejected(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")

    with pytest.raises(ModelLoadError, match=r"^model file is empty"):
        load_model(path)


def test_truncated_checkpoint(tmp_path, rng):
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(make_factors(rng)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(
        ModelLoadError, match=r"cannot read .* as a PyTorch checkpoint .*truncated or corrupt"
    ):
        load_model(path, m=1.0)


def test_truncated_npz(tmp_path, rng):
    path = tmp_path / "mon.npz"
    np.savez(path, **generic_arrays(make_factors(rng), 1.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ModelLoadError, match=r"cannot read .*mon\.npz as a NumPy \.npz archive"):
        load_model(path)


def test_mismatched_shapes(tmp_path, rng):
    state = locuslab_state_dict(make_factors(rng, n=6))
    state["Wout.weight"] = torch.zeros(3, 7)
    path = tmp_path / "mon.pt"
    torch.save(state, path)

    with pytest.raises(InvalidModelError, match=r"shape mismatch: W_out has shape \(3, 7\)"):
        load_model(path, m=1.0)


def test_mismatched_factor_shapes(tmp_path, rng):
    state = locuslab_state_dict(make_factors(rng, n=6))
    state["mon.linear_module.B.weight"] = torch.zeros(5, 5)
    path = tmp_path / "mon.pt"
    torch.save(state, path)

    with pytest.raises(
        InvalidModelError,
        match=r"shape mismatch: U\.weight \(6, 4\), A\.weight \(6, 6\) and "
        r"B\.weight \(5, 5\)",
    ):
        load_model(path, m=1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights(tmp_path, rng, bad):
    state = locuslab_state_dict(make_factors(rng))
    state["mon.linear_module.A.weight"][1, 2] = bad
    path = tmp_path / "mon.pt"
    torch.save(state, path)

    with pytest.raises(
        InvalidModelError, match=r"tensor 'mon\.linear_module\.A\.weight' contains 1 NaN or Inf"
    ):
        load_model(path, m=1.0)


def test_huge_margin_parameter(tmp_path, rng):
    # m = 1e308 keeps W finite, but its eigenvalues overflow float64.
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(make_factors(rng)), path)

    with pytest.raises(InvalidModelError, match=r"mon\.pt: W has an entry of magnitude 1e\+308, beyond the 1e\+100"):
        load_model(path, m=1e308)


@pytest.mark.parametrize("m", [0.0, -1.0, float("nan")])
def test_non_positive_m(tmp_path, rng, m):
    path = tmp_path / "mon.pt"
    torch.save(locuslab_state_dict(make_factors(rng)), path)

    with pytest.raises(ModelLoadError, match=r"margin parameter m must be a positive number, not"):
        load_model(path, m=m)


def test_onnx_planned(tmp_path):
    path = tmp_path / "mon.onnx"
    path.write_bytes(b"\x08\x07")

    with pytest.raises(
        UnsupportedModelError, match=r"ONNX import is planned but not supported yet; export W, U"
    ):
        load_model(path)


def test_unknown_layout_name(tmp_path):
    with pytest.raises(ModelLoadError, match=r"^unknown model layout 'onnx'; choose one of: auto, locuslab"):
        load_model(tmp_path / "mon.pt", layout="onnx")
