"""Test inputs for a build: labelled data set samples when the model has a data set, random inputs otherwise."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from ..data import Dataset, find_mnist_dir, load_dataset
from ..data.mnist import DATA_DIR_VARIABLE
from ..errors import DataError
from ..model import MonModel

__all__ = ["TestInputs", "data_dir_configured", "labelled_dataset", "random_raw_inputs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TestInputs:
    """Raw test inputs (N x d), their labels when known, and where they came from."""

    raw: np.ndarray
    labels: np.ndarray | None
    source: str


def data_dir_configured(data_dir: str | None) -> bool:
    """Return whether the user named a data folder, by --data-dir or $MON2HLS_DATA_DIR."""
    return data_dir is not None or bool(os.environ.get(DATA_DIR_VARIABLE))


def labelled_dataset(model: MonModel, data_dir: str | None) -> Dataset | None:
    """Return the test split of the model's data set, or None when the model has none or it is not available.

    MNIST is read from `data_dir`, MON2HLS_DATA_DIR or the cache folder and is
    never downloaded here: a build must not depend on the network. When the
    user named the folder (`data_dir` or MON2HLS_DATA_DIR) and it cannot be
    read, the DataError is raised; only an unconfigured MNIST falls back to
    random test inputs with a warning.
    """
    name = (model.dataset or "").lower()
    if name not in ("mnist", "digits"):
        return None
    configured = data_dir_configured(data_dir)
    try:
        if name == "mnist":
            data_dir = str(find_mnist_dir(data_dir, download=False))
        dataset = load_dataset(name, "test", data_dir)
    except DataError as error:
        if name == "mnist" and configured:
            raise
        logger.warning("%s test set not available (%s); using random test inputs instead", name, error)
        return None
    if dataset.features != model.input_features:
        logger.warning(
            "%s has %d features but the model takes %d; using random test inputs instead",
            name, dataset.features, model.input_features,
        )
        return None
    return dataset


def random_raw_inputs(count: int, features: int, low: float, high: float, seed: int) -> np.ndarray:
    """Draw `count` inputs spanning [low, high]: all-zero (when in range), all-low, all-high, alternating
    extremes, then uniform random inputs from a generator seeded with `seed`.
    """
    rng = np.random.default_rng(seed)
    special = []
    if low <= 0.0 <= high:
        special.append(np.zeros(features))
    special.append(np.full(features, low))
    special.append(np.full(features, high))
    alternating = np.where(np.arange(features) % 2 == 0, low, high)
    special.append(alternating)
    special.append(alternating[::-1].copy())
    rows = special[:count]
    if count > len(rows):
        rows.extend(rng.uniform(low, high, size=(count - len(rows), features)))
    return np.vstack(rows)
