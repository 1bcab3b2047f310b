"""The testbench itself, on small helper modules: signed and wide ports, stream drivers, timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mon2hls.sim.rtl import build_simulator, run_cocotb

from .conftest import BUILD_ROOT, HDL_DIR

pytestmark = pytest.mark.rtl

HELPER_TESTS = "hw_tests.cocotb_helpers"


#: 12 lanes of 8 bits: a 96-bit port, wider than the 64 bits of a machine word.
WIDE_PORT = {"LANES": 12, "LANE_BITS": 8}


@pytest.fixture(scope="module")
def port_checks(verilator) -> object:
    """One build of hdl/port_checks.v (signed and wide ports) for the conversion tests."""
    folder = BUILD_ROOT / "port_checks"
    sources = [HDL_DIR / "signed_ports.v", HDL_DIR / "wide_lanes.v", HDL_DIR / "port_checks.v"]
    return build_simulator(sources, folder / "build", toplevel="port_checks", parameters=WIDE_PORT)


def test_signed_ports_read_back(port_checks, case_dir: Path) -> None:
    run_cocotb(port_checks, HELPER_TESTS, case_dir, toplevel="port_checks", testcase="signed_values_keep_sign")


def test_wide_port_lanes(port_checks, case_dir: Path) -> None:
    run_cocotb(
        port_checks,
        HELPER_TESTS,
        case_dir,
        toplevel="port_checks",
        testcase="wide_port_lanes",
        extra_env={name: str(value) for name, value in WIDE_PORT.items()},
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
