"""The operator part of a certificate, computed on the quantized weight."""

from __future__ import annotations

import logging

import numpy as np

from ..analysis import Splitting, best_alpha, contraction_factor, margin
from ..errors import ConfigError
from ..model import MonModel
from ..quantize import QuantizationConfig, QuantizedModel, quantize_model
from .certificate import Certificate, OperatorCertificate

__all__ = ["certify_operator", "certify_quantized"]

logger = logging.getLogger(__name__)


def certify_operator(
    quantized: QuantizedModel, splitting: Splitting | str, alpha: float | None = None
) -> OperatorCertificate:
    """Compute the operator certificate of a quantized model.

    With Delta_W = W_q - W: weight_perturbation_norm = norm(Delta_W, 2),
    margin = mu(W), quantized_margin = mu(W_q), where
    mu(X) = lambda_min((I - X + (I - X)^T) / 2). The contraction factor is the
    exact factor of one splitting step on W_q: norm((1 - alpha) I + alpha W_q, 2)
    for FB and norm(2 (I + alpha (I - W_q))^-1 - I, 2) for PR. Without `alpha`
    the step that minimizes that factor on W_q is used.
    """
    splitting = Splitting.parse(splitting)
    W = quantized.original.W
    W_q = quantized.model.W

    if alpha is None:
        alpha, contraction = best_alpha(W_q, splitting)
        logger.debug("best %s step on W_q: alpha = %.6g, factor %.6g", splitting.value, alpha, contraction)
    else:
        if not (np.isfinite(alpha) and alpha > 0):
            raise ConfigError(f"splitting step alpha must be a positive number, not {alpha!r}")
        contraction = contraction_factor(W_q, splitting, alpha)

    return OperatorCertificate(
        bits=quantized.config.bits,
        scheme=quantized.config.scheme.value,
        weight_perturbation_norm=float(np.linalg.norm(W_q - W, 2)),
        margin=margin(W),
        quantized_margin=margin(W_q),
        splitting=splitting.value,
        alpha=float(alpha),
        contraction=float(contraction),
    )


def certify_quantized(
    model: MonModel, config: QuantizationConfig, splitting: Splitting | str, alpha: float | None = None
) -> Certificate:
    """Quantize `model` with `config` and return its certificate (operator part only).

    The fixed-point parts (rounding, overflow, displacement) are added by the
    datapath stage; see `Certificate`.
    """
    quantized = quantize_model(model, config)
    return Certificate(operator=certify_operator(quantized, splitting, alpha))
