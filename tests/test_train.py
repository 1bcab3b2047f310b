"""Tests of MON training: implicit gradients, QAT, margin projection, checkpoints, DDP and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mon2hls.analysis import best_alpha, margin
from mon2hls.cli import main
from mon2hls.errors import ConfigError, DataError
from mon2hls.load import load_model
from mon2hls.quantize import Scheme, quantize_tensor
from mon2hls.solve import predict
from mon2hls.train import (
    MonNetwork,
    QuantizationSetting,
    SolverConfig,
    TrainConfig,
    enforce_quantized_margin,
    quantized_margin,
    train,
)
from mon2hls.train.trainer import splitting_step

REPO_ROOT = Path(__file__).resolve().parents[1]

#: A short digits run: a few dozen steps on 256 samples.
QUICK = dict(dataset="digits", hidden_units=16, limit=256, epochs=2, batch_size=32, lr=1e-2, progress=False)


def small_network(seed: int = 0, learn_margin: bool = True) -> MonNetwork:
    generator = torch.Generator().manual_seed(seed)
    return MonNetwork(10, 12, 3, rank=5, margin=0.5, learn_margin=learn_margin, generator=generator)


def unrolled_loss(network: MonNetwork, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Loss through 3,000 forward-backward steps with autograd attached (no implicit gradient)."""
    W = network.weight()
    c = x @ network.U.T + network.b
    z = torch.zeros_like(c)
    for _ in range(3000):
        z = torch.relu(0.7 * z + 0.3 * (z @ W.T + c))
    return torch.nn.functional.cross_entropy(z @ network.W_out.T + network.b_out, y)


@pytest.mark.parametrize("splitting", ["fb", "pr"])
def test_implicit_gradient_matches_unrolled(splitting):
    network = small_network()
    network.solver = SolverConfig(splitting, 0.3 if splitting == "fb" else 1.0, 1e-12, 2000)
    x = torch.randn(7, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])

    torch.nn.functional.cross_entropy(network(x), y).backward()
    implicit = {name: p.grad.clone() for name, p in network.named_parameters()}
    network.zero_grad()
    unrolled_loss(network, x, y).backward()

    for name, parameter in network.named_parameters():
        np.testing.assert_allclose(implicit[name], parameter.grad, rtol=1e-7, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("scheme", list(Scheme))
@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8, 16])
def test_qat_operator_equals_quantize_tensor(scheme, bits):
    network = small_network(seed=bits)
    network.quantization = QuantizationSetting(bits, scheme)
    W_q, U_q, b_q = network.operator()
    with torch.no_grad():
        float_values = {"W": network.weight().numpy(), "U": network.U.numpy(), "b": network.b.numpy()}

    for name, quantized in (("W", W_q), ("U", U_q), ("b", b_q)):
        expected = quantize_tensor(float_values[name], bits, scheme).values
        assert quantized.dtype == torch.float64
        assert np.array_equal(quantized.detach().numpy(), expected), name


def test_qat_gradient_is_straight_through():
    network = small_network()
    network.quantization = QuantizationSetting(4, Scheme.MAX_ABS)
    W_q, U_q, b_q = network.operator()
    (W_q.sum() + U_q.sum() + b_q.sum()).backward()

    assert torch.equal(network.U.grad, torch.ones_like(network.U))
    assert torch.equal(network.b.grad, torch.ones_like(network.b))


def test_qat_gradient_reaches_factors_of_w():
    network = small_network()
    network.quantization = QuantizationSetting(4, Scheme.MAX_ABS)
    network.operator()[0].sum().backward()
    straight_through = {name: network.get_parameter(name).grad.clone() for name in ("A", "B", "m_raw")}

    network.zero_grad()
    network.weight().sum().backward()
    for name, grad in straight_through.items():
        assert torch.equal(grad, network.get_parameter(name).grad), name


def test_splitting_step_of_monotone_operator():
    network = small_network()
    assert splitting_step(network) == best_alpha(network.weight().detach().numpy(), "pr")[0]

    network.quantization = QuantizationSetting(8, Scheme.MAX_ABS)
    W_q = network.operator()[0].detach().numpy()
    assert margin(W_q) > 0
    assert splitting_step(network) == best_alpha(W_q, "pr")[0]


