"""A trainable fully connected MON in PyTorch, with an implicit backward pass.

The network maps x to the equilibrium z* = ReLU(W z* + U x + b) and to the
logits W_out z* + b_out, with the MON parameterization

    W = (1 - m) I - A^T A + B - B^T        (A is r x n, B is n x n)

so that sym(I - W) >= m I. The margin m is either a fixed constant or learned
as m = softplus(m_raw) + 1e-4.

Training differentiates through the equilibrium implicitly, as in Winston and
Kolter (NeurIPS 2020). The forward solve runs without autograd; one step
z = ReLU(W z* + c) is then taken with autograd attached, and a hook on its
output replaces the incoming gradient g by g' = g + W^T w, where w solves the
adjoint fixed point

    w = P_S(W^T w + g)        (P_S keeps the units active at z*, zeroes the rest)

with the same splitting (FB or PR) as the forward pass. The adjoint operator
has the margin and Lipschitz constant of the forward one, so it converges
whenever the forward solve does.

With quantization-aware training, W, U and b are replaced in the forward pass
by the values `mon2hls.quantize.quantize_tensor` returns, and the rounding is
skipped in the backward pass (straight-through estimator). The equilibrium is
solved through the quantized operator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..analysis import Splitting
from ..errors import ConfigError
from ..quantize import Scheme, check_bits, quantize_tensor

__all__ = [
    "MARGIN_FLOOR",
    "SolverConfig",
    "SolveStats",
    "QuantizationSetting",
    "MonNetwork",
    "fake_quantize",
    "solve_equilibrium",
]

#: Smallest learned margin: m = softplus(m_raw) + MARGIN_FLOOR.
MARGIN_FLOOR = 1e-4


@dataclass(frozen=True)
class SolverConfig:
    """Splitting method, step and stopping rule of the equilibrium solves.

    A solve stops when norm(z_(k+1) - z_k) / norm(z_(k+1)) < tolerance over the
    whole batch, or after `max_iterations` steps.
    """

    splitting: Splitting = Splitting.PR
    alpha: float = 1.0
    tolerance: float = 1e-4
    max_iterations: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "splitting", Splitting.parse(self.splitting))
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigError(f"splitting step alpha must be a positive number, not {self.alpha!r}")
        if not (self.tolerance > 0):
            raise ConfigError(f"solver tolerance must be positive, not {self.tolerance!r}")
        if self.max_iterations < 1:
            raise ConfigError(f"maximum iteration count must be at least 1, not {self.max_iterations!r}")


@dataclass(frozen=True)
class QuantizationSetting:
    """Bit width and scheme of the weights W, U and b in the forward pass."""

    bits: int
    scheme: Scheme = Scheme.MAX_ABS

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", check_bits(self.bits))
        object.__setattr__(self, "scheme", Scheme.parse(self.scheme))


@dataclass
class SolveStats:
    """Iterations of the last forward and adjoint solves (mutable running record)."""

    forward_iterations: int = 0
    backward_iterations: int = 0
    forward_converged: bool = True


class _StraightThroughQuantize(torch.autograd.Function):
    """Forward: the values of `quantize_tensor`. Backward: the identity (straight-through estimator)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, bits: int, scheme: Scheme) -> torch.Tensor:  # type: ignore[override]
        array = tensor.detach().cpu().numpy().astype(np.float64)
        values = quantize_tensor(array, bits, scheme).values
        return torch.from_numpy(np.ascontiguousarray(values)).to(dtype=tensor.dtype, device=tensor.device)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad, None, None


def fake_quantize(tensor: torch.Tensor, setting: QuantizationSetting) -> torch.Tensor:
    """Quantize and dequantize `tensor` exactly as `quantize_tensor` does, with a straight-through gradient.

    The rounding runs in numpy through `quantize_tensor` itself, so the
    quantized operator seen in training is, in float64, the operator that the
    certificate is computed on.
    """
    return _StraightThroughQuantize.apply(tensor, setting.bits, setting.scheme)


def solve_equilibrium(
    M: torch.Tensor,
    c: torch.Tensor,
    solver: SolverConfig,
    prox: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, int, bool]:
    """Solve z = prox(M z + c) for a batch (rows of `c`) by operator splitting.

    FB:  z <- prox((1 - alpha) z + alpha (M z + c)).
    PR:  with V = (I + alpha (I - M))^-1, u_half = 2 z - u, z_half = V (u_half + alpha c),
         u = 2 z_half - u_half, z = prox(u).
    `prox` is ReLU for the forward equilibrium and the projection onto the
    active units for the adjoint. Returns (z, iterations, converged).
    """
    alpha = solver.alpha
    z = torch.zeros_like(c)
    if solver.splitting is Splitting.PR:
        n = M.shape[0]
        eye = torch.eye(n, dtype=M.dtype, device=M.device)
        V_T = torch.linalg.inv(eye + alpha * (eye - M)).T
        u = torch.zeros_like(c)

    for iteration in range(1, solver.max_iterations + 1):
        if solver.splitting is Splitting.FB:
            z_next = prox((1.0 - alpha) * z + alpha * (z @ M.T + c))
        else:
            u_half = 2.0 * z - u
            z_half = (u_half + alpha * c) @ V_T
            u = 2.0 * z_half - u_half
            z_next = prox(u)

        change = torch.linalg.vector_norm(z_next - z)
        scale = torch.linalg.vector_norm(z_next)
        z = z_next
        if change <= solver.tolerance * scale or (scale == 0 and change == 0):
            return z, iteration, True
    return z, solver.max_iterations, False


