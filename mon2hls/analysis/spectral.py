"""Margin, Lipschitz constant and contraction factors of a MON weight W.

All quantities are exact spectral computations in float64 on the matrix given,
so they certify whatever matrix is passed in: the float W, a quantized W_q, or
the operator a fixed-point accelerator really stores.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ..errors import ConfigError

__all__ = [
    "Splitting",
    "margin",
    "lipschitz",
    "fb_matrix",
    "pr_matrix",
    "contraction_factor",
    "best_alpha",
    "SplittingAnalysis",
    "OperatorAnalysis",
    "analyze_operator",
]


class Splitting(enum.Enum):
    """Operator splitting method that solves for the equilibrium."""

    FB = "fb"  #: forward-backward: z <- ReLU((1 - alpha) z + alpha (W z + c))
    PR = "pr"  #: Peaceman-Rachford with V = (I + alpha (I - W))^-1

    @classmethod
    def parse(cls, value: "str | Splitting") -> "Splitting":
        if isinstance(value, Splitting):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ConfigError(f"unknown splitting method {value!r}; choose one of: {choices}") from None


def margin(W: np.ndarray) -> float:
    """Return the monotonicity margin mu(W) = lambda_min((I - W + (I - W)^T) / 2).

    The equilibrium exists and is unique when mu > 0.
    """
    W = np.asarray(W, dtype=np.float64)
    S = np.eye(W.shape[0]) - W
    return float(np.linalg.eigvalsh(0.5 * (S + S.T))[0])


def lipschitz(W: np.ndarray) -> float:
    """Return the Lipschitz constant L = norm(I - W, 2) of the linear part."""
    W = np.asarray(W, dtype=np.float64)
    return float(np.linalg.norm(np.eye(W.shape[0]) - W, 2))


def fb_matrix(W: np.ndarray, alpha: float) -> np.ndarray:
    """Return the forward-backward iteration matrix (1 - alpha) I + alpha W."""
    W = np.asarray(W, dtype=np.float64)
    return (1.0 - alpha) * np.eye(W.shape[0]) + alpha * W


def pr_matrix(W: np.ndarray, alpha: float) -> np.ndarray:
    """Return the Peaceman-Rachford resolvent V = (I + alpha (I - W))^-1."""
    W = np.asarray(W, dtype=np.float64)
    n = W.shape[0]
    return np.linalg.inv(np.eye(n) + alpha * (np.eye(n) - W))


def contraction_factor(W: np.ndarray, splitting: Splitting | str, alpha: float) -> float:
    """Return the exact contraction factor of the linear part of one splitting step.

    FB: rho = norm((1 - alpha) I + alpha W, 2). PR: rho = norm(2 V - I, 2), the
    factor of the reflected resolvent that the iteration on u applies. ReLU is
    a projection and never increases distances, so rho < 1 certifies that the
    iteration converges to the unique equilibrium from any start.
    """
    splitting = Splitting.parse(splitting)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"splitting step alpha must be a positive number, not {alpha!r}")
    if splitting is Splitting.FB:
        return float(np.linalg.norm(fb_matrix(W, alpha), 2))
    n = np.asarray(W).shape[0]
    try:
        V = pr_matrix(W, alpha)
    except np.linalg.LinAlgError:
        return math.inf
    return float(np.linalg.norm(2.0 * V - np.eye(n), 2))


def best_alpha(W: np.ndarray, splitting: Splitting | str) -> tuple[float, float]:
    """Find the step alpha that minimizes the exact contraction factor.

    FB: norm(I - alpha (I - W), 2) is convex in alpha and exceeds 1 for
    alpha >= 2 / L, so a bounded scalar search on (0, 2 / L) finds the optimum.
    PR: the factor is searched on a logarithmic grid of alpha in [1e-3, 1e3],
    then refined around the best grid point. Returns (alpha, contraction).
    When no step contracts (mu(W) <= 0) the best factor found is still >= 1.
    """
    splitting = Splitting.parse(splitting)
    W = np.asarray(W, dtype=np.float64)
    if splitting is Splitting.FB:
        L = lipschitz(W)
        upper = 2.0 / L if L > 0 else 1.0
        result = optimize.minimize_scalar(
            lambda a: contraction_factor(W, Splitting.FB, a),
            bounds=(1e-9 * upper, upper),
            method="bounded",
            options={"xatol": 1e-7 * upper},
        )
        alpha = float(result.x)
        return alpha, contraction_factor(W, Splitting.FB, alpha)

    grid = np.logspace(-3, 3, 61)
    factors = [contraction_factor(W, Splitting.PR, a) for a in grid]
    i = int(np.argmin(factors))
    lo = math.log(grid[max(i - 1, 0)])
    hi = math.log(grid[min(i + 1, len(grid) - 1)])
    result = optimize.minimize_scalar(
        lambda t: contraction_factor(W, Splitting.PR, math.exp(t)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-6},
    )
    alpha = float(math.exp(result.x))
    rho = contraction_factor(W, Splitting.PR, alpha)
    if rho > factors[i]:
        alpha, rho = float(grid[i]), float(factors[i])
    return alpha, rho


@dataclass(frozen=True)
class SplittingAnalysis:
    """Best step of one splitting method and its exact contraction factor."""

    splitting: Splitting
    alpha: float
    contraction: float

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "contraction": self.contraction}


@dataclass(frozen=True)
class OperatorAnalysis:
    """Spectral figures of one weight W (see `analyze_operator`)."""

    hidden_units: int
    margin: float
    lipschitz: float
    norm_W: float
    fb: SplittingAnalysis
    pr: SplittingAnalysis

    @property
    def condition_number(self) -> float:
        """kappa = L / mu; infinite when the operator is not monotone."""
        return self.lipschitz / self.margin if self.margin > 0 else math.inf

    @property
    def relative_condition_number(self) -> float:
        """kappa_rel = norm(W, 2) / mu; links relative weight error to equilibrium error."""
        return self.norm_W / self.margin if self.margin > 0 else math.inf

    def splitting(self, method: Splitting | str) -> SplittingAnalysis:
        return self.fb if Splitting.parse(method) is Splitting.FB else self.pr


def analyze_operator(W: np.ndarray) -> OperatorAnalysis:
    """Compute margin, Lipschitz constant, norms and the best step of FB and PR for W."""
    W = np.asarray(W, dtype=np.float64)
    fb_alpha, fb_rho = best_alpha(W, Splitting.FB)
    pr_alpha, pr_rho = best_alpha(W, Splitting.PR)
    return OperatorAnalysis(
        hidden_units=W.shape[0],
        margin=margin(W),
        lipschitz=lipschitz(W),
        norm_W=float(np.linalg.norm(W, 2)),
        fb=SplittingAnalysis(Splitting.FB, fb_alpha, fb_rho),
        pr=SplittingAnalysis(Splitting.PR, pr_alpha, pr_rho),
    )
