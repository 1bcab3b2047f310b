"""The fixed-point datapath of a MON accelerator: stored constants, formats and certificate.

`design_datapath` turns a float model and `DatapathOptions` into a
`DatapathDesign`, the single description that the golden model, the HLS
back end and the Verilog back end all implement. The arithmetic it fixes is
written down in docs/datapath.md; section numbers below refer to that page.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis import Splitting, best_alpha, fb_matrix, margin, pr_matrix
from ..certify.certificate import Certificate, OperatorCertificate
from ..errors import ConfigError
from ..model import MonModel
from ..quantize import MAX_BITS, MIN_BITS, Scheme, check_bits
from .certificate import (
    DisplacementBound,
    OverflowProof,
    RoundingBall,
    after_stop_bound,
    iteration_bound,
    rounding_step_error,
)
from .formats import FixedFormat, Overflow, Rounding, shift_round
from .stored import Accumulator, StoredMatrix, signed_width, size_accumulator, store_matrix

__all__ = [
    "MAX_ITERATIONS",
    "MAX_STATE_WIDTH",
    "LOGIT_WIDTH",
    "STREAM_WIDTH",
    "RangeMode",
    "DatapathOptions",
    "DatapathDesign",
    "design_datapath",
    "input_format_for",
    "encode_inputs",
    "effective_weight",
    "smallest_certified_bits",
    "smallest_tolerance",
]

logger = logging.getLogger(__name__)

#: The status word reports the iteration count in 16 bits.
MAX_ITERATIONS = 65535
#: Widest state format the back ends implement.
MAX_STATE_WIDTH = 32
#: Logits are 32-bit words on the output stream.
LOGIT_WIDTH = 32
#: Width of the AXI4-Stream data bus.
STREAM_WIDTH = 32
#: Default total width of an input format chosen from --input-range.
DEFAULT_INPUT_WIDTH = 16

#: Largest raw value of each data set whose inputs are whole numbers from 0:
#: MNIST pixels 0 to 255, scikit-learn digits pixels 0 to 16.
DATASET_RAW_MAX = {"mnist": 255, "digits": 16}


class RangeMode(enum.Enum):
    """Source of the bound that sets the state's integer bits."""

    WORST_CASE = "worst-case"  #: a proof over every input of the input format
    DATA = "data"  #: the largest value seen on calibration inputs (not a proof)

    @classmethod
    def parse(cls, value: "str | RangeMode") -> "RangeMode":
        if isinstance(value, RangeMode):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ConfigError(f"unknown range mode {value!r}; choose one of: {choices}") from None


