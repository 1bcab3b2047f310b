"""Fixtures of the hardware tests: Verilator and a build folder per case.

Every test here simulates Verilog and is marked `rtl`. Without a usable
Verilator the tests are skipped on a developer's machine but fail in CI
(CI=true), so that a broken install never passes as green.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mon2hls.errors import ToolchainError
from mon2hls.sim.verilator import VerilatorInstall, find_verilator

REPO_ROOT = Path(__file__).resolve().parents[1]
HDL_DIR = Path(__file__).resolve().parent / "hdl"

#: Root of the per-case build folders. Builds are kept between runs, so a
#: second run only recompiles what changed.
BUILD_ROOT = Path(os.environ.get("MON2HLS_HW_BUILD", REPO_ROOT / "build" / "hw_tests"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def verilator() -> VerilatorInstall:
    """The Verilator the tests use; skip without one, except in CI, where its absence fails."""
    try:
        return find_verilator()
    except ToolchainError as error:
        if in_ci():
            pytest.fail(f"RTL tests cannot run in CI: {error}", pytrace=False)
        pytest.skip(str(error))


@pytest.fixture
def case_dir(request: pytest.FixtureRequest, verilator: VerilatorInstall) -> Path:
    """A build folder of its own for each test case: build/hw_tests/<test name>."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    folder = BUILD_ROOT / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


