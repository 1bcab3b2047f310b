"""Packing of input and output codes into 32-bit AXI4-Stream words, and the test-vector files.

The layout is section 5 of docs/datapath.md. Input beat: E = floor(32 / Wx)
codes, code j of the beat in bits [Wx j, Wx j + Wx), two's complement for
signed formats, unused slots zero. Output: k logit words (32-bit two's
complement), then a status word with the iteration count in bits [15:0] and
the converged flag in bit 31.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .design import DatapathDesign
from .formats import FixedFormat
from .golden import GoldenResult

__all__ = [
    "CONVERGED_BIT",
    "ITERATION_MASK",
    "TestVectors",
    "pack_inputs",
    "unpack_inputs",
    "pack_outputs",
    "unpack_outputs",
    "write_vectors",
    "read_vectors",
]

CONVERGED_BIT = 31
ITERATION_MASK = 0xFFFF
_WORD_MASK = 0xFFFFFFFF


def _from_twos_complement(fields: np.ndarray, width: int, signed: bool) -> np.ndarray:
    fields = fields.astype(np.int64)
    if signed:
        fields = np.where(fields >= 1 << (width - 1), fields - (1 << width), fields)
    return fields


def pack_inputs(design: DatapathDesign, x_codes: Any) -> np.ndarray:
    """Pack input codes (B x d) into stream words (B x input_beats, uint32)."""
    x = np.asarray(x_codes, dtype=np.int64)
    if x.ndim == 1:
        x = x[None, :]
    fmt: FixedFormat = design.input_format
    if x.shape[1] != design.input_features:
        raise DataError(f"input codes must have {design.input_features} features, not shape {x.shape}")
    if x.size and not np.all(fmt.contains(x)):
        raise DataError(f"input codes out of range [{fmt.min_code}, {fmt.max_code}] for the input format {fmt}")
    per_beat, beats, width = design.inputs_per_beat, design.input_beats, fmt.width

    slots = np.zeros((x.shape[0], beats * per_beat), dtype=np.int64)
    slots[:, : x.shape[1]] = x & ((1 << width) - 1)
    slots = slots.reshape(x.shape[0], beats, per_beat)
    offsets = (np.arange(per_beat, dtype=np.int64) * width)[None, None, :]
    words = np.sum(slots << offsets, axis=2)
    return (words & _WORD_MASK).astype(np.uint32)


def unpack_inputs(design: DatapathDesign, words: Any) -> np.ndarray:
    """Recover input codes (B x d, int64) from stream words (B x input_beats)."""
    w = np.asarray(words, dtype=np.int64)
    if w.ndim == 1:
        w = w[None, :]
    if w.shape[1] != design.input_beats:
        raise DataError(f"expected {design.input_beats} input words per inference, not {w.shape[1]}")
    fmt = design.input_format
    per_beat, width = design.inputs_per_beat, fmt.width
    offsets = (np.arange(per_beat, dtype=np.int64) * width)[None, None, :]
    fields = (w[:, :, None] >> offsets) & ((1 << width) - 1)
    fields = fields.reshape(w.shape[0], -1)[:, : design.input_features]
    return _from_twos_complement(fields, width, fmt.signed)


def pack_outputs(design: DatapathDesign, result: GoldenResult) -> np.ndarray:
    """Pack logits and status into output words (B x (k + 1), uint32)."""
    logits = np.asarray(result.logits, dtype=np.int64) & _WORD_MASK
    status = (np.asarray(result.iterations, dtype=np.int64) & ITERATION_MASK) | (
        np.asarray(result.converged, dtype=np.int64) << CONVERGED_BIT
    )
    return np.concatenate([logits, status[:, None]], axis=1).astype(np.uint32)


def unpack_outputs(design: DatapathDesign, words: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split output words (B x (k + 1)) into (logit codes, iteration counts, converged flags)."""
    w = np.asarray(words, dtype=np.int64)
    if w.ndim == 1:
        w = w[None, :]
    if w.shape[1] != design.output_beats:
        raise DataError(f"expected {design.output_beats} output words per inference, not {w.shape[1]}")
    logits = _from_twos_complement(w[:, : design.classes] & _WORD_MASK, 32, True)
    status = w[:, design.classes]
    return logits, status & ITERATION_MASK, ((status >> CONVERGED_BIT) & 1).astype(bool)


@dataclass(frozen=True, eq=False)
class TestVectors:
    """Contents of a vectors/ folder: stream words per inference and the labels when present."""

    __test__ = False  # not a pytest test class

    inputs: np.ndarray
    outputs: np.ndarray
    labels: np.ndarray | None


def _write_hex(path: Path, words: np.ndarray) -> None:
    lines = [" ".join(f"{int(v):08x}" for v in row) for row in words]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="ascii")


def write_vectors(
    design: DatapathDesign,
    folder: str | os.PathLike[str],
    x_codes: Any,
    result: GoldenResult,
    labels: Any = None,
) -> Path:
    """Write inputs.hex, outputs.hex and (with labels) labels.txt into `folder`; returns the folder.

    One inference per line, words as 8 lower-case hexadecimal digits separated
    by single spaces. Each file is written to a temporary name and renamed, so
    an error never leaves a half-written file behind.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    inputs = pack_inputs(design, x_codes)
    outputs = pack_outputs(design, result)
    if inputs.shape[0] != outputs.shape[0]:
        raise DataError(f"{inputs.shape[0]} inputs but {outputs.shape[0]} golden results; they must match")
    files: list[tuple[Path, Any]] = [(folder / "inputs.hex", inputs), (folder / "outputs.hex", outputs)]
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != inputs.shape[0]:
            raise DataError(f"{len(labels)} labels for {inputs.shape[0]} inputs; they must match")
        files.append((folder / "labels.txt", labels))

    for path, data in files:
        temporary = path.with_name(path.name + ".tmp")
        if path.suffix == ".hex":
            _write_hex(temporary, data)
        else:
            temporary.write_text("".join(f"{int(v)}\n" for v in data), encoding="ascii")
        os.replace(temporary, path)
    return folder


def _read_hex(path: Path) -> np.ndarray:
    rows = []
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([int(word, 16) for word in line.split()])
        except ValueError:
            raise DataError(f"{path}:{number}: expected 8-digit hexadecimal words, got {line[:40]!r}") from None
    if rows and len({len(r) for r in rows}) != 1:
        raise DataError(f"{path}: lines have different word counts; the file is corrupt")
    return np.array(rows, dtype=np.uint32).reshape(len(rows), -1 if rows else 0)


def read_vectors(folder: str | os.PathLike[str]) -> TestVectors:
    """Read a vectors/ folder written by `write_vectors`."""
    folder = Path(folder)
    for name in ("inputs.hex", "outputs.hex"):
        if not (folder / name).is_file():
            raise DataError(f"test vectors not found: {folder / name} is missing")
    inputs = _read_hex(folder / "inputs.hex")
    outputs = _read_hex(folder / "outputs.hex")
    if inputs.shape[0] != outputs.shape[0]:
        raise DataError(f"{folder}: {inputs.shape[0]} input lines but {outputs.shape[0]} output lines")
    labels = None
    if (folder / "labels.txt").is_file():
        text = (folder / "labels.txt").read_text(encoding="ascii").split()
        labels = np.array([int(v) for v in text], dtype=np.int64)
    return TestVectors(inputs=inputs, outputs=outputs, labels=labels)
