"""The training loop: float MON training and quantization-aware training (QAT).

One call of `train` builds a `MonNetwork`, trains it with Adam on the chosen
data set, and writes a mon2hls checkpoint after every epoch (only process 0
writes). The checkpoint carries an extra top-level key "resume" with the
optimizer, scheduler and RNG state and the finished epoch count. `load_model`
ignores that key, and `train(..., resume=PATH)` continues from it.

Distributed data parallel: when the process runs under torchrun
(WORLD_SIZE > 1), the processes join a gloo process group, each trains on
its DistributedSampler shard with batch_size / world_size samples per step,
and the gradients are averaged with an all-reduce before every step. All
processes hold identical weights after every step, so the splitting step and
the margin projection, computed locally, agree too.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from .. import __version__
from ..analysis import Splitting, best_alpha, margin
from ..data import Dataset, load_dataset
from ..errors import ConfigError, DataError
from ..load import save_checkpoint
from ..model import InputPreprocessing, MonModel
from ..quantize import Scheme, check_bits
from .margin import check_target_margin, enforce_quantized_margin, quantized_margin
from .network import MonNetwork, QuantizationSetting, SolverConfig

__all__ = ["TrainConfig", "EpochRecord", "TrainResult", "train", "RESUME_KEY"]

logger = logging.getLogger(__name__)

#: Extra top-level checkpoint key with the state needed to continue training.
RESUME_KEY = "resume"

#: Samples per evaluation batch.
EVAL_BATCH = 1000


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    `margin` is m of W = (1 - m) I - A^T A + B - B^T (its start value when
    `learn_margin` is set). `rank` is the number of rows of A (default: the
    hidden size). `lr_step` divides the learning rate by 10 after that many
    epochs, once. `qat_bits` turns on quantization-aware training of W, U and b
    with `scheme`; `target_margin` then keeps mu(W_q) >= target after every
    step. `alpha_interval` is the number of steps between two re-tunings of
    the splitting step on the operator in use. `limit` keeps the first N
    training samples. Without `save_resume_state` the checkpoint contains the
    model only (about a third of the size) and cannot be resumed.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    hidden_units: int = 64
    rank: int | None = None
    margin: float = 1.0
    learn_margin: bool = False
    splitting: Splitting = Splitting.PR
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    lr_step: int | None = None
    seed: int = 0
    limit: int | None = None
    qat_bits: int | None = None
    scheme: Scheme = Scheme.MAX_ABS
    target_margin: float | None = None
    tolerance: float = 1e-4
    max_iterations: int = 100
    alpha_interval: int = 50
    threads: int = 1
    progress: bool | None = None
    save_resume_state: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "splitting", Splitting.parse(self.splitting))
        set_(self, "scheme", Scheme.parse(self.scheme))
        if self.qat_bits is not None:
            set_(self, "qat_bits", check_bits(self.qat_bits))
        set_(self, "target_margin", check_target_margin(self.target_margin))
        if self.target_margin is not None and self.qat_bits is None:
            raise ConfigError(
                f"a target margin ({self.target_margin:g}) applies to the quantized weight; "
                "give the bit width with --qat-bits too"
            )
        positive = {
            "hidden units": self.hidden_units,
            "epochs": self.epochs,
            "batch size": self.batch_size,
            "threads": self.threads,
            "maximum iterations": self.max_iterations,
            "alpha interval": self.alpha_interval,
        }
        if self.rank is not None:
            positive["rank"] = self.rank
        if self.lr_step is not None:
            positive["learning-rate step epoch"] = self.lr_step
        if self.limit is not None:
            positive["sample limit"] = self.limit
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, not {value!r}")
        for name, value in (("learning rate", self.lr), ("margin m", self.margin), ("tolerance", self.tolerance)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (enums as their names), as stored in the checkpoint."""
        values = dataclasses.asdict(self)
        values["splitting"] = self.splitting.value
        values["scheme"] = self.scheme.value
        return values

    @property
    def quantization(self) -> QuantizationSetting | None:
        return None if self.qat_bits is None else QuantizationSetting(self.qat_bits, self.scheme)


