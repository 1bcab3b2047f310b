"""Symmetric integer quantization of MON weights.

A tensor X quantized to B bits is stored as integer codes q in
[-(2^(B-1) - 1), 2^(B-1) - 1] and one scale s (per tensor) or one scale per
output row, so that X_q = s * q. The code range is symmetric, so negating a
weight never saturates.

Schemes:

- ``max-abs``: s = max|X| / (2^(B-1) - 1), q = clamp(round(X / s)), round to
  nearest (ties to even, as numpy and PyTorch round). This is the per-tensor
  scheme of the MON quantization study (Li, Leong and Chaffey, 2026), so its
  figures reproduce exactly.
- ``pow2``: s is the smallest power of two with max|X| / s <= 2^(B-1) - 1:
  plain fixed point, what an ``ap_fixed`` weight holds.
- ``per-row``: ``max-abs`` applied to each output row separately.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..errors import ConfigError
from ..model import MonModel, compose_weight

__all__ = [
    "MIN_BITS",
    "MAX_BITS",
    "DEFAULT_QUANTIZED_TENSORS",
    "Scheme",
    "check_bits",
    "QuantizedTensor",
    "quantize_tensor",
    "QuantizationConfig",
    "QuantizedModel",
    "quantize_model",
]

MIN_BITS = 2
MAX_BITS = 16

#: Tensors quantized unless the user chooses otherwise: the equilibrium weight
#: and the input layer, as in the MON quantization study. The output head is a
#: plain linear layer outside the equilibrium and stays in float by default.
DEFAULT_QUANTIZED_TENSORS = ("W", "U", "b")

ALL_TENSORS = ("W", "U", "b", "W_out", "b_out")


class Scheme(enum.Enum):
    """Quantization scheme: how the scale of a tensor is chosen."""

    MAX_ABS = "max-abs"
    POW2 = "pow2"
    PER_ROW = "per-row"

    @classmethod
    def parse(cls, value: "str | Scheme") -> "Scheme":
        if isinstance(value, Scheme):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ConfigError(f"unknown quantization scheme {value!r}; choose one of: {choices}") from None


def check_bits(bits: object) -> int:
    """Validate a bit width and return it as an int (2 to 16 inclusive)."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        try:
            bits = int(str(bits), 10)
        except ValueError:
            raise ConfigError(
                f"bit width must be a whole number from {MIN_BITS} to {MAX_BITS}, not {bits!r}"
            ) from None
    bits = int(bits)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigError(f"bit width must be from {MIN_BITS} to {MAX_BITS}, not {bits}")
    return bits


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """Integer codes and scale(s) of one quantized tensor: values = scale * codes.

    `scale` is a float64 scalar array for per-tensor schemes and a column
    vector (one entry per row) for ``per-row``.
    """

    name: str
    bits: int
    scheme: Scheme
    codes: np.ndarray
    scale: np.ndarray

    @property
    def values(self) -> np.ndarray:
        return self.scale * self.codes

    @property
    def max_code(self) -> int:
        return 2 ** (self.bits - 1) - 1


def _pow2_ceil(x: np.ndarray) -> np.ndarray:
    return np.exp2(np.ceil(np.log2(x)))


def quantize_tensor(X: np.ndarray, bits: int, scheme: Scheme | str, name: str = "X") -> QuantizedTensor:
    """Quantize X to `bits`-bit symmetric codes: q = clamp(round(X / s), -Q, Q), Q = 2^(bits-1) - 1.

    The scale s follows the scheme (see the module docstring). An all-zero
    tensor (or row) gets scale 1 and zero codes.
    """
    bits = check_bits(bits)
    scheme = Scheme.parse(scheme)
    X = np.asarray(X, dtype=np.float64)
    q_max = 2 ** (bits - 1) - 1

    if scheme is Scheme.PER_ROW and X.ndim == 2:
        peak = np.max(np.abs(X), axis=1, keepdims=True)
    else:
        peak = np.asarray(np.max(np.abs(X)) if X.size else 0.0)

    scale = peak / q_max
    if scheme is Scheme.POW2:
        scale = np.where(peak > 0, _pow2_ceil(np.where(peak > 0, scale, 1.0)), 1.0)
    scale = np.where(peak > 0, scale, 1.0).astype(np.float64)

    codes = np.clip(np.rint(X / scale), -q_max, q_max).astype(np.int64)
    return QuantizedTensor(name=name, bits=bits, scheme=scheme, codes=codes, scale=scale)


