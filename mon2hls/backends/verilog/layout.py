"""How the Verilog datapath spreads P multipliers over lanes, and the weight ROM that feeds them.

The matrix-vector products run on C = min(P, n) column lanes times
R = min(max(1, floor(P / n)), max(n, k)) rows. Each cycle one tile of R x C
weight codes leaves the ROM and meets C operand slots. A matrix of `rows`
rows and `slots` operand slots takes ceil(rows / R) * ceil(slots / C) tiles,
row groups outermost. The injection's operand slots are the input beats'
code slots, XB * E of them, where the input codes sit at the top:
slot s holds input j = s - (LX - XB * E), with LX = ceil(XB * E / C) * C.
The layout here and the localparams of mon_core.v must agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError

__all__ = ["LaneLayout", "lane_layout", "pack_tiles"]


@dataclass(frozen=True)
class LaneLayout:
    """Lane organization of one design at parallelism P, and the tile counts of its three products."""

    parallel: int
    lanes: int  #: C, column lanes
    rows: int  #: R, rows per tile
    input_slots: int  #: LX, input operand slots (a whole number of column blocks)
    input_offset: int  #: slot of input code 0
    state_slots: int  #: LV, state operand slots
    injection_tiles: int  #: T_U = ceil(n / R) * ceil(XB * E / C)
    operator_tiles: int  #: T_OP = ceil(n / R) * ceil(n / C)
    output_tiles: int  #: T_O = ceil(k / R) * ceil(n / C)
    hidden_rows: int  #: n padded to whole row groups, ceil(n / R) * R
    class_rows: int  #: k padded to whole row groups, ceil(k / R) * R

    @property
    def depth(self) -> int:
        """Words of the weight ROM: the three products' tiles, one after another."""
        return self.injection_tiles + self.operator_tiles + self.output_tiles


def lane_layout(hidden_units: int, input_features: int, classes: int, inputs_per_beat: int,
                input_beats: int, parallel: int) -> LaneLayout:
    """Compute the lane layout for n hidden units, d inputs, k classes and P multipliers."""
    if isinstance(parallel, bool) or not isinstance(parallel, (int, np.integer)) or parallel < 1:
        raise ConfigError(f"parallelism must be a whole number of multipliers >= 1, not {parallel!r}")
    n, k, p = int(hidden_units), int(classes), int(parallel)
    lanes = min(p, n)
    rows = min(max(1, p // n), max(n, k))
    code_slots = int(input_beats) * int(inputs_per_beat)
    if code_slots < input_features:
        raise ConfigError(
            f"{input_beats} beats of {inputs_per_beat} codes cannot carry {input_features} input features"
        )
    input_blocks = math.ceil(code_slots / lanes)
    state_blocks = math.ceil(n / lanes)
    hidden_groups = math.ceil(n / rows)
    class_groups = math.ceil(k / rows)
    return LaneLayout(
        parallel=p,
        lanes=lanes,
        rows=rows,
        input_slots=input_blocks * lanes,
        input_offset=input_blocks * lanes - code_slots,
        state_slots=state_blocks * lanes,
        injection_tiles=hidden_groups * input_blocks,
        operator_tiles=hidden_groups * state_blocks,
        output_tiles=class_groups * state_blocks,
        hidden_rows=hidden_groups * rows,
        class_rows=class_groups * rows,
    )


def pack_tiles(codes: np.ndarray, layout: LaneLayout, slots: int, offset: int, bits: int) -> list[str]:
    """Cut a matrix of signed codes into R x C tiles and return one hexadecimal ROM word per tile.

    Column slot s of the operand holds matrix column s - offset; slots outside
    the matrix and rows past its end get zero weights. Code (r, c) of a tile
    sits at bits [(r * C + c) * bits, ... + bits) of its word.
    """
    rows_in, cols_in = codes.shape
    rows, lanes = layout.rows, layout.lanes
    row_groups = math.ceil(rows_in / rows)
    blocks = slots // lanes

    padded = np.zeros((row_groups * rows, slots), dtype=np.int64)
    padded[:rows_in, offset:offset + cols_in] = codes

    # (groups, R, blocks, C) -> tiles in row-group-major order, each R x C.
    tiles = padded.reshape(row_groups, rows, blocks, lanes).transpose(0, 2, 1, 3)
    tiles = tiles.reshape(row_groups * blocks, rows * lanes)

    # Two's complement bit fields, least significant code first.
    unsigned = tiles & ((1 << bits) - 1)
    bit_planes = (unsigned[:, :, None] >> np.arange(bits)) & 1
    word_bits = bit_planes.reshape(tiles.shape[0], rows * lanes * bits)
    digits = math.ceil(rows * lanes * bits / 4)
    word_bits = np.pad(word_bits, ((0, 0), (0, digits * 4 - word_bits.shape[1])))
    nibbles = word_bits.reshape(tiles.shape[0], digits, 4) @ np.array([1, 2, 4, 8])
    alphabet = np.array(list("0123456789abcdef"))
    return ["".join(row) for row in alphabet[nibbles[:, ::-1]]]
