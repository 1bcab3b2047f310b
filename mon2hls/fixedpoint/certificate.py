"""Fixed-point parts of a datapath certificate: rounding ball, overflow and displacement.

Each part is a frozen dataclass with `holds`, `failures()` and `to_dict()`,
the `CertificatePart` protocol of `mon2hls.certify.certificate`. The figures
are computed by `mon2hls.fixedpoint.design` on the operator the hardware
really stores; the formulas are in docs/datapath.md, section 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RoundingBall",
    "OverflowProof",
    "DisplacementBound",
    "rounding_step_error",
    "iteration_bound",
    "after_stop_bound",
]


def _number(value: float | None) -> float | None:
    # JSON has no Inf or NaN: a bound that does not exist is written as null.
    if value is None:
        return None
    return float(value) if math.isfinite(value) else None


def rounding_step_error(hidden_units: int, frac_bits: int, doubled: bool) -> float:
    """Return e, the 2-norm of the rounding error one iteration adds.

    AP_RND errs by at most half an LSB per element, so e = sqrt(n) * 2^-(Fs+1).
    Peaceman-Rachford doubles it (`doubled`) because u' = 2 zh - h doubles the
    error of the rounded zh.
    """
    e = math.sqrt(hidden_units) * 2.0 ** (-(frac_bits + 1))
    return 2.0 * e if doubled else e


def iteration_bound(contraction: float, radius: float, equilibrium_bound: float, threshold: float) -> int | None:
    """Return the smallest k >= 1 with (1 + rho) rho^(k-1) X + 2 beta <= threshold, or None if none exists.

    From x_0 = 0 the iterates satisfy norm(x_k - x*) <= rho^k X + beta, so the
    step norm(x_k - x_(k-1)) is at most (1 + rho) rho^(k-1) X + 2 beta. The
    residual the hardware compares (a maximum over elements) never exceeds
    that 2-norm, so the stopping rule has fired by iteration k.
    """
    rho, beta, X = contraction, radius, equilibrium_bound
    if not (math.isfinite(rho) and rho < 1.0 and math.isfinite(beta) and math.isfinite(X)):
        return None
    slack = threshold - 2.0 * beta
    if slack <= 0:
        return None
    if (1.0 + rho) * X <= slack:
        return 1
    if rho == 0.0:
        return 2
    k = 1 + math.ceil(math.log(slack / ((1.0 + rho) * X)) / math.log(rho))
    # Guard the logarithm against rounding at the boundary.
    while k > 1 and (1.0 + rho) * rho ** (k - 2) * X + 2.0 * beta <= threshold:
        k -= 1
    while (1.0 + rho) * rho ** (k - 1) * X + 2.0 * beta > threshold:
        k += 1
    return k


def after_stop_bound(contraction: float, step_error: float, residual: float) -> float:
    """Bound norm(x_k - x*) after an iteration whose step norm(x_k - x_(k-1)) was `residual`.

    norm(x_(k-1) - x*) <= (residual + e) / (1 - rho), and one more iteration
    gives norm(x_k - x*) <= rho (residual + e) / (1 - rho) + e.
    """
    rho, e = contraction, step_error
    if not (math.isfinite(rho) and rho < 1.0):
        return math.inf
    return rho * (residual + e) / (1.0 - rho) + e


@dataclass(frozen=True)
class RoundingBall:
    """The iterates of the rounded datapath reach, and stop inside, a ball around the equilibrium.

    With e the rounding error per iteration and rho the contraction factor of
    the stored operator T, the hardware iterates satisfy
    norm(x_k - x*) <= rho^k X + beta with beta = e / (1 - rho). The stopping
    rule can fire only if 2 beta < tau_lsb * 2^-Fs (the tolerance the state
    can represent); `iteration_bound` is the iteration by which it has fired.
    """

    step_error: float
    contraction: float
    radius: float
    tolerance: float
    tolerance_lsb: int
    frac_bits: int
    equilibrium_bound: float
    iteration_bound: int | None
    max_iterations: int

    @property
    def effective_tolerance(self) -> float:
        """tau_lsb * 2^-Fs, the tolerance the stopping rule really applies."""
        return self.tolerance_lsb * 2.0 ** (-self.frac_bits)

    @property
    def contracts(self) -> bool:
        return math.isfinite(self.contraction) and self.contraction < 1.0

    @property
    def ball_fits(self) -> bool:
        return 2.0 * self.radius < self.effective_tolerance

    @property
    def stops_in_time(self) -> bool:
        return self.iteration_bound is not None and self.iteration_bound <= self.max_iterations

    @property
    def holds(self) -> bool:
        return self.contracts and self.ball_fits and self.stops_in_time

    def failures(self) -> list[str]:
        reasons = []
        if not self.contracts:
            reasons.append(
                f"the stored operator does not contract: rho = {self.contraction:.4g} >= 1"
            )
        elif not self.ball_fits:
            reasons.append(
                f"the rounding ball is too large for the tolerance: 2 beta = {2 * self.radius:.4g} "
                f">= {self.effective_tolerance:.4g} (tolerance {self.tolerance:.4g} at {self.frac_bits} "
                f"fractional bits); add fractional bits or raise the tolerance"
            )
        elif not self.stops_in_time:
            reasons.append(
                f"the certified iteration bound {self.iteration_bound} exceeds max_iterations = "
                f"{self.max_iterations}; raise max_iterations"
            )
        return reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_error": self.step_error,
            "contraction": _number(self.contraction),
            "radius": _number(self.radius),
            "tolerance": self.tolerance,
            "tolerance_lsb": self.tolerance_lsb,
            "effective_tolerance": self.effective_tolerance,
            "frac_bits": self.frac_bits,
            "equilibrium_bound": _number(self.equilibrium_bound),
            "iteration_bound": self.iteration_bound,
            "max_iterations": self.max_iterations,
            "holds": self.holds,
        }


@dataclass(frozen=True)
class OverflowProof:
    """No register of the datapath can overflow, so no saturator changes a value.

    `method` is "worst-case" (a proof over every input of the input format) or
    "data-driven" (bounds measured on a calibration set: not a proof; the
    saturators protect the datapath). Bounds are real values: `injection_bound`
    is max_i D_i (the largest |d_i|), `equilibrium_bound` X bounds the norm of
    the iterated vector (z for FB, u for PR), `state_bound` S = X + max_i D_i
    bounds every state register, `logit_bound` every logit.
    """

    method: str
    injection_bound: float
    equilibrium_bound: float
    state_bound: float
    state_format: str
    state_limit: float
    logit_bound: float
    logit_format: str
    logit_limit: float
    accumulator_bits: dict[str, int]
    calibration_inputs: int = 0

    @property
    def is_proof(self) -> bool:
        return self.method == "worst-case"

    @property
    def state_fits(self) -> bool:
        return math.isfinite(self.state_bound) and self.state_bound < self.state_limit

    @property
    def logits_fit(self) -> bool:
        return math.isfinite(self.logit_bound) and self.logit_bound < self.logit_limit

    @property
    def holds(self) -> bool:
        return self.state_fits and self.logits_fit

    def failures(self) -> list[str]:
        reasons = []
        if not self.state_fits:
            reasons.append(
                f"state values may overflow: bound S = {self.state_bound:.6g} does not fit the state format "
                f"{self.state_format} (limit {self.state_limit:.6g}); widen the state format or raise the "
                f"tolerance to free fractional bits"
            )
        if not self.logits_fit:
            reasons.append(
                f"logits may overflow: bound {self.logit_bound:.6g} does not fit the logit format "
                f"{self.logit_format} (limit {self.logit_limit:.6g}); use fewer fractional bits"
            )
        return reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "is_proof": self.is_proof,
            "calibration_inputs": self.calibration_inputs,
            "injection_bound": _number(self.injection_bound),
            "equilibrium_bound": _number(self.equilibrium_bound),
            "state_bound": _number(self.state_bound),
            "state_format": self.state_format,
            "state_limit": self.state_limit,
            "logit_bound": _number(self.logit_bound),
            "logit_format": self.logit_format,
            "logit_limit": self.logit_limit,
            "accumulator_bits": dict(self.accumulator_bits),
            "holds": self.holds,
        }


@dataclass(frozen=True)
class DisplacementBound:
    """Bound on norm(z_float* - z_hw), the distance from the float equilibrium to the hardware's state.

    The stored operator and injection define W_eff and c_eff; the float
    equilibrium map is (1 / mu(W))-Lipschitz in the injection, so

        norm(z* - z_eff*) <= (norm(W_eff - W, 2) X + norm(c_eff - c)) / mu(W)

    and the hardware state after a converged stop is within
    `rounding_bound` of z_eff* (see `after_stop_bound`). `bound` is the sum,
    over every input of the input format; `measured` is the largest distance
    seen on a data set, when one was given.
    """

    operator_perturbation: float
    injection_perturbation: float
    margin: float
    equilibrium_bound: float
    rounding_bound: float
    measured: float | None = None
    measured_inputs: int = 0

    @property
    def perturbation_bound(self) -> float:
        if not self.margin > 0:
            return math.inf
        return (self.operator_perturbation * self.equilibrium_bound + self.injection_perturbation) / self.margin

    @property
    def bound(self) -> float:
        return self.perturbation_bound + self.rounding_bound

    @property
    def holds(self) -> bool:
        return math.isfinite(self.bound)

    def failures(self) -> list[str]:
        if self.holds:
            return []
        if not self.margin > 0:
            return [f"no displacement bound: the float weight is not monotone (mu(W) = {self.margin:.4g})"]
        return ["no displacement bound: the stored operator does not contract"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "operator_perturbation": self.operator_perturbation,
            "injection_perturbation": self.injection_perturbation,
            "margin": self.margin,
            "equilibrium_bound": _number(self.equilibrium_bound),
            "rounding_bound": _number(self.rounding_bound),
            "bound": _number(self.bound),
            "measured": self.measured,
            "measured_inputs": self.measured_inputs,
            "holds": self.holds,
        }
