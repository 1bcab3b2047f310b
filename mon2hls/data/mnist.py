"""MNIST from its four IDX files, checked against the canonical checksums.

The files are looked up in the folder given, else in the folder named by the
environment variable MON2HLS_DATA_DIR, else in ~/.cache/mon2hls/mnist, where
they are downloaded on first use. Each file may be gzip-compressed
(``train-images-idx3-ubyte.gz``) or plain (``train-images-idx3-ubyte``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..model import MNIST_PREPROCESSING
from .dataset import Dataset

__all__ = ["DATA_DIR_VARIABLE", "MNIST_FILES", "read_idx", "find_mnist_dir", "load_mnist"]

logger = logging.getLogger(__name__)

#: Environment variable naming a folder with the MNIST IDX files.
DATA_DIR_VARIABLE = "MON2HLS_DATA_DIR"

#: Folder that receives downloaded files when no folder is configured.
CACHE_DIR = Path.home() / ".cache" / "mon2hls" / "mnist"

#: Mirrors of the original gzip files, tried in order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

DOWNLOAD_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class _IdxFile:
    stem: str
    md5: str  # of the decompressed file


#: The IDX files of each split: (images, labels), with the md5 of their decompressed bytes.
MNIST_FILES = {
    "train": (
        _IdxFile("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
        _IdxFile("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    ),
    "test": (
        _IdxFile("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
        _IdxFile("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
    ),
}

#: IDX element type codes (third byte of the magic number) and their numpy types.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_FIX_HINT = f"pass --data-dir with a folder holding the four MNIST IDX files, or set {DATA_DIR_VARIABLE}"

# Parsed and verified files of this process, keyed by path, size and modification time,
# so repeated loads neither decompress nor hash again.
_verified_cache: dict[tuple[str, int, int], np.ndarray] = {}


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    try:
        if gzipped:
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}; {_FIX_HINT}") from None


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file into an array of its shape and element type.

    The header is two zero bytes, a type code, the number of dimensions D, then
    D big-endian uint32 sizes; the elements follow in C order.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{source} is not an IDX file: its first bytes are {data[:4]!r}, not 00 00 <type> <dims>")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_TYPES:
        raise DataError(f"{source} has the unknown IDX element type 0x{type_code:02x}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{source} is truncated: {len(data)} bytes, the header alone needs {header_size}")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[type_code]
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{source} has {len(data)} bytes, but its header (shape {shape}, {dtype}) requires {expected}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or plain, into a numpy array."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def _locate(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _load_verified(folder: Path, idx_file: _IdxFile, verify: bool) -> np.ndarray:
    path = _locate(folder, idx_file.stem)
    if path is None:
        raise DataError(
            f"MNIST file {idx_file.stem}[.gz] not found in {folder}; {_FIX_HINT}"
        )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _verified_cache:
        return _verified_cache[key]

    data = _read_bytes(path)
    if verify:
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if digest != idx_file.md5:
            raise DataError(
                f"{path} is corrupt or not the MNIST file: md5 of its decompressed content is {digest}, "
                f"expected {idx_file.md5}; replace it with the original file or {_FIX_HINT}"
            )
    array = parse_idx(data, str(path))
    array.setflags(write=False)
    if verify:
        _verified_cache[key] = array
    return array


def _fetch(url: str, target: Path) -> None:
    # Download beside the target and rename, so an interrupted download never
    # leaves a partial file under the real name.
    descriptor, partial = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as output:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                shutil.copyfileobj(response, output)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise


def _download(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create the MNIST cache folder {folder}: {error}; {_FIX_HINT}") from None
    for split in MNIST_FILES.values():
        for idx_file in split:
            if _locate(folder, idx_file.stem) is not None:
                continue
            target = folder / (idx_file.stem + ".gz")
            failures = []
            for mirror in MIRRORS:
                url = mirror + target.name
                logger.info("downloading %s", url)
                try:
                    _fetch(url, target)
                    break
                except (urllib.error.URLError, OSError, TimeoutError) as error:
                    logger.warning("download of %s failed: %s", url, error)
                    failures.append(f"{url}: {error}")
            else:
                raise DataError(
                    f"MNIST is not configured and the download failed ({'; '.join(failures)}); {_FIX_HINT}"
                )


def find_mnist_dir(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the folder to read MNIST from, downloading into the cache folder if needed.

    Order: `data_dir`, then $MON2HLS_DATA_DIR, then ~/.cache/mon2hls/mnist. Only the
    last is ever downloaded into, and only when `download` is true.
    """
    configured = data_dir if data_dir is not None else os.environ.get(DATA_DIR_VARIABLE) or None
    if configured is not None:
        folder = Path(configured).expanduser()
        if not folder.is_dir():
            source = "--data-dir" if data_dir is not None else DATA_DIR_VARIABLE
            raise DataError(f"MNIST folder {folder} (from {source}) does not exist or is not a folder; {_FIX_HINT}")
        return folder

    complete = all(_locate(CACHE_DIR, f.stem) for split in MNIST_FILES.values() for f in split)
    if not complete:
        if not download:
            raise DataError(f"MNIST not found in {CACHE_DIR} and downloading is off; {_FIX_HINT}")
        _download(CACHE_DIR)
    return CACHE_DIR


def load_mnist(split: str, data_dir: str | os.PathLike | None = None, verify: bool = True) -> Dataset:
    """Load the MNIST "train" (60,000) or "test" (10,000) split as 28 x 28 = 784 uint8 pixels per image.

    Each file is checked against the md5 of the original decompressed file
    unless `verify` is false; a verified file is hashed once per process.
    Raises DataError naming the folder or file when a file is missing, corrupt
    or unreadable.
    """
    if split not in MNIST_FILES:
        raise DataError(f"unknown MNIST split {split!r}; choose one of: {', '.join(MNIST_FILES)}")
    folder = find_mnist_dir(data_dir)
    images_file, labels_file = MNIST_FILES[split]
    images = _load_verified(folder, images_file, verify)
    labels = _load_verified(folder, labels_file, verify)

    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(
            f"MNIST files in {folder} do not match: images have shape {images.shape}, labels {labels.shape}; "
            "expected N x 28 x 28 images and N labels"
        )
    raw = images.reshape(images.shape[0], -1)
    logger.debug("loaded MNIST %s: %d images from %s", split, raw.shape[0], folder)
    return Dataset(raw=raw, labels=labels.astype(np.int64), name="mnist", split=split,
                   preprocessing=MNIST_PREPROCESSING)
