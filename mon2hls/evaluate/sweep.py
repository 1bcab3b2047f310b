"""Bit-width sweep: certificate, convergence, accuracy and equilibrium displacement per bit width.

For each bit width the model is quantized, certified (`certify_quantized`) and
solved in float64 with the quantized weights on every evaluation input. The
measured displacement norm(z* - z_q*) between the float and the quantized
equilibrium is compared per input with the perturbation bound

    norm(z* - z_q*) <= (norm(Delta_W, 2) norm(z_q*) + norm(Delta_U x + Delta_b)) / mu(W)

which holds because z_q* is the float network's equilibrium for the injection
c_q + Delta_W z_q*, and the equilibrium map is (1 / mu(W))-Lipschitz in c.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from tqdm import tqdm

from ..analysis import Splitting, margin
from ..certify import Certificate, certify_quantized
from ..data import Dataset
from ..errors import ConfigError, DataError
from ..model import MonModel
from ..quantize import (
    DEFAULT_QUANTIZED_TENSORS,
    MAX_BITS,
    MIN_BITS,
    QuantizationConfig,
    Scheme,
    quantize_model,
)
from ..solve import SolveResult, solve_equilibrium

__all__ = [
    "REFINE_TOL",
    "DisplacementCheck",
    "SweepRow",
    "SweepResult",
    "check_displacement",
    "parse_bits_range",
    "refine_equilibria",
    "sweep",
]

logger = logging.getLogger(__name__)

#: Relative tolerance the equilibria are refined to (warm-started from the evaluation
#: solve) before the displacement is measured, so solver error stays far below the bound.
REFINE_TOL = 1e-9

#: Relative slack when comparing a measured displacement with its bound; it covers
#: the remaining solver error of the refined equilibria.
BOUND_SLACK = 1e-6

_REFINE_MAX_ITER = 5000


def parse_bits_range(text: str) -> list[int]:
    """Parse "LO-HI" (inclusive, LO <= HI) or a single "B" into a list of bit widths from 2 to 16."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    if match is None:
        raise ConfigError(
            f"bit range must be LO-HI or a single bit width with whole numbers from {MIN_BITS} to {MAX_BITS}, "
            f"for example 3-8, not {text!r}"
        )
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    for value in (low, high):
        if not MIN_BITS <= value <= MAX_BITS:
            raise ConfigError(f"bit range {text!r} is invalid: bit widths must be from {MIN_BITS} to {MAX_BITS}")
    if low > high:
        raise ConfigError(f"bit range {text!r} is invalid: LO must not exceed HI (write {high}-{low}), "
                          f"from {MIN_BITS} to {MAX_BITS}")
    return list(range(low, high + 1))


@dataclass(frozen=True)
class DisplacementCheck:
    """Measured equilibrium displacement against its perturbation bound, over the checked inputs.

    Only inputs on which both the float and the quantized solver converged are
    checked, since the bound compares two equilibria. `ratio_max` is the largest
    measured / bound ratio; `holds` is true when every checked input has
    measured <= bound (1 + BOUND_SLACK).
    """

    inputs_checked: int
    measured_max: float
    bound_max: float
    ratio_max: float
    holds: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs_checked": self.inputs_checked,
            "measured_max": self.measured_max,
            "bound_max": self.bound_max,
            "ratio_max": self.ratio_max,
            "holds": self.holds,
        }


@dataclass(frozen=True)
class SweepRow:
    """Figures of one bit width: the certificate and the quantized model's float64 behaviour."""

    bits: int
    certificate: Certificate
    solver_alpha: float
    converged_fraction: float
    diverged_fraction: float
    iterations_median: float
    accuracy: float
    displacement: DisplacementCheck

    @property
    def certified(self) -> bool:
        return self.certificate.certified

    def to_dict(self) -> dict[str, Any]:
        result = self.certificate.to_dict()
        result.update(
            {
                "bits": self.bits,
                "solver_alpha": self.solver_alpha,
                "converged_fraction": self.converged_fraction,
                "diverged_fraction": self.diverged_fraction,
                "iterations_median": self.iterations_median,
                "accuracy": self.accuracy,
                "displacement": self.displacement.to_dict(),
            }
        )
        return result


