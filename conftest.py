"""Fixtures shared by tests/ and hw_tests/: the trained locuslab MON and MNIST, read in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent

#: Folder with the reference model and MNIST; it sits beside the checkout in
#: development and CI and is absent on a user's machine.
SHARED_DIR = Path(os.environ.get("MON2HLS_SHARED_DIR", REPO_ROOT.parent / "shared"))
LOCUSLAB_MODEL = SHARED_DIR / "models" / "locuslab_mnist_fc.pt"
MNIST_DIR = SHARED_DIR / "data" / "mnist"


@pytest.fixture(scope="session")
def locuslab_path() -> Path:
    """Path of the fully connected MNIST MON trained by locuslab/monotone_op_net (m = 1.0)."""
    if not LOCUSLAB_MODEL.is_file():
        pytest.skip(f"trained locuslab model not found at {LOCUSLAB_MODEL}; set MON2HLS_SHARED_DIR")
    return LOCUSLAB_MODEL


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder with the four MNIST IDX files."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found in {MNIST_DIR}; set MON2HLS_SHARED_DIR")
    return MNIST_DIR
