"""The certificate of a quantized MON and, later, of its fixed-point datapath.

A certificate has parts. The operator part (always present) states that the
quantized weight is still monotone and that the chosen splitting contracts.
The fixed-point parts (rounding ball, overflow, displacement) are added by the
datapath stage; a part that is absent was not asked for and does not count.
`certified` is true only when every present part holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

__all__ = ["CertificatePart", "OperatorCertificate", "Certificate"]


class CertificatePart(Protocol):
    """One part of a certificate: a verdict, the reasons it fails, and its JSON figures."""

    @property
    def holds(self) -> bool: ...

    def failures(self) -> list[str]: ...

    def to_dict(self) -> dict[str, Any]: ...


def _json_number(value: float) -> float | None:
    # JSON has no Inf or NaN: a factor that does not exist is written as null.
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class OperatorCertificate:
    """Monotonicity of W_q and contraction of the splitting on the stored operator.

    Weyl's inequality gives mu(W_q) >= mu(W) - norm(Delta_W, 2), so
    norm(Delta_W, 2) < mu(W) certifies monotonicity a priori; `quantized_margin`
    is mu(W_q) computed exactly, which may be positive when the a-priori test
    fails. `contraction` is the exact factor of the splitting step on W_q.
    """

    bits: int
    scheme: str
    weight_perturbation_norm: float
    margin: float
    quantized_margin: float
    splitting: str
    alpha: float
    contraction: float

    @property
    def certified_a_priori(self) -> bool:
        return self.weight_perturbation_norm < self.margin

    @property
    def monotone(self) -> bool:
        return self.quantized_margin > 0

    @property
    def contracts(self) -> bool:
        return self.contraction < 1.0

    @property
    def holds(self) -> bool:
        return self.monotone and self.contracts

    def failures(self) -> list[str]:
        reasons = []
        if not self.monotone:
            reasons.append(
                f"the quantized weight is not monotone: mu(W_q) = {self.quantized_margin:.4g} <= 0 "
                f"at {self.bits} bits ({self.scheme})"
            )
        if not self.contracts:
            reasons.append(
                f"{self.splitting.upper()} splitting with alpha = {self.alpha:.4g} does not contract: "
                f"factor {self.contraction:.6g} >= 1"
            )
        return reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "bits": self.bits,
            "scheme": self.scheme,
            "weight_perturbation_norm": self.weight_perturbation_norm,
            "margin": self.margin,
            "quantized_margin": self.quantized_margin,
            "certified_a_priori": self.certified_a_priori,
            "splitting": self.splitting,
            "alpha": self.alpha,
            "contraction": _json_number(self.contraction),
        }


@dataclass(frozen=True)
class Certificate:
    """All parts of a certificate. Fixed-point parts are None until the datapath stage adds them."""

    operator: OperatorCertificate
    rounding: CertificatePart | None = None
    overflow: CertificatePart | None = None
    displacement: CertificatePart | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def parts(self) -> list[tuple[str, CertificatePart]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)
                if f.name != "notes" and getattr(self, f.name) is not None]

    @property
    def certified(self) -> bool:
        return all(part.holds for _, part in self.parts())

    def failures(self) -> list[str]:
        return [reason for _, part in self.parts() for reason in part.failures()]

    def to_dict(self) -> dict[str, Any]:
        """Flatten to the JSON interface: the operator keys at the top, each other part under its name."""
        result = self.operator.to_dict()
        for name, part in self.parts():
            if name != "operator":
                result[name] = part.to_dict()
        result["certified"] = self.certified
        if self.notes:
            result["notes"] = list(self.notes)
        return result
