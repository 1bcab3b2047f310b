"""The in-memory form of a trained monotone operator equilibrium network (MON).

A MON maps an input x (d features) to the equilibrium z* (n hidden units) of

    z* = ReLU(W z* + U x + b)

and to the logits y = W_out z* + b_out (k classes). Every loader produces a
`MonModel`; every later stage (analysis, quantization, certification, the
fixed-point model and the back ends) reads only this object.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InvalidModelError

__all__ = ["InputPreprocessing", "MonModel", "MNIST_PREPROCESSING"]


@dataclass(frozen=True)
class InputPreprocessing:
    """The affine map from raw input values to the model's input features.

    x = (raw * scale - mean) / std, applied to every feature. The identity map
    (scale 1, mean 0, std 1) means the model takes its features as given.
    """

    scale: float = 1.0
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        for name in ("scale", "mean", "std"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise InvalidModelError(f"input preprocessing {name} must be finite, not {value!r}")
        if self.std == 0.0:
            raise InvalidModelError("input preprocessing std must be non-zero, not 0.0")

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.mean == 0.0 and self.std == 1.0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Map raw inputs to model features: (raw * scale - mean) / std, in float64."""
        return (np.asarray(raw, dtype=np.float64) * self.scale - self.mean) / self.std


#: Preprocessing of the public MNIST MON models: pixels / 255, then
#: normalization with the MNIST training-set mean 0.1307 and std 0.3081.
MNIST_PREPROCESSING = InputPreprocessing(scale=1.0 / 255.0, mean=0.1307, std=0.3081)


#: Largest weight magnitude accepted: squares and products of larger values
#: overflow float64 in the eigenvalue and norm computations.
MAX_MAGNITUDE = 1e100


def _as_matrix(name: str, value: Any, ndim: int) -> np.ndarray:
    array = np.array(value, dtype=np.float64, copy=True)
    if array.ndim != ndim:
        raise InvalidModelError(f"{name} must have {ndim} dimension(s), not shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise InvalidModelError(
            f"{name} contains {bad} NaN or Inf value(s); retrain or re-export the model with finite weights"
        )
    peak = float(np.max(np.abs(array))) if array.size else 0.0
    if peak > MAX_MAGNITUDE:
        raise InvalidModelError(
            f"{name} has an entry of magnitude {peak:.3g}, beyond the {MAX_MAGNITUDE:.0e} that float64 "
            f"spectral analysis can square without overflow; check the file or the margin parameter m"
        )
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class MonModel:
    """A fully connected MON with its float64 weights.

    `W` is the composed n x n weight of the equilibrium. When the model was
    trained with the MON parameterization W = (1 - m) I - A^T A + B - B^T,
    `A`, `B` and `m` are kept too, so quantization can act on the factors.
    `dataset` names the data the model was trained on ("mnist", "digits") when
    known; it selects evaluation data and the hardware test vectors.
    """

    W: np.ndarray
    U: np.ndarray
    b: np.ndarray
    W_out: np.ndarray
    b_out: np.ndarray
    preprocessing: InputPreprocessing = InputPreprocessing()
    A: np.ndarray | None = None
    B: np.ndarray | None = None
    m: float | None = None
    dataset: str | None = None
    source: str = "<memory>"
    sha256: str | None = None
    layout: str = "generic"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "W", _as_matrix("W", self.W, 2))
        set_(self, "U", _as_matrix("U", self.U, 2))
        set_(self, "b", _as_matrix("b", self.b, 1))
        set_(self, "W_out", _as_matrix("W_out", self.W_out, 2))
        set_(self, "b_out", _as_matrix("b_out", self.b_out, 1))
        if self.A is not None:
            set_(self, "A", _as_matrix("A", self.A, 2))
        if self.B is not None:
            set_(self, "B", _as_matrix("B", self.B, 2))

        n = self.W.shape[0]
        checks = [
            ("W", self.W.shape, (n, n)),
            ("U", self.U.shape[:1], (n,)),
            ("b", self.b.shape, (n,)),
            ("W_out", self.W_out.shape[1:], (n,)),
            ("b_out", self.b_out.shape, self.W_out.shape[:1]),
        ]
        if self.A is not None:
            checks.append(("A", self.A.shape[1:], (n,)))
        if self.B is not None:
            checks.append(("B", self.B.shape, (n, n)))
        for name, got, expected in checks:
            if tuple(got) != tuple(expected):
                raise InvalidModelError(
                    f"shape mismatch: {name} has shape {getattr(self, name).shape}, which does not fit "
                    f"{n} hidden units, {self.U.shape[1]} inputs and {self.W_out.shape[0]} classes"
                )
        if n == 0 or self.U.shape[1] == 0 or self.W_out.shape[0] == 0:
            raise InvalidModelError(
                f"model sizes must be positive: {n} hidden units, {self.U.shape[1]} inputs, "
                f"{self.W_out.shape[0]} classes"
            )
        if self.m is not None and not (np.isfinite(self.m) and self.m > 0):
            raise InvalidModelError(f"margin parameter m must be a positive number, not {self.m!r}")

    @property
    def hidden_units(self) -> int:
        return self.W.shape[0]

    @property
    def input_features(self) -> int:
        return self.U.shape[1]

    @property
    def classes(self) -> int:
        return self.W_out.shape[0]

    def injection(self, x: np.ndarray) -> np.ndarray:
        """Compute the input injection c = U x + b for a batch of features x (batch x d)."""
        return np.asarray(x, dtype=np.float64) @ self.U.T + self.b

    def folded_input_layer(self) -> tuple[np.ndarray, np.ndarray]:
        """Fold the preprocessing into the input layer so it acts on raw inputs.

        With x = (raw * scale - mean) / std, U x + b = U' raw + b' where
        U' = U * scale / std and b' = b - (mean / std) U 1. The hardware takes
        raw inputs (MNIST pixels as 8-bit integers) and stores U' and b'.
        Returns (U', b').
        """
        p = self.preprocessing
        U_raw = self.U * (p.scale / p.std)
        b_raw = self.b - (p.mean / p.std) * self.U.sum(axis=1)
        return U_raw, b_raw

    def replace(self, **changes: Any) -> "MonModel":
        """Return a copy with the given fields replaced (shapes are checked again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_factors(
        cls,
        A: np.ndarray,
        B: np.ndarray,
        m: float,
        U: np.ndarray,
        b: np.ndarray,
        W_out: np.ndarray,
        b_out: np.ndarray,
        **kwargs: Any,
    ) -> "MonModel":
        """Build a model from the MON parameterization W = (1 - m) I - A^T A + B - B^T."""
        A = np.asarray(A, dtype=np.float64)
        B = np.asarray(B, dtype=np.float64)
        if not (np.isfinite(m) and m > 0):
            raise InvalidModelError(f"margin parameter m must be a positive number, not {m!r}")
        W = compose_weight(A, B, m)
        return cls(W=W, U=U, b=b, W_out=W_out, b_out=b_out, A=A, B=B, m=float(m), **kwargs)


def compose_weight(A: np.ndarray, B: np.ndarray, m: float) -> np.ndarray:
    """Compose W = (1 - m) I - A^T A + B - B^T from the MON factors (A may be r x n)."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    n = B.shape[0]
    if A.ndim != 2 or A.shape[1] != n or B.shape != (n, n):
        raise InvalidModelError(
            f"shape mismatch: A has shape {A.shape} and B has shape {B.shape}; "
            f"A must be r x n and B n x n"
        )
    return (1.0 - m) * np.eye(n) - A.T @ A + B - B.T
