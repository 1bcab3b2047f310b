"""Fixtures of the Python and C-simulation tests; the data fixtures are in the root conftest.py."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
