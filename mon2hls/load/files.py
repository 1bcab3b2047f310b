"""Safe reading of model files: PyTorch checkpoints and NumPy .npz archives.

No code stored in a model file is ever executed. PyTorch files are read with
``torch.load(weights_only=True)``, whose unpickler accepts only tensors,
plain containers, numbers and strings; NumPy archives are read with
``allow_pickle=False``. Tensors are mapped to the CPU, so checkpoints saved
from GPU tensors load on a machine without a GPU.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError, UnsupportedModelError

__all__ = ["file_sha256", "read_model_file", "GENERIC_FORMAT_HINT"]

logger = logging.getLogger(__name__)

#: Pointer appended to errors about layouts that mon2hls cannot convert.
GENERIC_FORMAT_HINT = (
    "export W, U, b, W_out and b_out to the generic dense format (.npz or .pt) described in "
    "docs/model-formats.md"
)

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_2_OR_LATER = b"\x80"


def file_sha256(path: Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_numpy_archive(path: Path) -> bool:
    # A PyTorch zip checkpoint contains <name>/data.pkl; an .npz contains only .npy members.
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return path.suffix.lower() == ".npz"
    if any(name.endswith("data.pkl") for name in names):
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def _read_numpy_archive(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ModelLoadError(
                f"rejected {path}: the archive contains pickled Python objects, which mon2hls never loads "
                f"because unpickling can run arbitrary code; save plain numeric arrays and strings only"
            ) from None
        raise ModelLoadError(f"cannot read {path} as a NumPy .npz archive: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise ModelLoadError(
            f"cannot read {path} as a NumPy .npz archive ({error}); the file may be truncated or corrupt, "
            f"so save it again"
        ) from None


def _read_torch_file(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        text = str(error)
        if "Weights only load failed" in text or "Unsupported global" in text or "GLOBAL" in text:
            # Name only the rejected global: torch's advice to allowlist it would defeat the check.
            found = re.search(r"GLOBAL ([\w.]+)", text)
            detail = f"unsupported global {found.group(1)}" if found else "unsupported object"
            raise ModelLoadError(
                f"rejected {path}: it contains pickled Python objects other than tensors, numbers "
                f"and strings ({detail}); mon2hls never unpickles such objects because that can "
                f"run arbitrary code, so save the model's state_dict or the generic dense format"
            ) from None
        raise _unreadable(path, error) from None
    # A damaged file can fail anywhere inside torch's unpickler, hence the wide net.
    except (
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
    ) as error:
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: BaseException | None) -> ModelLoadError:
    with open(path, "rb") as stream:
        head = stream.read(4)
    if error is not None and (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTOCOL_2_OR_LATER)):
        return ModelLoadError(
            f"cannot read {path} as a PyTorch checkpoint ({type(error).__name__}: {error}); "
            f"the file looks truncated or corrupt, so copy or save it again"
        )
    return ModelLoadError(
        f"{path} is neither a PyTorch checkpoint nor a NumPy .npz archive (it starts with bytes {head!r}); "
        f"pass a .pt file saved with torch.save or an .npz file saved with numpy.savez"
    )


def read_model_file(path: Path) -> Any:
    """Read a model file and return its content (a dict for every supported layout).

    Raises ModelLoadError when the file is missing, unreadable, corrupt or
    contains pickled objects, and UnsupportedModelError for ONNX files.
    """
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}; check the path")
    if not path.is_file():
        raise ModelLoadError(f"model path is not a regular file: {path}; pass the checkpoint file itself")

    # NOTE: ONNX files are recognized by their suffix only; ONNX import itself is not written yet.
    if path.suffix.lower() == ".onnx":
        raise UnsupportedModelError(
            f"{path}: ONNX import is planned but not supported yet; {GENERIC_FORMAT_HINT}"
        )

    with open(path, "rb") as stream:
        head = stream.read(4)
    if not head:
        raise ModelLoadError(f"model file is empty: {path}; save the model again")

    if head.startswith(_ZIP_MAGIC) and _is_numpy_archive(path):
        logger.debug("reading %s as a NumPy archive", path)
        return _read_numpy_archive(path)
    if path.suffix.lower() == ".npz" and not head.startswith(_ZIP_MAGIC):
        raise ModelLoadError(
            f"cannot read {path} as a NumPy .npz archive: it is not a zip file; the file may be truncated "
            f"or corrupt, so save it again with numpy.savez"
        )
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTOCOL_2_OR_LATER)):
        raise _unreadable(path, None)
    logger.debug("reading %s as a PyTorch checkpoint", path)
    return _read_torch_file(path)
