"""Certificates: proofs, computed on the stored operator, that an accelerator is correct."""

from .certificate import Certificate, OperatorCertificate

__all__ = ["Certificate", "OperatorCertificate"]
