"""The fixed-point datapath: formats, stored constants, certificate, golden model and stream packing."""

from .certificate import DisplacementBound, OverflowProof, RoundingBall
from .design import (
    DatapathDesign,
    DatapathOptions,
    RangeMode,
    design_datapath,
    effective_weight,
    encode_inputs,
    input_format_for,
    smallest_certified_bits,
    smallest_tolerance,
)
from .formats import FixedFormat, Overflow, Rounding, convert, saturate, shift_round, wrap
from .golden import GoldenResult, run_golden
from .stored import Accumulator, StoredMatrix
from .stream import pack_inputs, pack_outputs, read_vectors, unpack_inputs, unpack_outputs, write_vectors

__all__ = [
    "Accumulator",
    "DatapathDesign",
    "DatapathOptions",
    "DisplacementBound",
    "FixedFormat",
    "GoldenResult",
    "Overflow",
    "OverflowProof",
    "RangeMode",
    "Rounding",
    "RoundingBall",
    "StoredMatrix",
    "convert",
    "design_datapath",
    "effective_weight",
    "encode_inputs",
    "input_format_for",
    "pack_inputs",
    "pack_outputs",
    "read_vectors",
    "run_golden",
    "saturate",
    "shift_round",
    "smallest_certified_bits",
    "smallest_tolerance",
    "unpack_inputs",
    "unpack_outputs",
    "wrap",
    "write_vectors",
]
