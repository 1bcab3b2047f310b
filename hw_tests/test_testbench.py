"""The testbench itself, on small helper modules: signed and wide ports, stream drivers, timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mon2hls.sim.rtl import build_simulator, run_cocotb

from .conftest import HDL_DIR

pytestmark = pytest.mark.rtl

HELPER_TESTS = "hw_tests.cocotb_helpers"


def test_signed_ports_read_back(case_dir: Path) -> None:
    runner = build_simulator([HDL_DIR / "signed_ports.v"], case_dir / "build", toplevel="signed_ports")
    run_cocotb(runner, HELPER_TESTS, case_dir / "run", toplevel="signed_ports", testcase="signed_values_keep_sign")


def test_wide_port_lanes(case_dir: Path) -> None:
    # 12 lanes of 8 bits: 96 bits, wider than the 64 bits of a machine word.
    parameters = {"LANES": 12, "LANE_BITS": 8}
    runner = build_simulator(
        [HDL_DIR / "wide_lanes.v"], case_dir / "build", toplevel="wide_lanes", parameters=parameters
    )
    run_cocotb(
        runner,
        HELPER_TESTS,
        case_dir / "run",
        toplevel="wide_lanes",
        testcase="wide_port_lanes",
        extra_env={name: str(value) for name, value in parameters.items()},
    )


def test_stream_drivers_on_echo(case_dir: Path) -> None:
    # One build, every stream test of cocotb_helpers.py that starts with "echo_".
    runner = build_simulator(
        [HDL_DIR / "stream_echo.v"], case_dir / "build", toplevel="stream_echo", parameters={"IN_BEATS": 5}
    )
    run_cocotb(
        runner,
        HELPER_TESTS,
        case_dir / "run",
        toplevel="stream_echo",
        test_filter=r"\.echo_",
        extra_env={"IN_BEATS": "5"},
    )
