"""The 8 x 8 handwritten digits bundled with scikit-learn (no download needed).

1,797 images of 64 pixels with values 0..16, split deterministically into
1,437 training and 360 test images, stratified by class.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import DataError
from ..model import InputPreprocessing
from .dataset import Dataset

__all__ = ["DIGITS_PREPROCESSING", "DIGITS_SPLITS", "load_digits"]

#: Pixels 0..16 scaled to [0, 1].
DIGITS_PREPROCESSING = InputPreprocessing(scale=1.0 / 16.0)

DIGITS_SPLITS = ("train", "test")

TEST_FRACTION = 0.2
SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _split_digits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits as sklearn_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_load_digits()
    raw = bunch.data.astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    raw_train, raw_test, labels_train, labels_test = train_test_split(
        raw, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    return {"train": (raw_train, labels_train), "test": (raw_test, labels_test)}


def load_digits(split: str = "test") -> Dataset:
    """Load the "train" or "test" split of the scikit-learn digits as 64 uint8 pixels (0..16) per image."""
    if split not in DIGITS_SPLITS:
        raise DataError(f"unknown digits split {split!r}; choose one of: {', '.join(DIGITS_SPLITS)}")
    raw, labels = _split_digits()[split]
    return Dataset(raw=raw, labels=labels, name="digits", split=split, preprocessing=DIGITS_PREPROCESSING)