def test_non_monotone_qat_uses_float_step():
    # At 3 bits W_q is not monotone. Its smallest PR factor (just above 1) lies at alpha = 1e-3,
    # where 100 steps barely leave z = 0 and W would get almost no gradient.
    network = MonNetwork(10, 12, 3, rank=5, margin=0.05, learn_margin=True,
                         generator=torch.Generator().manual_seed(0))
    network.quantization = QuantizationSetting(3, Scheme.MAX_ABS)
    W_q = network.operator()[0].detach().numpy()
    assert margin(W_q) < 0

    alpha = splitting_step(network)

    assert alpha == best_alpha(network.weight().detach().numpy(), "pr")[0]
    assert alpha > 0.5
    x = torch.randn(16, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.arange(16) % 3
    gradients = {}
    for name, step in (("quantized best", best_alpha(W_q, "pr")[0]), ("chosen", alpha)):
        network.solver = SolverConfig("pr", step, 1e-4, 100)
        network.zero_grad()
        torch.nn.functional.cross_entropy(network(x), y).backward()
        gradients[name] = float(network.B.grad.norm())
    assert gradients["quantized best"] < 0.1
    assert gradients["chosen"] > 10.0


def test_qat_lowers_loss(tmp_path):
    result = train(TrainConfig(**{**QUICK, "epochs": 3}, qat_bits=4), tmp_path / "qat.pt")

    losses = [record.loss for record in result.history]
    assert losses[-1] < losses[0]
    assert result.history[-1].quantized_accuracy > result.history[0].quantized_accuracy - 5.0
    assert all(record.quantized_margin is not None for record in result.history)


def test_lr_step_divides_learning_rate_once(tmp_path):
    path = tmp_path / "step.pt"
    train(TrainConfig(**{**QUICK, "epochs": 3}, lr_step=1), path)

    content = torch.load(path, map_location="cpu", weights_only=True)
    learning_rates = [group["lr"] for group in content["resume"]["optimizer"]["param_groups"]]
    assert learning_rates == [pytest.approx(QUICK["lr"] / 10)]


def test_checkpoint_reloads_with_identical_outputs(tmp_path):
    path = tmp_path / "model.pt"
    result = train(TrainConfig(**QUICK), path)
    loaded = load_model(path)

    for name in ("W", "U", "b", "W_out", "b_out", "A", "B"):
        assert np.array_equal(getattr(loaded, name), getattr(result.model, name)), name
    assert loaded.m == result.model.m
    assert loaded.dataset == "digits"
    assert loaded.preprocessing == result.model.preprocessing

    features = np.random.default_rng(0).uniform(0, 1, size=(20, 64))
    logits_loaded, _ = predict(loaded, features)
    logits_memory, _ = predict(result.model, features)
    assert np.array_equal(logits_loaded, logits_memory)

    with torch.no_grad():
        logits_network = result.network(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(logits_network, logits_loaded, atol=1e-3)


def test_checkpoint_stores_training_history(tmp_path):
    path = tmp_path / "model.pt"
    train(TrainConfig(**QUICK), path)
    content = torch.load(path, weights_only=True)

    assert content["format"] == "mon2hls-checkpoint"
    assert content["training"]["epochs_run"] == 2
    assert len(content["training"]["history"]) == 2
    assert content["training"]["config"]["hidden_units"] == 16
    assert content["resume"]["epoch"] == 2


def test_no_resume_state_writes_model_only(tmp_path):
    path = tmp_path / "model.pt"
    train(TrainConfig(**QUICK, save_resume_state=False), path)
    content = torch.load(path, weights_only=True)

    assert "resume" not in content
    assert load_model(path).hidden_units == 16


def test_resume_continues_like_one_run(tmp_path):
    whole = train(TrainConfig(**QUICK), tmp_path / "whole.pt")
    train(TrainConfig(**{**QUICK, "epochs": 1}), tmp_path / "first.pt")
    resumed = train(TrainConfig(**QUICK), tmp_path / "resumed.pt", resume=tmp_path / "first.pt")

    assert len(resumed.history) == 2
    for name in ("W", "U", "b", "W_out", "b_out"):
        assert np.array_equal(getattr(resumed.model, name), getattr(whole.model, name)), name


def test_same_seed_gives_same_weights(tmp_path):
    first = train(TrainConfig(**QUICK, seed=7), tmp_path / "a.pt")
    second = train(TrainConfig(**QUICK, seed=7), tmp_path / "b.pt")
    other = train(TrainConfig(**QUICK, seed=8), tmp_path / "c.pt")

    for name in ("W", "U", "b", "W_out", "b_out"):
        assert np.array_equal(getattr(first.model, name), getattr(second.model, name)), name
    assert not np.array_equal(first.model.W, other.model.W)


def test_margin_projection_reaches_target():
    network = small_network(learn_margin=False)
    setting = QuantizationSetting(3, Scheme.MAX_ABS)
    with torch.no_grad():
        network.A.mul_(3.0)
    target = 0.8

    projection = enforce_quantized_margin(network, setting, target)

    assert projection.quantized_margin_before < target
    assert projection.changed
    assert quantized_margin(network, setting) >= target
    assert projection.quantized_margin_after == quantized_margin(network, setting)


def test_margin_aware_qat_keeps_target_every_epoch(tmp_path):
    target = 0.3
    path = tmp_path / "qat3.pt"
    result = train(
        TrainConfig(**{**QUICK, "epochs": 3}, margin=0.05, learn_margin=True, qat_bits=3, target_margin=target),
        path,
    )

    assert [record.epoch for record in result.history] == [1, 2, 3]
    for record in result.history:
        assert record.quantized_margin >= target, record
    saved = load_model(path)
    assert margin(quantize_tensor(saved.W, 3, "max-abs").values) >= target


def test_torchrun_two_processes(tmp_path):
    path = tmp_path / "ddp.pt"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "mon2hls", "train", "--dataset", "digits", "--hidden", "16", "--limit", "1024",
        "--epochs", "1", "--batch-size", "32", "--lr", "1e-2", "--no-progress", "-o", str(path),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    # A new session lets the test end torchrun's worker processes too if the run hangs.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment, cwd=tmp_path, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the two-process torchrun run did not finish within 300 s")

    assert process.returncode == 0, stderr[-3000:]
    content = torch.load(path, weights_only=True)
    assert content["training"]["world_size"] == 2
    assert content["training"]["epochs_run"] == 1
    model = load_model(path)
    assert model.hidden_units == 16
    assert margin(model.W) > 0.99
    assert [p.name for p in tmp_path.iterdir()] == ["ddp.pt"]


def run_cli(*arguments: str) -> int:
    try:
        return main(["train", *arguments])
    except SystemExit as stop:
        return int(stop.code)


@pytest.mark.parametrize(
    "arguments",
    [
        ["--qat-bits", "1"],
        ["--qat-bits", "17"],
        ["--qat-bits", "4", "--target-margin", "0"],
        ["--qat-bits", "4", "--target-margin", "-0.5"],
        ["--target-margin", "0.1"],
        ["--hidden", "0"],
    ],
)
def test_cli_rejects_bad_options(tmp_path, arguments):
    output = tmp_path / "out.pt"
    assert run_cli("--dataset", "digits", *arguments, "-o", str(output)) == 2
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_folder_without_mnist(tmp_path):
    output = tmp_path / "out.pt"
    (tmp_path / "empty").mkdir()
    assert run_cli("--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "-o", str(output)) == 2
    assert not output.exists()


@pytest.mark.parametrize("where", ["missing-folder", "folder"])
def test_cli_rejects_unwritable_output(tmp_path, where):
    output = tmp_path / "no" / "out.pt" if where == "missing-folder" else tmp_path
    assert run_cli("--dataset", "digits", "--limit", "64", "-o", str(output)) == 2
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_resume_from_other_architecture(tmp_path):
    first = tmp_path / "first.pt"
    assert run_cli("--dataset", "digits", "--hidden", "16", "--limit", "64", "--epochs", "1",
                   "--no-progress", "-o", str(first)) == 0
    second = tmp_path / "second.pt"

    assert run_cli("--dataset", "digits", "--hidden", "8", "--limit", "64", "--epochs", "2",
                   "--resume", str(first), "-o", str(second)) == 2
    assert not second.exists()


def test_library_rejects_bad_config():
    with pytest.raises(ConfigError, match="target margin"):
        TrainConfig(qat_bits=4, target_margin=0.0)
    with pytest.raises(ConfigError, match="--qat-bits"):
        TrainConfig(target_margin=0.2)
    with pytest.raises(ConfigError, match="bit width"):
        TrainConfig(qat_bits=20)


def test_library_rejects_missing_mnist(tmp_path):
    with pytest.raises(DataError, match="MNIST"):
        train(TrainConfig(dataset="mnist", data_dir=str(tmp_path), progress=False), tmp_path / "out.pt")
    assert list(tmp_path.iterdir()) == []


def test_mnist_example_accuracy(mnist_dir):
    from mon2hls.data import load_mnist

    model = load_model(REPO_ROOT / "examples" / "mnist_mon.pt")
    test = load_mnist("test", mnist_dir)
    logits, result = predict(model, test.model_inputs(model.preprocessing))

    accuracy = float(np.mean(logits.argmax(axis=1) == test.labels))
    assert accuracy >= 0.975
    assert margin(model.W) >= 0.99
