"""Spectral analysis of MON operators: margin, Lipschitz constant, contraction factors."""

from .spectral import (
    OperatorAnalysis,
    SplittingAnalysis,
    Splitting,
    analyze_operator,
    best_alpha,
    contraction_factor,
    fb_matrix,
    lipschitz,
    margin,
    pr_matrix,
)

__all__ = [
    "OperatorAnalysis",
    "SplittingAnalysis",
    "Splitting",
    "analyze_operator",
    "best_alpha",
    "contraction_factor",
    "fb_matrix",
    "lipschitz",
    "margin",
    "pr_matrix",
]