@dataclass(frozen=True)
class SweepResult:
    """One row per bit width, with the float model's figures on the same inputs."""

    model_source: str
    dataset: str
    split: str
    samples: int
    scheme: Scheme
    tensors: tuple[str, ...]
    splitting: Splitting
    tol: float
    max_iter: int
    float_margin: float
    float_accuracy: float
    float_iterations_median: float
    float_converged_fraction: float
    rows: tuple[SweepRow, ...] = field(default_factory=tuple)

    @property
    def smallest_certified_bits(self) -> int | None:
        """The smallest bit width whose certificate holds, or None when none does."""
        certified = [row.bits for row in self.rows if row.certified]
        return min(certified) if certified else None

    @property
    def certified_threshold_bits(self) -> int | None:
        """The smallest bit width from which every wider one in the sweep is certified, or None.

        It differs from `smallest_certified_bits` when an isolated narrow width
        passes (2-bit codes in {-1, 0, 1} can keep W_q monotone while 3 bits do not).
        """
        threshold = None
        for row in sorted(self.rows, key=lambda row: row.bits, reverse=True):
            if not row.certified:
                break
            threshold = row.bits
        return threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_source,
            "dataset": self.dataset,
            "split": self.split,
            "samples": self.samples,
            "scheme": self.scheme.value,
            "tensors": list(self.tensors),
            "splitting": self.splitting.value,
            "tol": self.tol,
            "max_iter": self.max_iter,
            "margin": self.float_margin,
            "float_accuracy": self.float_accuracy,
            "float_iterations_median": self.float_iterations_median,
            "float_converged_fraction": self.float_converged_fraction,
            "smallest_certified_bits": self.smallest_certified_bits,
            "certified_threshold_bits": self.certified_threshold_bits,
            "rows": [row.to_dict() for row in self.rows],
        }


def _accuracy(model: MonModel, result: SolveResult, labels: np.ndarray) -> float:
    # A diverged input has no prediction and counts as wrong.
    with np.errstate(over="ignore", invalid="ignore"):
        logits = result.z @ model.W_out.T + model.b_out
    predicted = np.argmax(np.nan_to_num(logits, nan=-np.inf), axis=1)
    correct = (predicted == labels) & np.all(np.isfinite(logits), axis=1)
    return float(np.mean(correct))


def refine_equilibria(model: MonModel, X: np.ndarray, result: SolveResult) -> np.ndarray:
    """Refine the converged equilibria of `result` to REFINE_TOL, warm-started from its states.

    Returns a B x n array; rows of inputs that did not converge are NaN.
    """
    refined = np.full_like(result.z, np.nan)
    rows = np.flatnonzero(result.converged)
    if rows.size:
        solution = solve_equilibrium(
            model, X[rows], result.splitting, result.alpha, REFINE_TOL, _REFINE_MAX_ITER, z0=result.z[rows]
        )
        if not solution.converged.all():
            logger.debug("%d inputs did not reach the refinement tolerance", int((~solution.converged).sum()))
        refined[rows] = solution.z
    return refined


def check_displacement(
    model: MonModel,
    quantized: MonModel,
    X: np.ndarray,
    z_float: np.ndarray,
    quantized_result: SolveResult,
    float_margin: float,
) -> DisplacementCheck:
    """Compare norm(z* - z_q*) with (norm(Delta_W, 2) norm(z_q*) + norm(Delta_U x + Delta_b)) / mu(W) per input.

    `z_float` contains the refined float equilibria (NaN rows where the float
    solver did not converge, see `refine_equilibria`). The quantized equilibria
    are refined the same way, so the measured displacement is not dominated by
    the evaluation tolerance.
    """
    z_quantized_all = refine_equilibria(quantized, X, quantized_result)
    rows = np.flatnonzero(np.all(np.isfinite(z_float), axis=1) & np.all(np.isfinite(z_quantized_all), axis=1))
    if rows.size == 0 or float_margin <= 0:
        # Without a positive margin mu(W) there is no bound to check.
        return DisplacementCheck(0, math.nan, math.inf, math.nan, False)

    z_quantized = z_quantized_all[rows]
    measured = np.linalg.norm(z_float[rows] - z_quantized, axis=1)

    delta_W_norm = float(np.linalg.norm(quantized.W - model.W, 2))
    delta_injection = quantized.injection(X[rows]) - model.injection(X[rows])
    bound = delta_W_norm * np.linalg.norm(z_quantized, axis=1) + np.linalg.norm(delta_injection, axis=1)
    bound /= float_margin

    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(bound > 0, measured / bound, np.where(measured > 0, np.inf, 0.0))
    holds = bool(np.all(measured <= bound * (1.0 + BOUND_SLACK)))
    return DisplacementCheck(
        inputs_checked=int(rows.size),
        measured_max=float(measured.max()),
        bound_max=float(bound.max()),
        ratio_max=float(ratios.max()),
        holds=holds,
    )