def _inverse_softplus(value: float) -> float:
    """Return x with softplus(x) = value, for value > 0."""
    return value + math.log(-math.expm1(-value))


class MonNetwork(nn.Module):
    """Fully connected MON: input_features -> hidden_units (equilibrium) -> classes.

    Parameters are float64, so the quantized operator in the forward pass is
    exactly the float64 operator that `quantize_tensor` and the certificate see.
    """

    def __init__(
        self,
        input_features: int,
        hidden_units: int,
        classes: int,
        rank: int | None = None,
        margin: float = 1.0,
        learn_margin: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        rank = hidden_units if rank is None else rank
        for name, value in (("input features", input_features), ("hidden units", hidden_units),
                            ("classes", classes), ("rank of A", rank)):
            if value < 1:
                raise ConfigError(f"{name} must be a positive whole number, not {value!r}")
        if not (math.isfinite(margin) and margin > MARGIN_FLOOR):
            raise ConfigError(f"margin m must be a number above {MARGIN_FLOOR}, not {margin!r}")

        self.input_features = input_features
        self.hidden_units = hidden_units
        self.classes = classes
        self.rank = rank
        self.learn_margin = learn_margin

        # Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), the nn.Linear default, drawn from one generator
        # so that a seed fixes the initial weights.
        def uniform(*shape: int, fan_in: int) -> nn.Parameter:
            bound = 1.0 / math.sqrt(fan_in)
            values = torch.empty(*shape, dtype=torch.float64).uniform_(-bound, bound, generator=generator)
            return nn.Parameter(values)

        self.U = uniform(hidden_units, input_features, fan_in=input_features)
        self.b = uniform(hidden_units, fan_in=input_features)
        self.A = uniform(rank, hidden_units, fan_in=hidden_units)
        self.B = uniform(hidden_units, hidden_units, fan_in=hidden_units)
        self.W_out = uniform(classes, hidden_units, fan_in=hidden_units)
        self.b_out = uniform(classes, fan_in=hidden_units)
        if learn_margin:
            self.m_raw = nn.Parameter(torch.tensor(_inverse_softplus(margin - MARGIN_FLOOR), dtype=torch.float64))
        else:
            self.register_buffer("m_fixed", torch.tensor(float(margin), dtype=torch.float64))

        self.solver = SolverConfig()
        self.quantization: QuantizationSetting | None = None
        self.stats = SolveStats()

    def margin(self) -> torch.Tensor:
        """Compute the margin parameter m as a scalar tensor."""
        if self.learn_margin:
            return nn.functional.softplus(self.m_raw) + MARGIN_FLOOR
        return self.m_fixed

    @torch.no_grad()
    def set_margin(self, value: float) -> None:
        """Set m to `value` (> MARGIN_FLOOR), through m_raw when the margin is learned."""
        if self.learn_margin:
            self.m_raw.fill_(_inverse_softplus(value - MARGIN_FLOOR))
        else:
            self.m_fixed.fill_(value)

    def weight(self) -> torch.Tensor:
        """Compose W = (1 - m) I - A^T A + B - B^T."""
        eye = torch.eye(self.hidden_units, dtype=self.A.dtype, device=self.A.device)
        return (1.0 - self.margin()) * eye - self.A.T @ self.A + self.B - self.B.T

    def operator(self, quantized: bool | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (W, U, b) as the forward pass uses them: quantized when QAT is on, unless `quantized` overrides it."""
        W = self.weight()
        use_quantized = self.quantization is not None if quantized is None else quantized
        if not use_quantized:
            return W, self.U, self.b
        if self.quantization is None:
            raise ConfigError("no quantization setting is configured, so there is no quantized operator")
        setting = self.quantization
        return fake_quantize(W, setting), fake_quantize(self.U, setting), fake_quantize(self.b, setting)

    def forward(self, x: torch.Tensor, quantized: bool | None = None) -> torch.Tensor:
        W, U, b = self.operator(quantized)
        c = x @ U.T + b

        with torch.no_grad():
            z_star, iterations, converged = solve_equilibrium(W.detach(), c.detach(), self.solver, torch.relu)
        self.stats.forward_iterations = iterations
        self.stats.forward_converged = converged

        # One step attached to the graph; the hook turns its gradient into the implicit one.
        z = torch.relu(z_star @ W.T + c)
        if z.requires_grad:
            z.register_hook(self._adjoint_hook(W.detach(), z.detach() > 0))
        return z @ self.W_out.T + self.b_out

    def _adjoint_hook(self, W: torch.Tensor, active: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        mask = active.to(W.dtype)

        def hook(grad: torch.Tensor) -> torch.Tensor:
            # w = P_S(W^T w + g); rows are samples, so W^T w is w @ W.
            w, iterations, _ = solve_equilibrium(W.T, grad, self.solver, lambda v: v * mask)
            self.stats.backward_iterations = iterations
            return grad + w @ W

        return hook

    def factors_numpy(self) -> dict[str, np.ndarray | float]:
        """Return the float64 weights and factors as numpy arrays (W composed from A, B and m)."""
        with torch.no_grad():
            return {
                "W": self.weight().numpy().copy(),
                "U": self.U.numpy().copy(),
                "b": self.b.numpy().copy(),
                "W_out": self.W_out.numpy().copy(),
                "b_out": self.b_out.numpy().copy(),
                "A": self.A.numpy().copy(),
                "B": self.B.numpy().copy(),
                "m": float(self.margin().detach()),
            }