@dataclass(frozen=True)
class EpochRecord:
    """Figures measured at the end of one epoch.

    Accuracies are on the test split in percent. `margin` is mu(W),
    `quantized_margin` mu(W_q) (QAT only). Iteration counts are means per
    batch: forward and adjoint solves during training, forward solves during
    the float and quantized evaluations.
    """

    epoch: int
    loss: float
    train_accuracy: float
    float_accuracy: float
    quantized_accuracy: float | None
    margin: float
    quantized_margin: float | None
    m: float
    alpha: float
    forward_iterations: float
    backward_iterations: float
    eval_iterations: float
    quantized_eval_iterations: float | None
    margin_projections: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The trained model, its epoch history and the checkpoint written (None on processes other than 0)."""

    model: MonModel
    history: tuple[EpochRecord, ...]
    path: Path | None
    seconds: float
    network: MonNetwork = field(repr=False)


@dataclass(frozen=True)
class _Distributed:
    rank: int
    world_size: int
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _start_distributed() -> _Distributed:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Distributed(0, 1, False)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="gloo")
    return _Distributed(dist.get_rank(), dist.get_world_size(), owns_group)


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Check that a checkpoint can be written at `path` before any training starts."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"output path {path} is a folder; give a file name such as {path / 'model.pt'}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"output folder {folder} does not exist; create it first")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as error:
        raise ConfigError(f"cannot write to the output folder {folder}: {error.strerror}") from None
    return path


def _features(dataset: Dataset) -> torch.Tensor:
    return torch.from_numpy(dataset.model_inputs())


def splitting_step(network: MonNetwork, quantized: bool | None = None) -> float:
    """Return the splitting step for the operator in use (quantized with QAT, or as `quantized` sets).

    The step is the one with the smallest exact contraction factor on that
    operator. When no step contracts it (mu(W_q) <= 0), the smallest factor,
    just above 1, lies at an end of the search range, mostly alpha -> 0. There
    100 steps barely leave z = 0, so the output stops depending on W, W gets
    almost no gradient, and QAT trains a one-layer network instead. In that
    case the best step of the float W is used, which contracts because
    mu(W) >= m > 0. The quantized solve then runs at a working step, and where
    it fails to converge, the loss shows it.
    """
    with torch.no_grad():
        W = network.operator(quantized)[0].numpy()
    splitting = network.solver.splitting
    alpha, rho = best_alpha(W, splitting)
    if rho >= 1.0 and (network.quantization is not None if quantized is None else quantized):
        with torch.no_grad():
            W_float = network.weight().numpy()
        alpha, rho_float = best_alpha(W_float, splitting)
        logger.debug("no step contracts the quantized operator (best factor %.6g), so the float W's "
                     "step alpha = %.4g is used (factor %.4g on W)", rho, alpha, rho_float)
        return alpha
    logger.debug("splitting step alpha = %.4g (contraction factor %.4g)", alpha, rho)
    return alpha


def _retune_alpha(network: MonNetwork) -> float:
    """Set the splitting step of the network's solver to `splitting_step` of the operator in use."""
    alpha = splitting_step(network)
    network.solver = dataclasses.replace(network.solver, alpha=alpha)
    return alpha


@torch.no_grad()
def evaluate(network: MonNetwork, features: torch.Tensor, labels: torch.Tensor, quantized: bool) -> tuple[int, float]:
    """Return (correct predictions, mean forward iterations) with the float or quantized operator.

    The splitting step is tuned for the operator evaluated (see `splitting_step`), then restored.
    """
    saved_solver = network.solver
    alpha = splitting_step(network, quantized)
    network.solver = dataclasses.replace(saved_solver, alpha=alpha)
    correct = 0
    iterations = []
    try:
        for start in range(0, len(labels), EVAL_BATCH):
            logits = network(features[start:start + EVAL_BATCH], quantized=quantized)
            correct += int((logits.argmax(dim=1) == labels[start:start + EVAL_BATCH]).sum())
            iterations.append(network.stats.forward_iterations)
    finally:
        network.solver = saved_solver
    return correct, float(np.mean(iterations)) if iterations else 0.0