def _model_inputs(model: MonModel, dataset: Dataset, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    if dataset.features != model.input_features:
        raise DataError(
            f"the model takes {model.input_features} input features, but data set {dataset.name} has "
            f"{dataset.features} per sample; evaluate the model on the data set it was trained on"
        )
    dataset = dataset.head(limit)
    if model.preprocessing.is_identity and not dataset.preprocessing.is_identity:
        logger.warning(
            "the model stores no input preprocessing, so it receives raw %s values (max %d)",
            dataset.name,
            int(dataset.raw.max()),
        )
    return model.preprocessing.apply(dataset.raw), dataset.labels


def sweep(
    model: MonModel,
    bits_range: Iterable[int],
    scheme: Scheme | str,
    dataset: Dataset,
    limit: int | None = None,
    splitting: Splitting | str = Splitting.PR,
    tol: float = 1e-5,
    max_iter: int = 500,
    tensors: Iterable[str] = DEFAULT_QUANTIZED_TENSORS,
    keep_diagonal: bool = False,
    factors: bool = False,
    alpha: float | None = None,
    progress: bool | None = None,
) -> SweepResult:
    """Quantize, certify and evaluate `model` at every bit width of `bits_range`.

    Each quantized model is solved with `splitting` at `alpha`, by default the
    best alpha of the quantized operator W_q, which the certificate reports. When
    no step contracts W_q, the solver runs at the best alpha of the float W and
    the row reports how many inputs converged. The float model is solved at the best
    alpha of W. `progress` shows a bar over bit widths on stderr (default: only
    when stderr is a terminal).
    """
    splitting = Splitting.parse(splitting)
    scheme = Scheme.parse(scheme)
    bits_list = [QuantizationConfig(bits=bits).bits for bits in bits_range]
    if not bits_list:
        raise ConfigError("the bit range is empty; give at least one bit width from 2 to 16")
    tensors = tuple(tensors)
    X, labels = _model_inputs(model, dataset, limit)

    logger.info("solving the float model on %d %s %s inputs", len(labels), dataset.name, dataset.split)
    float_result = solve_equilibrium(model, X, splitting, alpha, tol, max_iter)
    float_accuracy = _accuracy(model, float_result, labels)
    float_margin = margin(model.W)
    z_float = refine_equilibria(model, X, float_result)

    rows = []
    show = sys.stderr.isatty() if progress is None else progress
    for bits in tqdm(bits_list, desc="bit widths", unit="width", disable=not show, file=sys.stderr):
        config = QuantizationConfig(
            bits=bits, scheme=scheme, tensors=tensors, keep_diagonal=keep_diagonal, factors=factors
        )
        certificate = certify_quantized(model, config, splitting, alpha)
        quantized = quantize_model(model, config).model
        solver_alpha = certificate.operator.alpha
        if alpha is None and not certificate.operator.contracts:
            # No step contracts W_q, so the search returns the edge of its range,
            # where the iterate barely moves. The float W's best step gives
            # meaningful convergence and accuracy figures.
            solver_alpha = float_result.alpha
        result = solve_equilibrium(quantized, X, splitting, solver_alpha, tol, max_iter)
        displacement = check_displacement(model, quantized, X, z_float, result, float_margin)
        row = SweepRow(
            bits=bits,
            certificate=certificate,
            solver_alpha=solver_alpha,
            converged_fraction=result.converged_fraction,
            diverged_fraction=float(np.mean(result.diverged)),
            iterations_median=result.iterations_median,
            accuracy=_accuracy(quantized, result, labels),
            displacement=displacement,
        )
        logger.debug(
            "%d bits: mu(W_q) = %.4g, accuracy %.4f, converged %.4f",
            bits,
            certificate.operator.quantized_margin,
            row.accuracy,
            row.converged_fraction,
        )
        rows.append(row)

    return SweepResult(
        model_source=model.source,
        dataset=dataset.name,
        split=dataset.split,
        samples=len(labels),
        scheme=scheme,
        tensors=tensors,
        splitting=splitting,
        tol=float(tol),
        max_iter=int(max_iter),
        float_margin=float_margin,
        float_accuracy=float_accuracy,
        float_iterations_median=float_result.iterations_median,
        float_converged_fraction=float_result.converged_fraction,
        rows=tuple(rows),
    )
