"""Loading trained MONs from model files into `MonModel`.

`load_model` reads a file safely (no pickled code is ever run), recognizes its
key layout and converts it; `save_checkpoint` writes mon2hls's own format.
The layouts are described in docs/model-formats.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import InvalidModelError
from ..model import MonModel
from .checkpoint import save_checkpoint
from .files import file_sha256, read_model_file
from .layouts import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Layout, convert

__all__ = ["Layout", "load_model", "save_checkpoint", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]

logger = logging.getLogger(__name__)


def load_model(
    path: str | os.PathLike[str], *, m: float | None = None, layout: Layout | str = "auto"
) -> MonModel:
    """Load a trained MON from a model file.

    `m` is the margin parameter of W = (1 - m) I - A^T A + B - B^T; the
    locuslab layout does not store it, so it must be passed there. `layout`
    is one of auto, locuslab, generic, mon2hls. The returned model records
    the file path, its SHA-256 and the layout. Raises ModelLoadError (or its
    subclass UnsupportedModelError) for files that cannot be converted and
    InvalidModelError for inconsistent or non-finite tensors.
    """
    path = Path(path)
    layout = Layout.parse(layout)
    source = str(path)

    content = read_model_file(path)
    used_layout, fields = convert(content, layout, m, source)
    try:
        model = MonModel(**fields, source=source, sha256=file_sha256(path), layout=used_layout.value)
    except InvalidModelError as error:
        raise InvalidModelError(f"{source}: {error}") from None

    logger.info(
        "loaded %s (%s layout): %d inputs, %d hidden units, %d classes",
        source,
        used_layout.value,
        model.input_features,
        model.hidden_units,
        model.classes,
    )
    return model