def _all_reduce_sum(values: list[float], context: _Distributed) -> list[float]:
    if context.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def _load_resume_state(path: Path, config: TrainConfig, input_features: int, classes: int) -> dict[str, Any]:
    """Read the "resume" entry of a checkpoint and check that its network matches `config`."""
    if not path.is_file():
        raise ConfigError(f"resume checkpoint {path} not found")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for corrupt files
        raise ConfigError(f"cannot read resume checkpoint {path}: {error}") from None
    state = content.get(RESUME_KEY) if isinstance(content, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(
            f"{path} has no training state to resume from (no {RESUME_KEY!r} entry); "
            "resume only from a checkpoint written by mon2hls train"
        )

    saved = state.get("architecture", {})
    expected = _architecture(config, input_features, classes)
    differences = [f"{key} {saved.get(key)!r} (requested {value!r})"
                   for key, value in expected.items() if saved.get(key) != value]
    if differences:
        raise ConfigError(
            f"resume checkpoint {path} was trained with another architecture: {', '.join(differences)}; "
            "train with the same dataset, --hidden, --rank and margin options, or start without --resume"
        )
    return state


def _architecture(config: TrainConfig, input_features: int, classes: int) -> dict[str, Any]:
    return {
        "dataset": config.dataset,
        "input_features": input_features,
        "hidden_units": config.hidden_units,
        "rank": config.rank if config.rank is not None else config.hidden_units,
        "classes": classes,
        "learn_margin": config.learn_margin,
    }


def _to_model(network: MonNetwork, preprocessing: InputPreprocessing, dataset: str) -> MonModel:
    """Convert the network to a MonModel that keeps W exactly as training composed it.

    W is stored as the float64 matrix the forward pass used, not recomposed
    from A, B and m, so that quantize_tensor on the saved W gives the W_q that
    training saw, bit for bit.
    """
    weights = network.factors_numpy()
    return MonModel(**weights, preprocessing=preprocessing, dataset=dataset)


def _write_checkpoint(
    path: Path,
    network: MonNetwork,
    config: TrainConfig,
    preprocessing: InputPreprocessing,
    history: list[EpochRecord],
    resume_state: dict[str, Any] | None,
    seconds: float,
) -> MonModel:
    model = _to_model(network, preprocessing, config.dataset)
    last = history[-1] if history else None
    training = {
        "tool": f"mon2hls {__version__}",
        "config": config.to_dict(),
        "epochs_run": len(history),
        "world_size": dist.get_world_size() if dist.is_initialized() else 1,
        "alpha": network.solver.alpha,
        "float_accuracy": last.float_accuracy if last else None,
        "quantized_accuracy": last.quantized_accuracy if last else None,
        "quantized_margin": last.quantized_margin if last else None,
        "seconds": seconds,
        "history": [record.to_dict() for record in history],
    }
    save_checkpoint(path, model, training)

    if resume_state is None:
        return model

    # save_checkpoint writes the model format only; the resume state goes in as one more
    # top-level key, again through a temporary file and a rename.
    content = torch.load(path, map_location="cpu", weights_only=True)
    content[RESUME_KEY] = resume_state
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            torch.save(content, stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return model


def _progress_enabled(setting: bool | None, context: _Distributed) -> bool:
    if not context.is_main:
        return False
    if setting is not None:
        return setting
    return sys.stderr.isatty()


def train(config: TrainConfig, output: str | os.PathLike[str], resume: str | os.PathLike[str] | None = None) -> TrainResult:
    """Train a MON as `config` describes and write its checkpoint to `output` after every epoch.

    With `resume`, the network, optimizer, scheduler and RNG state are read
    from that checkpoint and training continues after its last finished epoch
    up to `config.epochs`. Raises ConfigError or DataError for bad settings,
    data or paths before anything is written.
    """
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    output = check_output_path(output)
    train_set = load_dataset(config.dataset, "train", config.data_dir).head(config.limit)
    test_set = load_dataset(config.dataset, "test", config.data_dir)
    if train_set.features != test_set.features:
        raise DataError(
            f"{config.dataset} train and test splits have {train_set.features} and {test_set.features} features"
        )
    classes = int(max(train_set.labels.max(), test_set.labels.max())) + 1
    input_features = train_set.features

    resume_state = None
    if resume is not None:
        resume_state = _load_resume_state(Path(resume), config, input_features, classes)

    context = _start_distributed()
    try:
        return _train(config, output, train_set, test_set, classes, resume_state, context, started)
    finally:
        if context.owns_group:
            dist.destroy_process_group()


def _train(
    config: TrainConfig,
    output: Path,
    train_set: Dataset,
    test_set: Dataset,
    classes: int,
    resume_state: dict[str, Any] | None,
    context: _Distributed,
    started: float,
) -> TrainResult:
    if config.batch_size < context.world_size:
        raise ConfigError(
            f"batch size {config.batch_size} is smaller than the {context.world_size} processes; raise --batch-size"
        )
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    network = MonNetwork(
        train_set.features, config.hidden_units, classes, rank=config.rank, margin=config.margin,
        learn_margin=config.learn_margin, generator=generator,
    )
    network.solver = SolverConfig(config.splitting, 1.0, config.tolerance, config.max_iterations)
    network.quantization = config.quantization
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    # One milestone: StepLR would divide again every lr_step epochs.
    scheduler = (torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[config.lr_step], gamma=0.1)
                 if config.lr_step else None)

    history: list[EpochRecord] = []
    first_epoch = 0
    if resume_state is not None:
        network.load_state_dict(resume_state["network"])
        optimizer.load_state_dict(resume_state["optimizer"])
        if scheduler is not None and resume_state.get("scheduler") is not None:
            scheduler.load_state_dict(resume_state["scheduler"])
        torch.set_rng_state(resume_state["rng"])
        first_epoch = int(resume_state["epoch"])
        history = [EpochRecord(**record) for record in resume_state.get("history", [])]
        logger.info("resuming after epoch %d", first_epoch)

    train_x, train_y = _features(train_set), torch.from_numpy(train_set.labels.copy())
    test_x, test_y = _features(test_set), torch.from_numpy(test_set.labels.copy())
    # Each process evaluates its own slice of the test set; the counts are summed.
    test_x, test_y = test_x[context.rank::context.world_size], test_y[context.rank::context.world_size]
    sampler = DistributedSampler(
        range(len(train_set)), num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=config.seed
    )
    local_batch = config.batch_size // context.world_size
    setting = config.quantization
    progress = _progress_enabled(config.progress, context)
    model: MonModel | None = None

    if setting is not None and config.target_margin is not None:
        enforce_quantized_margin(network, setting, config.target_margin)
    _retune_alpha(network)

    for epoch in range(first_epoch, config.epochs):
        epoch_started = time.perf_counter()
        sampler.set_epoch(epoch)
        indices = torch.tensor(list(sampler), dtype=torch.int64)
        batches = [indices[i:i + local_batch] for i in range(0, len(indices), local_batch)]
        loss_sum = correct = seen = 0.0
        forward_iterations: list[int] = []
        backward_iterations: list[int] = []
        projections = 0

        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False,
                   disable=not progress, file=sys.stderr)
        for step, batch in enumerate(bar):
            if step > 0 and step % config.alpha_interval == 0:
                _retune_alpha(network)
            x, y = train_x[batch], train_y[batch]
            optimizer.zero_grad(set_to_none=True)
            logits = network(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            loss.backward()
            forward_iterations.append(network.stats.forward_iterations)
            backward_iterations.append(network.stats.backward_iterations)
            if context.world_size > 1:
                for parameter in network.parameters():
                    if parameter.grad is not None:
                        dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
                        parameter.grad /= context.world_size
            optimizer.step()
            if setting is not None and config.target_margin is not None:
                if enforce_quantized_margin(network, setting, config.target_margin).changed:
                    projections += 1

            loss_sum += float(loss.detach()) * len(batch)
            correct += float((logits.argmax(dim=1) == y).sum())
            seen += len(batch)
            if progress:
                bar.set_postfix(loss=f"{float(loss):.4f}", iters=network.stats.forward_iterations)
        bar.close()
        if scheduler is not None:
            scheduler.step()

        loss_sum, correct, seen = _all_reduce_sum([loss_sum, correct, seen], context)
        float_correct, eval_iterations = evaluate(network, test_x, test_y, quantized=False)
        quantized_correct, quantized_iterations = (None, None)
        if setting is not None:
            quantized_correct, quantized_iterations = evaluate(network, test_x, test_y, quantized=True)
            quantized_correct = _all_reduce_sum([float(quantized_correct)], context)[0]
        float_correct = _all_reduce_sum([float(float_correct)], context)[0]
        _retune_alpha(network)

        with torch.no_grad():
            W = network.weight().numpy()
        record = EpochRecord(
            epoch=epoch + 1,
            loss=loss_sum / seen,
            train_accuracy=100.0 * correct / seen,
            float_accuracy=100.0 * float_correct / len(test_set),
            quantized_accuracy=None if quantized_correct is None else 100.0 * quantized_correct / len(test_set),
            margin=margin(W),
            quantized_margin=None if setting is None else quantized_margin(network, setting),
            m=float(network.margin().detach()),
            alpha=network.solver.alpha,
            forward_iterations=float(np.mean(forward_iterations)),
            backward_iterations=float(np.mean(backward_iterations)),
            eval_iterations=eval_iterations,
            quantized_eval_iterations=quantized_iterations,
            margin_projections=projections,
            seconds=time.perf_counter() - epoch_started,
        )
        history.append(record)
        if context.is_main:
            _log_epoch(record, config)

        if context.is_main:
            resume_entry = {
                "network": network.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": torch.get_rng_state(),
                "epoch": epoch + 1,
                "architecture": _architecture(config, train_set.features, classes),
                "history": [r.to_dict() for r in history],
            }
            if not config.save_resume_state:
                resume_entry = None
            model = _write_checkpoint(output, network, config, test_set.preprocessing, history, resume_entry,
                                      time.perf_counter() - started)

    if model is None:
        model = _to_model(network, test_set.preprocessing, config.dataset)
    return TrainResult(model=model, history=tuple(history), path=output if context.is_main else None,
                       seconds=time.perf_counter() - started, network=network)


def _log_epoch(record: EpochRecord, config: TrainConfig) -> None:
    text = (f"epoch {record.epoch}/{config.epochs}: loss {record.loss:.4f}, "
            f"float accuracy {record.float_accuracy:.2f}%, mu(W) {record.margin:.4f}")
    if record.quantized_accuracy is not None:
        text += (f", {config.qat_bits}-bit accuracy {record.quantized_accuracy:.2f}%, "
                 f"mu(W_q) {record.quantized_margin:.4f}")
    text += (f", m {record.m:.4f}, iterations {record.forward_iterations:.1f} forward, "
             f"{record.backward_iterations:.1f} adjoint, {record.eval_iterations:.1f} test, "
             f"{record.seconds:.1f} s")
    logger.info("%s", text)
