"""cocotb tests of mon_top's stream and control behaviour on a small design (see test_mon_top.py).

MON2HLS_INPUTS and MON2HLS_OUTPUTS name the vector files of the design; every
test compares every output word with them.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge

from mon2hls.sim.cocotb_tb import (
    AP_DONE,
    AP_IDLE,
    AP_READY,
    MonTestbench,
    StreamDriver,
    pattern_pauses,
    random_pauses,
)

CYCLE_LIMIT = 200_000


def read_vectors(variable: str) -> list[list[int]]:
    text = Path(os.environ[variable]).read_text()
    return [[int(word, 16) for word in line.split()] for line in text.splitlines() if line.strip()]


def assert_outputs(received: list[list[int]], expected: list[list[int]]) -> None:
    assert len(received) == len(expected), f"{len(received)} inferences received, {len(expected)} expected"
    for index, (got, want) in enumerate(zip(received, expected)):
        assert got == want, f"inference {index}: received {[hex(w) for w in got]}, expected {[hex(w) for w in want]}"


@cocotb.test()
async def backpressure_1110(dut) -> None:
    """TREADY = 1,1,1,0 repeated on y_stream, back to back."""
    tb = MonTestbench(dut, driver=StreamDriver.COCOTBEXT)
    tb.set_backpressure(pattern_pauses([1, 1, 1, 0]))
    await tb.reset()
    result = await tb.run_batch(read_vectors("MON2HLS_INPUTS"), cycle_limit=CYCLE_LIMIT)
    assert_outputs(result.outputs, read_vectors("MON2HLS_OUTPUTS"))


@cocotb.test()
async def random_gaps_and_backpressure(dut) -> None:
    """TVALID dropped between input beats and TREADY dropped at random, back to back."""
    tb = MonTestbench(dut, driver=StreamDriver.COCOTBEXT)
    tb.set_input_gaps(random_pauses(0.4, seed=2))
    tb.set_backpressure(random_pauses(0.5, seed=3))
    await tb.reset()
    result = await tb.run_batch(read_vectors("MON2HLS_INPUTS"), cycle_limit=CYCLE_LIMIT)
    assert_outputs(result.outputs, read_vectors("MON2HLS_OUTPUTS"))


@cocotb.test()
async def single_starts(dut) -> None:
    """One ap_start per inference; ap_done and ap_ready read back set once, then clear."""
    tb = MonTestbench(dut, driver=StreamDriver.DIRECT)
    await tb.reset()
    assert await tb.read_control() & AP_IDLE
    inputs, expected = read_vectors("MON2HLS_INPUTS"), read_vectors("MON2HLS_OUTPUTS")
    for beats, want in zip(inputs[:4], expected[:4]):
        words, _ = await tb.run_inference(beats, cycle_limit=CYCLE_LIMIT)
        assert words == want
        status = await tb.read_control()
        assert status & AP_DONE
        assert status & AP_IDLE
        assert not await tb.read_control() & AP_DONE
    # ap_ready was set when the last inference finished and has been read since.
    assert not await tb.read_control() & AP_READY


@cocotb.test()
async def reset_mid_inference(dut) -> None:
    """A reset while the core iterates, then correct inferences."""
    tb = MonTestbench(dut, driver=StreamDriver.DIRECT)
    await tb.reset()
    inputs, expected = read_vectors("MON2HLS_INPUTS"), read_vectors("MON2HLS_OUTPUTS")

    # Feed a whole inference, wait until it is computing, and reset.
    await tb.start()
    for word in inputs[3]:
        dut.x_stream_TDATA.value = word
        dut.x_stream_TVALID.value = 1
        while True:
            await RisingEdge(dut.ap_clk)
            if dut.x_stream_TREADY.value:
                break
    dut.x_stream_TVALID.value = 0
    for _ in range(10):
        await RisingEdge(dut.ap_clk)
    assert not dut.y_stream_TVALID.value, "the core answered before the reset; use a longer inference"
    await tb.reset()

    assert await tb.read_control() & AP_IDLE
    result = await tb.run_batch(inputs[:3], cycle_limit=CYCLE_LIMIT)
    assert_outputs(result.outputs, expected[:3])
