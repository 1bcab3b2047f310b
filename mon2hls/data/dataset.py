"""The in-memory form of a labelled image data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..model import InputPreprocessing

__all__ = ["Dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Raw samples and labels of one split of a data set.

    `raw` is an N x d uint8 array of unprocessed values (MNIST pixels 0..255,
    digits pixels 0..16) and `labels` an int64 array of N class indices.
    `preprocessing` is the map that models of this data set usually apply to
    the raw values; a model's own preprocessing takes precedence.
    """

    raw: np.ndarray
    labels: np.ndarray
    name: str
    split: str
    preprocessing: InputPreprocessing = InputPreprocessing()

    def __post_init__(self) -> None:
        raw = np.asarray(self.raw)
        labels = np.asarray(self.labels, dtype=np.int64)
        if raw.ndim != 2 or labels.shape != raw.shape[:1]:
            raise DataError(
                f"data set {self.name} ({self.split}) has {raw.shape} samples and {labels.shape} labels; "
                "expected N x d samples and N labels"
            )
        raw.setflags(write=False)
        labels.setflags(write=False)
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    @property
    def features(self) -> int:
        return int(self.raw.shape[1])

    def head(self, limit: int | None) -> "Dataset":
        """Return the first `limit` samples (all of them when limit is None)."""
        if limit is None:
            return self
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
            raise DataError(f"sample limit must be a positive whole number, not {limit!r}")
        return Dataset(self.raw[:limit], self.labels[:limit], self.name, self.split, self.preprocessing)

    def model_inputs(self, preprocessing: InputPreprocessing | None = None) -> np.ndarray:
        """Map the raw samples to float64 model features with `preprocessing` (default: the data set's own)."""
        return (preprocessing or self.preprocessing).apply(self.raw)
