"""Float64 equilibrium solvers (forward-backward and Peaceman-Rachford splitting) for batches of inputs."""

from .equilibrium import DIVERGENCE_LIMIT, SolveResult, predict, solve_equilibrium, solve_injection

__all__ = ["DIVERGENCE_LIMIT", "SolveResult", "predict", "solve_equilibrium", "solve_injection"]