@dataclass(frozen=True)
class DatapathOptions:
    """Choices that fix a datapath. Everything else follows from the model.

    `alpha` defaults to the step that minimizes the contraction factor of the
    float W for the chosen splitting; the certificate is then computed on the
    stored operator. `max_iterations` defaults to the certified iteration
    bound (capped at 65535). `state_format` and `input_format` default to the
    formats of section 6 and section 3. With `range_mode` "data",
    `calibration` holds input codes (B x d) whose largest state values set the
    state's integer bits.
    """

    bits: int
    scheme: Scheme = Scheme.MAX_ABS
    splitting: Splitting = Splitting.PR
    alpha: float | None = None
    tolerance: float = 2.0**-5
    max_iterations: int | None = None
    state_format: FixedFormat | None = None
    input_format: FixedFormat | None = None
    input_range: tuple[float, float] | None = None
    range_mode: RangeMode = RangeMode.WORST_CASE
    calibration: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "bits", check_bits(self.bits))
        set_(self, "scheme", Scheme.parse(self.scheme))
        set_(self, "splitting", Splitting.parse(self.splitting))
        set_(self, "range_mode", RangeMode.parse(self.range_mode))
        if self.alpha is not None and not (np.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigError(f"splitting step alpha must be a positive number, not {self.alpha!r}")
        if not (isinstance(self.tolerance, (int, float)) and np.isfinite(self.tolerance) and self.tolerance > 0):
            raise ConfigError(f"tolerance must be a positive number, not {self.tolerance!r}")
        if self.max_iterations is not None:
            value = self.max_iterations
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_ITERATIONS:
                raise ConfigError(
                    f"max_iterations must be a whole number from 1 to {MAX_ITERATIONS}, not {value!r}"
                )
            set_(self, "max_iterations", int(value))
        if self.input_range is not None:
            set_(self, "input_range", _check_range(self.input_range))
        if self.state_format is not None:
            fmt = self.state_format
            if not fmt.signed or fmt.width > MAX_STATE_WIDTH:
                raise ConfigError(
                    f"the state format must be signed and at most {MAX_STATE_WIDTH} bits wide, not {fmt}"
                )
        if self.range_mode is RangeMode.DATA:
            if self.calibration is None or np.size(self.calibration) == 0:
                raise ConfigError("range mode 'data' needs calibration inputs; pass a data set or use 'worst-case'")
            calibration = np.asarray(self.calibration)
            if calibration.ndim != 2:
                raise ConfigError(
                    f"calibration inputs must be a B x d array of input codes, not shape {calibration.shape}"
                )


def _check_range(value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"input range must be two numbers LO HI, not {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"input range needs finite LO < HI, not {lo!r} {hi!r}")
    return lo, hi


@dataclass(frozen=True, eq=False)
class DatapathDesign:
    """Everything a back end needs to build the accelerator, and its certificate.

    Matrices are `StoredMatrix` objects (codes, multipliers, shift). Biases
    are codes: `bias_state` in the state format (alpha b', section 2),
    `bias_logit` in the logit format. `tolerance_lsb` = floor(tau * 2^Fs).
    Accumulator widths are for the injection (alpha U' x), the operator
    (M z or V w) and the output layer (W_out z).
    """

    hidden_units: int
    input_features: int
    classes: int
    splitting: Splitting
    alpha: float
    bits: int
    scheme: Scheme
    input_format: FixedFormat
    state_format: FixedFormat
    logit_format: FixedFormat
    injection: StoredMatrix
    operator: StoredMatrix
    output: StoredMatrix
    bias_state: np.ndarray
    bias_logit: np.ndarray
    injection_accumulator: Accumulator
    operator_accumulator: Accumulator
    output_accumulator: Accumulator
    tolerance: float
    tolerance_lsb: int
    max_iterations: int
    inputs_per_beat: int
    input_beats: int
    output_beats: int
    certificate: Certificate
    model_sha256: str | None
    model_source: str
    options: DatapathOptions

    @property
    def certified(self) -> bool:
        return self.certificate.certified

    @property
    def frac_bits(self) -> int:
        """Fs, the fractional bits of the state (and of the logits)."""
        return self.state_format.frac_bits

    @property
    def rounding(self) -> RoundingBall:
        return self.certificate.rounding  # type: ignore[return-value]

    @property
    def overflow(self) -> OverflowProof:
        return self.certificate.overflow  # type: ignore[return-value]

    @property
    def iteration_matrix(self) -> np.ndarray:
        """T in real units: FB I + diag(mult 2^-shift) Qg; PR 2 diag(mult 2^-shift) Qv - I."""
        return _iteration_matrix(self.operator.effective(), self.splitting)

    @classmethod
    def from_model(cls, model: MonModel, options: DatapathOptions) -> "DatapathDesign":
        return design_datapath(model, options)

    def rebuild(self, model: MonModel) -> "DatapathDesign":
        """Design again from `model` with the same options; the result is identical for the same model."""
        return design_datapath(model, self.options)

    def to_dict(self) -> dict[str, Any]:
        """Describe the design for report.json (no weight codes, which live in the generated sources)."""
        return {
            "model": {"source": self.model_source, "sha256": self.model_sha256},
            "hidden_units": self.hidden_units,
            "input_features": self.input_features,
            "classes": self.classes,
            "splitting": self.splitting.value,
            "alpha": self.alpha,
            "bits": self.bits,
            "scheme": self.scheme.value,
            "range_mode": self.options.range_mode.value,
            "formats": {
                "input": _format_dict(self.input_format),
                "state": _format_dict(self.state_format),
                "logit": _format_dict(self.logit_format),
            },
            "matrices": {m.name: m.to_dict() for m in (self.injection, self.operator, self.output)},
            "accumulators": {
                "injection": self.injection_accumulator.to_dict(),
                "operator": self.operator_accumulator.to_dict(),
                "output": self.output_accumulator.to_dict(),
            },
            "tolerance": self.tolerance,
            "tolerance_lsb": self.tolerance_lsb,
            "max_iterations": self.max_iterations,
            "stream": {
                "inputs_per_beat": self.inputs_per_beat,
                "input_beats": self.input_beats,
                "output_beats": self.output_beats,
            },
            "certificate": self.certificate.to_dict(),
        }


def _format_dict(fmt: FixedFormat) -> dict[str, Any]:
    return {
        "width": fmt.width,
        "integer_bits": fmt.integer_bits,
        "frac_bits": fmt.frac_bits,
        "signed": fmt.signed,
        "c_type": fmt.c_type,
    }


def input_format_for(model: MonModel, input_range: tuple[float, float] | None = None) -> FixedFormat:
    """Choose the input format: unsigned integers for a known data set's raw values, else from `input_range`.

    A model of a data set in DATASET_RAW_MAX takes that data set's raw integer
    values, so its inputs are `ap_uint<B>` with the fewest bits B that hold
    the largest one (`ap_uint<8>` for MNIST pixels, `ap_uint<5>` for digits);
    its preprocessing is folded into U and b. Otherwise the range LO HI gives
    a 16-bit format (wider only when the integer part needs more): unsigned
    when LO >= 0, with the fewest integer bits that hold HI (and LO), and the
    remaining bits fractional.
    """
    if input_range is None:
        raw_max = DATASET_RAW_MAX.get((model.dataset or "").lower())
        if raw_max is not None:
            bits = raw_max.bit_length()
            return FixedFormat(bits, bits, signed=False)
        known = ", ".join(DATASET_RAW_MAX)
        about = (
            "the model does not name the data set it was trained on"
            if not model.dataset
            else f"the raw value range of data set {model.dataset!r} is not known (known: {known})"
        )
        raise ConfigError(
            f"cannot choose an input format: {about}; give the range of the raw inputs with "
            "--input-range LO HI"
        )

    lo, hi = _check_range(input_range)
    if lo >= 0:
        integer_bits = _fewest_bits(lambda i: 2.0**i > hi)
        signed = False
    else:
        integer_bits = _fewest_bits(lambda i: 2.0 ** (i - 1) > hi and -(2.0 ** (i - 1)) <= lo)
        signed = True
    width = max(DEFAULT_INPUT_WIDTH, integer_bits, 2 if signed else 1)
    if width > STREAM_WIDTH:
        raise ConfigError(
            f"input range {lo!r} {hi!r} needs {width} integer bits, more than the {STREAM_WIDTH}-bit stream "
            f"holds; rescale the inputs"
        )
    return FixedFormat(width, integer_bits, signed=signed)


def _fewest_bits(fits: Any, start: int = -64) -> int:
    bits = start
    while not fits(bits):
        bits += 1
    return bits


def encode_inputs(design: DatapathDesign, raw: Any) -> np.ndarray:
    """Convert raw inputs (B x d reals) to input codes as the host does: AP_RND, then AP_SAT."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 1:
        raw = raw[None, :]
    if raw.ndim != 2 or raw.shape[1] != design.input_features:
        raise ConfigError(
            f"inputs must be a B x {design.input_features} array, not shape {raw.shape}"
        )
    return np.asarray(design.input_format.from_real(raw, Rounding.AP_RND, Overflow.AP_SAT), dtype=np.int64)


def effective_weight(stored: np.ndarray, splitting: Splitting, alpha: float) -> np.ndarray:
    """Return the W implied by a stored operator.

    FB stores G = M - I = alpha (W - I), so W_eff = I + G / alpha (equivalently
    I - (I - M_eff) / alpha with M_eff = I + G). PR stores
    V = (I + alpha (I - W))^-1, so W_eff = I - (V^-1 - I) / alpha; a singular
    V implies no finite W and raises numpy.linalg.LinAlgError.
    """
    n = stored.shape[0]
    identity = np.eye(n)
    if splitting is Splitting.FB:
        return identity + stored / alpha
    return identity - (np.linalg.inv(stored) - identity) / alpha


def _iteration_matrix(stored: np.ndarray, splitting: Splitting) -> np.ndarray:
    identity = np.eye(stored.shape[0])
    if splitting is Splitting.FB:
        return identity + stored
    return 2.0 * stored - identity


@dataclass(frozen=True)
class _Bounds:
    """Worst-case bounds of section 6 for one choice of state fractional bits."""

    injection_codes: np.ndarray  # D_i as integer codes (object array of Python ints)
    injection_norm: float  # norm(d) bound, real
    equilibrium_bound: float  # X, real
    state_bound: float  # S = X + max_i D_i, real


def _injection_extremes(matrix: StoredMatrix, bias: np.ndarray, input_format: FixedFormat) -> np.ndarray:
    """Return D_i, the largest |d_i| in codes over every input code, exactly per row.

    The extremes of sum_j Q_ij x_j over the box of input codes take each x_j
    at the end of its range that the sign of Q_ij favours. RND and the bias
    are monotone, so the extremes of d_i follow from those of the sum.
    """
    Q = matrix.codes
    lo, hi = input_format.min_code, input_format.max_code
    acc_max = [int(v) for v in np.where(Q > 0, Q * hi, Q * lo).sum(axis=1)] if abs(lo) < 2**31 and hi < 2**31 else None
    acc_min = [int(v) for v in np.where(Q > 0, Q * lo, Q * hi).sum(axis=1)] if acc_max is not None else None
    if acc_max is None:
        Qo = Q.astype(object)
        acc_max = [int(v) for v in np.where(Q > 0, Qo * hi, Qo * lo).sum(axis=1)]
        acc_min = [int(v) for v in np.where(Q > 0, Qo * lo, Qo * hi).sum(axis=1)]
    mult = [int(m) for m in matrix.multipliers]
    top = shift_round(np.array([a * m for a, m in zip(acc_max, mult)], dtype=object), matrix.shift, Rounding.AP_RND)
    bottom = shift_round(np.array([a * m for a, m in zip(acc_min, mult)], dtype=object), matrix.shift, Rounding.AP_RND)
    return np.array(
        [max(abs(int(t) + int(b)), abs(int(m) + int(b))) for t, m, b in zip(top, bottom, bias)], dtype=object
    )


def _bounds(
    splitting: Splitting,
    injection: StoredMatrix,
    bias_state: np.ndarray,
    input_format: FixedFormat,
    frac_bits: int,
    contraction: float,
    resolvent_norm: float,
    step_error: float,
) -> _Bounds:
    """Compute D_i, norm(d), X and S (section 6) for Fs = `frac_bits`."""
    D = _injection_extremes(injection, bias_state, input_format)
    lsb = 2.0**-frac_bits
    d_real = np.array([float(v) for v in D]) * lsb
    d_norm = float(np.sqrt(np.sum(d_real**2)))
    if contraction < 1.0:
        if splitting is Splitting.FB:
            X = (d_norm + step_error) / (1.0 - contraction)
        else:
            X = (2.0 * resolvent_norm * d_norm + step_error) / (1.0 - contraction)
    else:
        X = math.inf
    S = X + (float(np.max(d_real)) if d_real.size else 0.0)
    return _Bounds(injection_codes=D, injection_norm=d_norm, equilibrium_bound=X, state_bound=S)


def _integer_bits_for(bound: float) -> int:
    """Return the fewest integer bits Is (sign included) with 2^(Is-1) > bound, and at least 2."""
    if not math.isfinite(bound):
        return MAX_STATE_WIDTH
    return max(2, _fewest_bits(lambda i: 2.0 ** (i - 1) > bound, start=1))


def _frac_bits_for(tolerance: float, contraction: float, hidden_units: int, doubled: bool) -> int:
    """Return the smallest Fs >= 0 with 4 beta(Fs) <= floor(tau 2^Fs) 2^-Fs.

    Without a contraction beta does not exist, and Fs is the smallest with 2^-Fs <= tau / 4.
    """
    for frac_bits in range(0, 4 * MAX_STATE_WIDTH):
        effective = math.floor(tolerance * 2.0**frac_bits) * 2.0**-frac_bits
        if contraction < 1.0:
            beta = rounding_step_error(hidden_units, frac_bits, doubled) / (1.0 - contraction)
            if 4.0 * beta <= effective:
                return frac_bits
        elif 4.0 * 2.0**-frac_bits <= tolerance:
            return frac_bits
    return 4 * MAX_STATE_WIDTH


@dataclass(frozen=True)
class _FloatOperator:
    """The float constants before quantization (section 2) and the chosen step."""

    alpha: float
    injection: np.ndarray  # alpha U'
    bias: np.ndarray  # alpha b'
    operator: np.ndarray  # G = alpha (W - I) for FB, V for PR


def _float_operator(model: MonModel, splitting: Splitting, alpha: float | None) -> _FloatOperator:
    if alpha is None:
        alpha, _ = best_alpha(model.W, splitting)
    U_raw, b_raw = model.folded_input_layer()
    # FB stores G = M - I rather than M = (1 - alpha) I + alpha W: the identity
    # part is then exact, and quantization error in W is not amplified 1 / alpha times.
    identity = np.eye(model.hidden_units)
    operator = fb_matrix(model.W, alpha) - identity if splitting is Splitting.FB else pr_matrix(model.W, alpha)
    return _FloatOperator(alpha=float(alpha), injection=alpha * U_raw, bias=alpha * b_raw, operator=operator)


def _store_all(
    model: MonModel, options: DatapathOptions, floats: _FloatOperator, input_format: FixedFormat, frac_bits: int
) -> tuple[StoredMatrix, StoredMatrix, StoredMatrix, np.ndarray, np.ndarray, FixedFormat]:
    bits, scheme = options.bits, options.scheme
    injection = store_matrix("injection", floats.injection, bits, scheme, input_format.frac_bits, frac_bits)
    operator = store_matrix("operator", floats.operator, bits, scheme, frac_bits, frac_bits)
    output, bias_logit, logit_format = _store_output(model, options, frac_bits, frac_bits)
    # The bias rounds into the state format; its saturation never acts on a certified design.
    provisional = FixedFormat(MAX_STATE_WIDTH * 4, MAX_STATE_WIDTH * 4 - frac_bits)
    bias_state = np.asarray(provisional.from_real(floats.bias, Rounding.AP_RND, Overflow.AP_SAT), dtype=object)
    return injection, operator, output, bias_state, bias_logit, logit_format


def _store_output(
    model: MonModel, options: DatapathOptions, state_frac_bits: int, logit_frac_bits: int
) -> tuple[StoredMatrix, np.ndarray, FixedFormat]:
    output = store_matrix("output", model.W_out, options.bits, options.scheme, state_frac_bits, logit_frac_bits)
    logit_format = FixedFormat(LOGIT_WIDTH, LOGIT_WIDTH - logit_frac_bits)
    bias_logit = np.asarray(logit_format.from_real(model.b_out, Rounding.AP_RND, Overflow.AP_SAT), dtype=np.int64)
    return output, bias_logit, logit_format


def _logit_bound_codes(
    output: StoredMatrix, bias_logit: np.ndarray, state_format: FixedFormat, state_bound: float
) -> int:
    """Return the largest |y_i| in logit codes: RND(sum_j |Qo_ij| z_max * mult_i, shift) + |bias_i|.

    z >= 0 and every z_j <= min(X, S) when the state does not overflow, so
    z_max is that bound in state codes (the format's largest code otherwise).
    """
    z_max = state_format.max_code
    if math.isfinite(state_bound):
        z_max = min(z_max, int(math.floor(state_bound * 2.0**state_format.frac_bits)))
    products = np.array([s * z_max * int(m) for s, m in zip(output.row_abs_sums, output.multipliers)], dtype=object)
    rows = shift_round(products, output.shift, Rounding.AP_RND)
    return max((abs(int(r)) + abs(int(b)) for r, b in zip(rows, bias_logit)), default=0)


def design_datapath(model: MonModel, options: DatapathOptions) -> DatapathDesign:
    """Design the fixed-point datapath of `model` and certify it.

    Steps: fold the preprocessing and alpha into the constants and quantize
    them (section 2); compute the contraction factor rho of the stored
    operator, which does not depend on the state format; choose Fs from the
    tolerance and Is from the worst-case (or calibration) bound S, keeping the
    state at most 32 bits (section 6); size the accumulators; assemble the
    certificate. An uncertified design is returned as is: its
    `certificate.failures()` says why, and the caller decides.
    """
    splitting = options.splitting
    n = model.hidden_units
    doubled = splitting is Splitting.PR
    input_format = options.input_format or input_format_for(model, options.input_range)
    if input_format.width > STREAM_WIDTH:
        raise ConfigError(f"the input format must be at most {STREAM_WIDTH} bits wide, not {input_format}")
    floats = _float_operator(model, splitting, options.alpha)

    # The stored operator T does not depend on Fs: the operator's multiplier
    # ratio is s_i itself, because operand and result share the state format.
    operator_probe = store_matrix("operator", floats.operator, options.bits, options.scheme, 0, 0)
    stored_operator = operator_probe.effective()
    T = _iteration_matrix(stored_operator, splitting)
    contraction = float(np.linalg.norm(T, 2))
    resolvent_norm = float(np.linalg.norm(stored_operator, 2))

    # Fractional bits from the tolerance, integer bits from the bound S; Fs
    # gives way when the state would exceed 32 bits.
    if options.state_format is not None:
        frac_bits = options.state_format.frac_bits
    else:
        frac_bits = min(_frac_bits_for(options.tolerance, contraction, n, doubled), MAX_STATE_WIDTH - 2)

    for _ in range(8):
        stored = _store_all(model, options, floats, input_format, frac_bits)
        injection, operator, output, bias_state, bias_logit, logit_format = stored
        step_error = rounding_step_error(n, frac_bits, doubled)
        bounds = _bounds(splitting, injection, bias_state, input_format, frac_bits, contraction, resolvent_norm, step_error)
        if options.state_format is not None:
            state_format = options.state_format
            break
        integer_bits = _integer_bits_for(bounds.state_bound)
        if options.range_mode is RangeMode.DATA or integer_bits + frac_bits <= MAX_STATE_WIDTH:
            state_format = FixedFormat(integer_bits + frac_bits, integer_bits)
            break
        frac_bits = max(0, MAX_STATE_WIDTH - integer_bits)
    else:
        state_format = FixedFormat(MAX_STATE_WIDTH, MAX_STATE_WIDTH - frac_bits)

    # Logits keep the state's fractional bits unless their bound needs more
    # integer bits than the 32-bit word leaves; then Fy gives way.
    logit_frac_bits = frac_bits
    for _ in range(4):
        z_bound = min(bounds.equilibrium_bound, bounds.state_bound)
        needed = signed_width(_logit_bound_codes(output, bias_logit, state_format, z_bound))
        if needed <= LOGIT_WIDTH or options.range_mode is RangeMode.DATA:
            break
        logit_frac_bits -= needed - LOGIT_WIDTH
        output, bias_logit, logit_format = _store_output(model, options, frac_bits, logit_frac_bits)

    tolerance_lsb = int(math.floor(options.tolerance * 2.0**frac_bits))
    radius = step_error / (1.0 - contraction) if contraction < 1.0 else math.inf
    bound_k = iteration_bound(contraction, radius, bounds.equilibrium_bound, tolerance_lsb * 2.0**-frac_bits)
    if options.max_iterations is not None:
        max_iterations = options.max_iterations
    else:
        max_iterations = min(bound_k, MAX_ITERATIONS) if bound_k is not None else MAX_ITERATIONS

    design = _assemble(
        model, options, floats, input_format, state_format, logit_format,
        injection, operator, output, bias_state, bias_logit, contraction, step_error,
        radius, bound_k, bounds, tolerance_lsb, max_iterations,
    )
    if options.range_mode is RangeMode.DATA and options.state_format is None:
        design = _calibrate(model, design, options, floats, bounds, step_error, radius, bound_k)
    return design


def _assemble(
    model: MonModel,
    options: DatapathOptions,
    floats: _FloatOperator,
    input_format: FixedFormat,
    state_format: FixedFormat,
    logit_format: FixedFormat,
    injection: StoredMatrix,
    operator: StoredMatrix,
    output: StoredMatrix,
    bias_state_wide: np.ndarray,
    bias_logit: np.ndarray,
    contraction: float,
    step_error: float,
    radius: float,
    bound_k: int | None,
    bounds: _Bounds,
    tolerance_lsb: int,
    max_iterations: int,
    overflow_method: str = "worst-case",
    state_bound: float | None = None,
    calibration_inputs: int = 0,
) -> DatapathDesign:
    splitting, n = options.splitting, model.hidden_units
    frac_bits = state_format.frac_bits
    bias_state = np.asarray(
        np.clip(np.array([int(v) for v in bias_state_wide], dtype=object), state_format.min_code, state_format.max_code),
        dtype=np.int64,
    )
    bias_state.setflags(write=False)
    bias_logit = np.array(bias_logit, dtype=np.int64)
    bias_logit.setflags(write=False)

    injection_acc = size_accumulator(injection, input_format, bias_state)
    operator_acc = size_accumulator(operator, state_format)
    output_acc = size_accumulator(output, state_format, bias_logit)

    state_bound = bounds.state_bound if state_bound is None else state_bound
    logit_codes = _logit_bound_codes(output, bias_logit, state_format, min(bounds.equilibrium_bound, state_bound))

    rounding = RoundingBall(
        step_error=step_error,
        contraction=contraction,
        radius=radius,
        tolerance=float(options.tolerance),
        tolerance_lsb=tolerance_lsb,
        frac_bits=frac_bits,
        equilibrium_bound=bounds.equilibrium_bound,
        iteration_bound=bound_k,
        max_iterations=max_iterations,
    )
    overflow = OverflowProof(
        method=overflow_method,
        injection_bound=float(max((int(v) for v in bounds.injection_codes), default=0)) * 2.0**-frac_bits,
        equilibrium_bound=bounds.equilibrium_bound,
        state_bound=state_bound,
        state_format=state_format.c_type,
        state_limit=2.0 ** (state_format.integer_bits - 1),
        logit_bound=logit_codes * 2.0**-logit_format.frac_bits,
        logit_format=logit_format.c_type,
        logit_limit=2.0 ** (logit_format.integer_bits - 1),
        accumulator_bits={
            "injection": injection_acc.accumulator_bits,
            "operator": operator_acc.accumulator_bits,
            "output": output_acc.accumulator_bits,
        },
        calibration_inputs=calibration_inputs,
    )

    stored_operator = operator.effective()
    float_margin = margin(model.W)
    try:
        W_eff = effective_weight(stored_operator, splitting, floats.alpha)
        quantized_margin = margin(W_eff)
        perturbation = float(np.linalg.norm(W_eff - model.W, 2))
    except np.linalg.LinAlgError:
        quantized_margin, perturbation = -math.inf, math.inf
    operator_part = OperatorCertificate(
        bits=options.bits,
        scheme=options.scheme.value,
        weight_perturbation_norm=perturbation,
        margin=float_margin,
        quantized_margin=quantized_margin,
        splitting=splitting.value,
        alpha=floats.alpha,
        contraction=contraction,
    )

    # Injection perturbation per row: the stored map differs from alpha U'
    # by the quantization, the bias by its rounding, and the requantization
    # rounds once more by half an LSB; dividing by alpha gives c_eff - c.
    lsb = 2.0**-frac_bits
    input_peak = np.full(model.input_features, float(max(abs(input_format.min_value), abs(input_format.max_value))))
    injection_error = np.abs(injection.effective() - floats.injection) @ input_peak
    bias_error = np.abs(bias_state.astype(np.float64) * lsb - floats.bias)
    delta_c = (injection_error + bias_error + 0.5 * lsb) / floats.alpha
    rounding_bound = after_stop_bound(contraction, step_error, math.sqrt(n) * tolerance_lsb * lsb)
    displacement = DisplacementBound(
        operator_perturbation=perturbation,
        injection_perturbation=float(np.linalg.norm(delta_c)),
        margin=float_margin,
        equilibrium_bound=bounds.equilibrium_bound,
        rounding_bound=rounding_bound,
    )

    notes: tuple[str, ...] = ()
    if overflow_method != "worst-case":
        notes = (
            f"the overflow bound is data-driven ({calibration_inputs} calibration inputs) and is not a proof; "
            f"the saturators guard the datapath",
        )
    certificate = Certificate(
        operator=operator_part, rounding=rounding, overflow=overflow, displacement=displacement, notes=notes
    )

    inputs_per_beat = STREAM_WIDTH // input_format.width
    return DatapathDesign(
        hidden_units=n,
        input_features=model.input_features,
        classes=model.classes,
        splitting=splitting,
        alpha=floats.alpha,
        bits=options.bits,
        scheme=options.scheme,
        input_format=input_format,
        state_format=state_format,
        logit_format=logit_format,
        injection=injection,
        operator=operator,
        output=output,
        bias_state=bias_state,
        bias_logit=bias_logit,
        injection_accumulator=injection_acc,
        operator_accumulator=operator_acc,
        output_accumulator=output_acc,
        tolerance=float(options.tolerance),
        tolerance_lsb=tolerance_lsb,
        max_iterations=max_iterations,
        inputs_per_beat=inputs_per_beat,
        input_beats=-(-model.input_features // inputs_per_beat),
        output_beats=model.classes + 1,
        certificate=certificate,
        model_sha256=model.sha256,
        model_source=model.source,
        options=options,
    )


def _calibrate(
    model: MonModel,
    provisional: DatapathDesign,
    options: DatapathOptions,
    floats: _FloatOperator,
    bounds: _Bounds,
    step_error: float,
    radius: float,
    bound_k: int | None,
) -> DatapathDesign:
    """Set the state's integer bits from the largest state value seen on the calibration inputs."""
    from .golden import run_golden

    calibration = np.asarray(options.calibration, dtype=np.int64)
    if calibration.shape[1] != model.input_features:
        raise ConfigError(
            f"calibration inputs have {calibration.shape[1]} features, but the model takes {model.input_features}"
        )
    result = run_golden(provisional, calibration)
    frac_bits = provisional.frac_bits
    observed = float(np.max(result.max_abs_state)) * 2.0**-frac_bits if len(calibration) else 0.0
    integer_bits = _integer_bits_for(observed)
    if integer_bits + frac_bits > MAX_STATE_WIDTH:
        logger.warning(
            "calibrated state needs %d integer bits; %d fractional bits leave the state %d bits wide",
            integer_bits, frac_bits, integer_bits + frac_bits,
        )
    state_format = FixedFormat(integer_bits + frac_bits, integer_bits)
    return _assemble(
        model, options, floats, provisional.input_format, state_format, provisional.logit_format,
        provisional.injection, provisional.operator, provisional.output, provisional.bias_state,
        provisional.bias_logit, provisional.rounding.contraction, step_error, radius, bound_k, bounds,
        provisional.tolerance_lsb, provisional.max_iterations,
        overflow_method="data-driven", state_bound=observed, calibration_inputs=len(calibration),
    )


def smallest_certified_bits(model: MonModel, options: DatapathOptions) -> int | None:
    """Return the fewest weight bits (from `options.bits` up to 16) whose design is certified, or None.

    NOTE: a certificate says the hardware converges to the equilibrium of the
    operator it stores, not that this operator is close to the float one. At
    2 bits the locuslab MNIST model stores a near-scaled identity that is
    certified for PR and FB yet classifies about 20% of MNIST correctly, so
    check accuracy before proposing the result.
    """
    alpha = options.alpha
    if alpha is None:
        alpha, _ = best_alpha(model.W, options.splitting)
    for bits in range(max(options.bits, MIN_BITS), MAX_BITS + 1):
        design = design_datapath(model, dataclasses.replace(options, bits=bits, alpha=alpha))
        if design.certified:
            return bits
    return None


def smallest_tolerance(model: MonModel, options: DatapathOptions) -> float:
    """Return the smallest tolerance this design can be certified for: 4 beta at the largest usable Fs.

    Fs is limited by the 32-bit state: Fs <= 32 - Is, with Is from the
    worst-case bound S. Infinite when the stored operator does not contract.
    """
    design = design_datapath(model, dataclasses.replace(options, tolerance=2.0**-(MAX_STATE_WIDTH - 2)))
    ball = design.rounding
    if not ball.contracts:
        return math.inf
    frac_bits = MAX_STATE_WIDTH - design.state_format.integer_bits
    beta = rounding_step_error(model.hidden_units, frac_bits, options.splitting is Splitting.PR) / (
        1.0 - ball.contraction
    )
    return 4.0 * beta
