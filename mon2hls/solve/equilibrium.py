"""Batched float64 solvers for the equilibrium z* = ReLU(W z* + c) of a MON.

A batch is a B x d array of input features, one input per row. States are
B x n arrays, and every step is one matrix product on the whole batch. Rows
that have met the tolerance (or diverged) leave the batch, so the cost of a
step falls as inputs converge.

Stopping rule (per input): the relative step

    norm(z_(k+1) - z_k, 2) / max(norm(z_(k+1), 2), tiny) <= tol

where tiny is the smallest positive float64, so an all-zero equilibrium
stops as soon as two iterates agree exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..analysis import Splitting, best_alpha, fb_matrix, pr_matrix
from ..errors import ConfigError
from ..model import MonModel

__all__ = ["DIVERGENCE_LIMIT", "SolveResult", "solve_equilibrium", "solve_injection", "predict"]

logger = logging.getLogger(__name__)

#: An input diverges when its state grows past this multiple of (1 + norm(c)),
#: or stops being finite. For a monotone W, norm(z*) <= norm(c) / mu, so only a
#: margin below 1e-8 could put a true equilibrium beyond the limit.
DIVERGENCE_LIMIT = 1e8

_TINY = np.finfo(np.float64).tiny


@dataclass(frozen=True, eq=False)
class SolveResult:
    """Equilibria of a batch and how each input's iteration ended.

    `z` is B x n. `iterations[i]` counts the steps input i took (max_iter when
    it did not converge). `step` is the last relative step of each input, the
    quantity the stopping rule compares with the tolerance. `residual` is the
    relative fixed-point residual norm(z - ReLU(W z + c)) / max(norm(z), tiny)
    of the returned state. `diverged` marks inputs whose state became
    non-finite or exceeded the divergence limit; they are not converged.
    """

    z: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    diverged: np.ndarray
    step: np.ndarray
    residual: np.ndarray
    splitting: Splitting
    alpha: float
    tol: float
    max_iter: int

    def __len__(self) -> int:
        return int(self.z.shape[0])

    @property
    def converged_fraction(self) -> float:
        return float(np.mean(self.converged)) if len(self) else 0.0

    @property
    def iterations_median(self) -> float:
        return float(np.median(self.iterations)) if len(self) else 0.0


def _check_options(tol: float, max_iter: int) -> None:
    if not (np.isfinite(tol) and tol > 0):
        raise ConfigError(f"solver tolerance must be a positive number, not {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ConfigError(f"maximum iteration count must be a positive whole number, not {max_iter!r}")


def _row_norms(X: np.ndarray) -> np.ndarray:
    # einsum avoids the squared temporary that np.linalg.norm(axis=1) allocates.
    return np.sqrt(np.einsum("ij,ij->i", X, X))


def _relative_norms(difference: np.ndarray, state: np.ndarray) -> np.ndarray:
    return _row_norms(difference) / np.maximum(_row_norms(state), _TINY)


def solve_injection(
    W: np.ndarray,
    C: np.ndarray,
    splitting: Splitting | str = Splitting.PR,
    alpha: float | None = None,
    tol: float = 1e-5,
    max_iter: int = 500,
    z0: np.ndarray | None = None,
) -> SolveResult:
    """Solve z = ReLU(W z + c) for every row c of the B x n injection C.

    FB:  z <- ReLU((1 - alpha) z + alpha (W z + c)).
    PR:  with V = (I + alpha (I - W))^-1 and u_0 = z_0,
         u_half = 2 z - u, z_half = V (u_half + alpha c), u = 2 z_half - u_half, z = ReLU(u).
    `alpha` defaults to the step that minimizes the exact contraction factor of W
    (`mon2hls.analysis.best_alpha`). `z0` (B x n or n) defaults to zero.
    """
    splitting = Splitting.parse(splitting)
    _check_options(tol, max_iter)
    W = np.asarray(W, dtype=np.float64)
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    n = W.shape[0]
    if C.shape[1] != n:
        raise ConfigError(f"injection has {C.shape[1]} columns, but W has {n} hidden units")
    if alpha is None:
        alpha, factor = best_alpha(W, splitting)
        logger.debug("%s step alpha = %.6g (contraction factor %.6g)", splitting.value, alpha, factor)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"splitting step alpha must be a positive number, not {alpha!r}")

    batch = C.shape[0]
    Z = np.zeros((batch, n)) if z0 is None else np.broadcast_to(np.asarray(z0, dtype=np.float64), (batch, n)).copy()
    if splitting is Splitting.FB:
        # Row-vector form: z <- ReLU(z M^T + alpha c) with M = (1 - alpha) I + alpha W.
        operator_T = fb_matrix(W, alpha).T
    else:
        try:
            operator_T = pr_matrix(W, alpha).T
        except np.linalg.LinAlgError:
            raise ConfigError(
                f"I + alpha (I - W) is singular at alpha = {alpha!r}, so Peaceman-Rachford cannot run; "
                "choose another alpha or use FB splitting"
            ) from None

    iterations = np.full(batch, max_iter, dtype=np.int64)
    converged = np.zeros(batch, dtype=bool)
    diverged = np.zeros(batch, dtype=bool)
    step = np.full(batch, np.inf)
    limits = DIVERGENCE_LIMIT * (1.0 + np.linalg.norm(C, axis=1))

    # Compact copies of the rows still iterating. Finished rows are written back to Z.
    rows = np.arange(batch)
    z, u, limit = Z.copy(), Z.copy(), limits
    alpha_c = alpha * C
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, max_iter + 1):
            if splitting is Splitting.FB:
                z_next = np.maximum(z @ operator_T + alpha_c, 0.0)
            else:
                u_half = 2.0 * z - u
                z_half = (u_half + alpha_c) @ operator_T
                u = 2.0 * z_half - u_half
                z_next = np.maximum(u, 0.0)

            size = _row_norms(z_next)
            relative_step = _row_norms(z_next - z) / np.maximum(size, _TINY)
            bad = ~np.isfinite(relative_step) | ~(size <= limit)
            done = ~bad & (relative_step <= tol)
            leaving = done | bad
            z = z_next
            if np.any(leaving):
                finished = rows[leaving]
                Z[finished] = z[leaving]
                step[finished] = relative_step[leaving]
                iterations[finished] = k
                converged[rows[done]] = True
                diverged[rows[bad]] = True
                keep = ~leaving
                rows, z, u, limit, alpha_c = rows[keep], z[keep], u[keep], limit[keep], alpha_c[keep]
                relative_step = relative_step[keep]
                if rows.size == 0:
                    break

    # Rows still here ran out of iterations.
    Z[rows] = z
    step[rows] = relative_step

    if np.any(diverged):
        logger.debug("%d of %d inputs diverged", int(diverged.sum()), batch)
    with np.errstate(over="ignore", invalid="ignore"):
        residual = _relative_norms(Z - np.maximum(Z @ W.T + C, 0.0), Z)
    return SolveResult(
        z=Z,
        iterations=iterations,
        converged=converged,
        diverged=diverged,
        step=step,
        residual=residual,
        splitting=splitting,
        alpha=float(alpha),
        tol=float(tol),
        max_iter=int(max_iter),
    )


def _as_features(model: MonModel, X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if X.ndim != 2 or X.shape[1] != model.input_features:
        raise ConfigError(
            f"inputs have shape {np.shape(X)}, but the model takes {model.input_features} features per input"
        )
    return X


def solve_equilibrium(
    model: MonModel,
    X: np.ndarray,
    splitting: Splitting | str = Splitting.PR,
    alpha: float | None = None,
    tol: float = 1e-5,
    max_iter: int = 500,
    z0: np.ndarray | None = None,
) -> SolveResult:
    """Solve the equilibrium of `model` for each row of the B x d feature batch X.

    X contains model features (after preprocessing). See `solve_injection` for the
    splitting steps and the module docstring for the stopping rule.
    """
    X = _as_features(model, X)
    return solve_injection(model.W, model.injection(X), splitting, alpha, tol, max_iter, z0)


def predict(
    model: MonModel,
    X: np.ndarray,
    splitting: Splitting | str = Splitting.PR,
    alpha: float | None = None,
    tol: float = 1e-5,
    max_iter: int = 500,
) -> tuple[np.ndarray, SolveResult]:
    """Return the logits y = W_out z* + b_out (B x k) of a feature batch and its solve result."""
    result = solve_equilibrium(model, X, splitting, alpha, tol, max_iter)
    with np.errstate(over="ignore", invalid="ignore"):
        logits = result.z @ model.W_out.T + model.b_out
    return logits, result
