"""Writing mon2hls's own checkpoint format."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..model import MonModel
from .layouts import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

__all__ = ["save_checkpoint"]

logger = logging.getLogger(__name__)


def _check_plain(value: Any, where: str) -> None:
    """Reject values that torch.load(weights_only=True) could not read back."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"training settings key {where}[{key!r}] must be a string")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise ConfigError(
        f"training setting {where} must be None, a bool, int, float, str, list or dict, "
        f"not {type(value).__name__}; convert it (for example an enum to its value) before saving"
    )


def save_checkpoint(
    path: str | os.PathLike[str], model: MonModel, training: Mapping[str, Any] | None = None
) -> Path:
    """Save a model as a mon2hls checkpoint (.pt) that `load_model` restores in full.

    The file is a dict {"format": "mon2hls-checkpoint", "version": 1,
    "model": {W, U, b, W_out, b_out and, when known, A, B, m},
    "preprocessing": {scale, mean, std}, "dataset", "training"}; tensors are
    float64, so a save and load round trip is exact. The file is written to a
    temporary name in the same folder and renamed, so a crash never leaves a
    half-written checkpoint. Returns the path written.
    """
    import torch

    path = Path(path)
    settings = dict(training) if training is not None else dict(model.metadata.get("training", {}))
    _check_plain(settings, "training")

    tensors: dict[str, Any] = {
        name: torch.from_numpy(getattr(model, name).copy()) for name in ("W", "U", "b", "W_out", "b_out")
    }
    if model.A is not None:
        tensors["A"] = torch.from_numpy(model.A.copy())
    if model.B is not None:
        tensors["B"] = torch.from_numpy(model.B.copy())
    if model.m is not None:
        tensors["m"] = float(model.m)

    p = model.preprocessing
    content = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": tensors,
        "preprocessing": {"scale": float(p.scale), "mean": float(p.mean), "std": float(p.std)},
        "dataset": model.dataset,
        "training": settings,
    }

    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            torch.save(content, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.info("saved checkpoint %s", path)
    return path
