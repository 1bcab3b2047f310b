"""Margin-aware quantization-aware training: keeping mu(W_q) >= a target.

Method: a projection on the margin parameter m. After every optimizer step
the quantized margin mu(W_q) is computed exactly (an eigenvalue problem on the
n x n matrix that `quantize_tensor` returns). When it is below the target, m
is raised until mu(W_q) >= target: first by doubling increments, then by
bisection back towards the smallest m found that meets the target.

Why this method:

- It is exact. mu(W_q) is checked on the very matrix the certificate reads,
  after the last step of each epoch too, so no epoch ends below the target.
  A loss penalty only pushes towards the target and cannot promise that.
- It terminates. Raising m shifts the diagonal of W by -(m - m_0) I. For
  large m, W_q tends to a scaled negative identity, the off-diagonal entries
  round to zero, and mu(W_q) grows without bound, so the doubling search finds a passing m.
  A cap of 2^40 times the first increment turns a failure into an error.
- It keeps the hardware unchanged: the accelerator still stores one composed
  W_q. Quantizing the factors A and B instead keeps mu >= m by construction,
  but costs up to four times the multiplies per iteration.

Its cost is accuracy: a larger m pulls W towards a multiple of I. The
optimizer compensates during the remaining steps. With a learned margin the
optimizer may lower m again, and the next projection raises it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..analysis import margin
from ..errors import ConfigError, Mon2hlsError
from ..quantize import quantize_tensor
from .network import MonNetwork, QuantizationSetting

__all__ = ["MarginProjection", "quantized_margin", "enforce_quantized_margin", "check_target_margin"]

logger = logging.getLogger(__name__)

#: Doubling rounds before the search gives up (the increment grows by 2^40).
MAX_DOUBLINGS = 40

#: Bisection rounds that shrink m back towards the smallest value meeting the target.
BISECTION_ROUNDS = 12


@dataclass(frozen=True)
class MarginProjection:
    """Outcome of one projection: m and mu(W_q) before and after."""

    margin_before: float
    margin_after: float
    quantized_margin_before: float
    quantized_margin_after: float

    @property
    def changed(self) -> bool:
        return self.margin_after != self.margin_before


def quantized_margin(network: MonNetwork, setting: QuantizationSetting) -> float:
    """Return mu(W_q) for W_q = quantize_tensor(W) at the setting's bits and scheme."""
    with torch.no_grad():
        W = network.weight().numpy()
    return margin(quantize_tensor(W, setting.bits, setting.scheme).values)


def enforce_quantized_margin(network: MonNetwork, setting: QuantizationSetting, target: float) -> MarginProjection:
    """Raise the margin parameter m until mu(W_q) >= target; leave it when that already holds.

    Raises Mon2hlsError when no m up to m + 2^40 (target - mu(W_q)) meets the
    target, which the argument in the module docstring rules out for finite
    weights.
    """
    start = float(network.margin().detach())
    mu_start = quantized_margin(network, setting)
    if mu_start >= target:
        return MarginProjection(start, start, mu_start, mu_start)

    # Doubling phase: find some m that meets the target.
    step = max(target - mu_start, 1e-6)
    failing, passing = start, None
    for _ in range(MAX_DOUBLINGS):
        candidate = start + step
        network.set_margin(candidate)
        mu = quantized_margin(network, setting)
        if mu >= target:
            passing, mu_passing = candidate, mu
            break
        failing = candidate
        step *= 2.0
    if passing is None:
        network.set_margin(start)
        raise Mon2hlsError(
            f"could not raise the quantized margin to {target:g}: mu(W_q) stayed at {mu:.4g} "
            f"with m up to {candidate:.4g}; lower the target margin or use more bits"
        )

    # Bisection phase: mu(W_q) is not monotone in m in general, so only a
    # tested m that meets the target is ever kept.
    for _ in range(BISECTION_ROUNDS):
        middle = 0.5 * (failing + passing)
        network.set_margin(middle)
        mu = quantized_margin(network, setting)
        if mu >= target:
            passing, mu_passing = middle, mu
        else:
            failing = middle
    network.set_margin(passing)

    logger.debug("raised m from %.6g to %.6g: mu(W_q) %.6g -> %.6g", start, passing, mu_start, mu_passing)
    return MarginProjection(start, float(network.margin().detach()), mu_start, quantized_margin(network, setting))


def check_target_margin(target: float | None) -> float | None:
    """Validate a target margin: None (off) or a positive finite number."""
    if target is None:
        return None
    value = float(target)
    if not (np.isfinite(value) and value > 0):
        raise ConfigError(f"target margin must be a positive number, not {target!r}")
    return value
