"""Certificates: proofs, computed on the stored operator, that an accelerator is correct."""

from .certificate import Certificate, OperatorCertificate
from .operator import certify_operator, certify_quantized

__all__ = ["Certificate", "OperatorCertificate", "certify_operator", "certify_quantized"]