@dataclass(frozen=True)
class QuantizationConfig:
    """Quantization settings of a model.

    `tensors` lists which of W, U, b, W_out, b_out are quantized (default: W,
    U and b). With `keep_diagonal` the diagonal of W stays exact and only the
    off-diagonal part is quantized. With `factors` the MON factors A and B are
    quantized and W_q = (1 - m) I - A_q^T A_q + B_q - B_q^T is composed from
    them, which keeps mu(W_q) >= m.
    """

    bits: int
    scheme: Scheme = Scheme.MAX_ABS
    tensors: tuple[str, ...] = DEFAULT_QUANTIZED_TENSORS
    keep_diagonal: bool = False
    factors: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", check_bits(self.bits))
        object.__setattr__(self, "scheme", Scheme.parse(self.scheme))
        tensors = tuple(dict.fromkeys(self.tensors))
        unknown = [t for t in tensors if t not in ALL_TENSORS]
        if unknown:
            raise ConfigError(
                f"unknown tensor name(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(ALL_TENSORS)}"
            )
        object.__setattr__(self, "tensors", tensors)
        if self.keep_diagonal and self.factors:
            raise ConfigError("keep_diagonal and factors exclude each other; choose one")

    @classmethod
    def parse_tensors(cls, text: str | Iterable[str]) -> tuple[str, ...]:
        """Parse a comma-separated tensor list such as "W,U,b"."""
        items = text.split(",") if isinstance(text, str) else list(text)
        return tuple(item.strip() for item in items if item.strip())


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """A model whose chosen tensors were replaced by their quantized values.

    `model` contains the dequantized float64 weights (W_q, U_q, ...), so every
    float tool (analysis, solvers) works on it unchanged; `tensors` holds the
    integer codes and scales of each quantized tensor.
    """

    original: MonModel
    model: MonModel
    config: QuantizationConfig
    tensors: dict[str, QuantizedTensor] = field(default_factory=dict)

    @property
    def delta_W(self) -> np.ndarray:
        return self.model.W - self.original.W


def quantize_model(model: MonModel, config: QuantizationConfig) -> QuantizedModel:
    """Quantize the tensors `config.tensors` of `model` with `config.scheme` at `config.bits`."""
    tensors: dict[str, QuantizedTensor] = {}
    values: dict[str, np.ndarray] = {}

    def quantize(name: str, X: np.ndarray) -> np.ndarray:
        qt = quantize_tensor(X, config.bits, config.scheme, name=name)
        tensors[name] = qt
        return qt.values

    for name in ("U", "b", "W_out", "b_out"):
        if name in config.tensors:
            values[name] = quantize(name, getattr(model, name))

    if "W" in config.tensors:
        if config.factors:
            if model.A is None or model.B is None or model.m is None:
                raise ConfigError(
                    "quantizing the factors needs A, B and m, but this model stores only the composed W; "
                    "quantize W instead (drop the factors option)"
                )
            A_q = quantize("A", model.A)
            B_q = quantize("B", model.B)
            values["W"] = compose_weight(A_q, B_q, model.m)
        elif config.keep_diagonal:
            diagonal = np.diag(model.W)
            off_diagonal = model.W - np.diag(diagonal)
            values["W"] = quantize("W", off_diagonal) + np.diag(diagonal)
        else:
            values["W"] = quantize("W", model.W)

    quantized = model.replace(**values)
    return QuantizedModel(original=model, model=quantized, config=config, tensors=tensors)
