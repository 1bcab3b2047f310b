"""Evaluation data sets: MNIST from its IDX files and the scikit-learn 8 x 8 digits."""

from __future__ import annotations

import os

from ..errors import DataError
from .dataset import Dataset
from .digits import DIGITS_PREPROCESSING, load_digits
from .mnist import DATA_DIR_VARIABLE, find_mnist_dir, load_mnist, parse_idx, read_idx

__all__ = [
    "DATASETS",
    "DATA_DIR_VARIABLE",
    "DIGITS_PREPROCESSING",
    "Dataset",
    "find_mnist_dir",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "parse_idx",
    "read_idx",
]

#: Names accepted by `load_dataset`.
DATASETS = ("mnist", "digits")


def load_dataset(name: str, split: str = "test", data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load one split of a data set by name ("mnist" or "digits"); `data_dir` applies to MNIST only."""
    key = str(name).lower()
    if key == "mnist":
        return load_mnist(split, data_dir)
    if key == "digits":
        return load_digits(split)
    raise DataError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
