"""A cocotb testbench for `mon_top`, the accelerator's Verilog top level.

It drives the ports the datapath contract fixes (Vitis HLS names): clock
`ap_clk`, active-low synchronous reset `ap_rst_n`, the AXI4-Lite control
slave `s_axi_control_*` (ap_ctrl_hs register map) and the AXI4-Stream ports
`x_stream_*` (input beats) and `y_stream_*` (k logit words, then the status
word with TLAST).

Two stream drivers exist, chosen when the testbench is built:

- `StreamDriver.COCOTBEXT`: cocotbext-axi's AxiStreamSource and AxiStreamSink,
  with pause generators for randomized backpressure (TREADY low) and input
  gaps (TVALID low). They wake up on every clock edge.
- `StreamDriver.DIRECT`: two lean coroutines that wake up once per accepted
  beat and sleep on a value change of TREADY or TVALID while the accelerator
  computes, which makes long batches (the whole MNIST test set) practical.

Cycle numbers count rising edges of `ap_clk` from time zero. A beat is
accepted at the rising edge where TVALID and TREADY are both high; the
values read right at a `RisingEdge(ap_clk)` are the ones sampled by that edge.

This module imports cocotb and can only run inside a simulation.
"""

from __future__ import annotations

import enum
import itertools
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import convert, get_sim_time
from cocotb.triggers import Event, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamSink, AxiStreamSource

__all__ = [
    "AP_DONE",
    "AP_IDLE",
    "AP_READY",
    "AP_START",
    "AUTO_RESTART",
    "CLOCK_PERIOD_NS",
    "BatchResult",
    "ControlRegister",
    "MonTestbench",
    "SimulationTimeout",
    "StreamDriver",
    "pattern_pauses",
    "random_pauses",
]

#: Clock period; only the cycle counts matter, the period fixes the time unit of the logs.
CLOCK_PERIOD_NS = 10


class ControlRegister(enum.IntEnum):
    """Offsets and bits of the ap_ctrl_hs register map on s_axi_control."""

    CTRL = 0x00
    GIE = 0x04
    IER = 0x08
    ISR = 0x0C


AP_START = 1 << 0
AP_DONE = 1 << 1
AP_IDLE = 1 << 2
AP_READY = 1 << 3
AUTO_RESTART = 1 << 7


class StreamDriver(enum.Enum):
    COCOTBEXT = "cocotbext-axi"
    DIRECT = "direct"


class SimulationTimeout(AssertionError):
    """The accelerator did not finish within the cycle limit; the message gives the last state seen.

    An AssertionError so that cocotb reports the test as failed, not errored.
    """


@dataclass
class BatchResult:
    """Output words of a batch of inferences and the cycles at which their beats were accepted."""

    #: Output words of each inference, split at TLAST.
    outputs: list[list[int]] = field(default_factory=list)
    #: Cycle of the first accepted input beat of each inference.
    first_input_cycles: list[int] = field(default_factory=list)
    #: Cycle of the last accepted output beat (TLAST) of each inference.
    last_output_cycles: list[int] = field(default_factory=list)
    #: Cycle at which the write that set ap_start completed.
    start_cycle: int = 0

    def latencies(self) -> list[int]:
        """Cycles from the first input beat to the last output beat of each inference, both included."""
        return [last - first + 1 for first, last in zip(self.first_input_cycles, self.last_output_cycles)]

    def intervals(self) -> list[int]:
        """Cycles between the last output beats of consecutive inferences (the first from ap_start)."""
        previous = [self.start_cycle, *self.last_output_cycles[:-1]]
        return [last - before for before, last in zip(previous, self.last_output_cycles)]


def current_cycle() -> int:
    """Number of the current clock cycle: rising edges since time zero."""
    return int(get_sim_time("ns") // CLOCK_PERIOD_NS)


def pattern_pauses(pattern: Sequence[int]) -> Iterator[bool]:
    """Pause values for a repeating ready or valid pattern: 1 = active, 0 = paused.

    `pattern_pauses([1, 1, 1, 0])` holds TREADY high three cycles in four.
    """
    return itertools.cycle(not bool(value) for value in pattern)


def random_pauses(probability: float, seed: int) -> Iterator[bool]:
    """Random pause values, True with the given probability, reproducible from the seed."""
    generator = random.Random(seed)
    while True:
        yield generator.random() < probability


class MonTestbench:
    """Clock, reset, control and stream drivers around a `mon_top` instance."""

    def __init__(self, dut, *, driver: StreamDriver = StreamDriver.DIRECT, name: str = "tb") -> None:
        self.dut = dut
        self.driver = driver
        self.log = logging.getLogger(f"cocotb.{name}")
        self.clock = dut.ap_clk

        # The Clock runs in the simulator's C++ side, so it costs no Python per cycle.
        cocotb.start_soon(Clock(self.clock, CLOCK_PERIOD_NS, unit="ns").start())

        self.control = AxiLiteMaster(
            AxiLiteBus.from_prefix(dut, "s_axi_control"), self.clock, dut.ap_rst_n, reset_active_level=False
        )

        # cocotb_bus matches signal names without regard to case, so the upper-case
        # Vitis HLS names (x_stream_TDATA) match cocotbext-axi's tdata, tvalid and so on.
        self.source: AxiStreamSource | None = None
        self.sink: AxiStreamSink | None = None
        if driver is StreamDriver.COCOTBEXT:
            self.source = AxiStreamSource(
                AxiStreamBus.from_prefix(dut, "x_stream"), self.clock, dut.ap_rst_n, reset_active_level=False
            )
            self.sink = AxiStreamSink(
                AxiStreamBus.from_prefix(dut, "y_stream"), self.clock, dut.ap_rst_n, reset_active_level=False
            )
        else:
            dut.x_stream_TVALID.value = 0
            dut.x_stream_TDATA.value = 0
            dut.x_stream_TLAST.value = 0
            dut.x_stream_TKEEP.value = 0xF
            dut.x_stream_TSTRB.value = 0xF
            dut.y_stream_TREADY.value = 0

        # Progress of the running batch, for timeout messages.
        self._sent_beats = 0
        self._received: list[int] = []
        self._finished = 0
        self._expected_count = 0

    # Reset and control.

    async def reset(self, cycles: int = 4) -> None:
        """Hold ap_rst_n low for `cycles` rising edges, then release it."""
        self.dut.ap_rst_n.value = 0
        for _ in range(cycles):
            await RisingEdge(self.clock)
        self.dut.ap_rst_n.value = 1
        await RisingEdge(self.clock)

    async def read_control(self) -> int:
        """Read the control register; this clears ap_done and ap_ready in the accelerator."""
        return int.from_bytes(await self.control.read(ControlRegister.CTRL, 4), "little")

    async def write_control(self, value: int) -> int:
        """Write the control register and return the cycle at which the write response arrived."""
        await self.control.write(ControlRegister.CTRL, value.to_bytes(4, "little"))
        return current_cycle()

    async def start(self, *, auto_restart: bool = False) -> int:
        """Set ap_start (and auto_restart when asked); return the cycle the write completed."""
        return await self.write_control(AP_START | (AUTO_RESTART if auto_restart else 0))

    async def stop_auto_restart(self) -> None:
        """Clear auto_restart so that the accelerator stops after the inference in progress."""
        await self.write_control(0)

    # Backpressure.

    def set_backpressure(self, pauses: Iterable[bool] | None) -> None:
        """Pause the output sink (TREADY low) on the cycles where `pauses` yields True."""
        self._require_cocotbext("backpressure")
        self.sink.set_pause_generator(None if pauses is None else iter(pauses))

    def set_input_gaps(self, pauses: Iterable[bool] | None) -> None:
        """Pause the input source (TVALID low) on the cycles where `pauses` yields True."""
        self._require_cocotbext("input gaps")
        self.source.set_pause_generator(None if pauses is None else iter(pauses))

    def _require_cocotbext(self, what: str) -> None:
        if self.driver is not StreamDriver.COCOTBEXT:
            raise ValueError(f"{what} needs driver=StreamDriver.COCOTBEXT, not {self.driver}")

    # Inferences.

    async def run_inference(self, beats: Sequence[int], *, cycle_limit: int) -> tuple[list[int], int]:
        """Run one inference started by ap_start; return its output words and its latency in cycles.

        The latency counts from the first accepted input beat to the last output beat, both included.
        """
        result = await self.run_batch([beats], auto_restart=False, cycle_limit=cycle_limit)
        return result.outputs[0], result.latencies()[0]

    async def run_batch(
        self,
        inputs: Sequence[Sequence[int]],
        *,
        auto_restart: bool = True,
        cycle_limit: int,
        on_progress: Callable[[int], None] | None = None,
        into: BatchResult | None = None,
    ) -> BatchResult:
        """Stream many inferences through the accelerator and collect their output words.

        With auto_restart the accelerator is started once and runs the inferences back to
        back; auto_restart is cleared once the last inference has begun. Without it, each
        inference gets its own ap_start after the previous one has ended.

        `cycle_limit` bounds each inference: when no inference finishes within that many
        cycles, SimulationTimeout reports the state reached. The words received so far
        stay in `into` when it is given.
        """
        self._sent_beats = 0
        self._received = []
        self._finished = 0
        self._expected_count = len(inputs)
        result = into if into is not None else BatchResult()
        progress = Event()

        def finished_one(count: int) -> None:
            progress.set()
            if on_progress is not None:
                on_progress(count)

        async def run() -> None:
            try:
                if auto_restart:
                    result.start_cycle = await self.start(auto_restart=True)
                    collector = cocotb.start_soon(self._collect(len(inputs), result, finished_one))
                    await self._send_all(inputs, result, stop_before_last=True)
                    await collector
                else:
                    for index, beats in enumerate(inputs):
                        start = await self.start()
                        if index == 0:
                            result.start_cycle = start
                        collector = cocotb.start_soon(self._collect(1, result, finished_one))
                        await self._send_all([beats], result, stop_before_last=False)
                        await collector
            finally:
                progress.set()

        task = cocotb.start_soon(run())
        waited_since = current_cycle()
        while not task.done():
            try:
                await with_timeout(progress.wait(), cycle_limit * CLOCK_PERIOD_NS, "ns")
            except SimTimeoutError:
                task.cancel()
                raise SimulationTimeout(self._describe_timeout(current_cycle() - waited_since)) from None
            progress.clear()
            waited_since = current_cycle()
        # Re-raise what the batch raised, if anything.
        task.result()
        return result

    def _describe_timeout(self, cycles: int) -> str:
        if self.driver is StreamDriver.DIRECT:
            last = f"0x{self._received[-1]:08x}" if self._received else "none"
            output = f"{len(self._received)} output beats of the current inference received (last word {last})"
        else:
            # The cocotbext-axi sink only hands over whole frames.
            output = f"{self.sink.count()} finished frames waiting in the sink"
        return (
            f"the accelerator did not finish within {cycles} cycles: {self._finished} of "
            f"{self._expected_count} inferences finished, {self._sent_beats} input beats accepted, "
            f"{output}; check TREADY/TVALID of x_stream and y_stream or raise the cycle limit"
        )

    async def _send_all(self, inputs: Sequence[Sequence[int]], result: BatchResult, *, stop_before_last: bool) -> None:
        if self.driver is StreamDriver.COCOTBEXT:
            await self._send_cocotbext(inputs, result, stop_before_last=stop_before_last)
        else:
            await self._send_direct(inputs, result, stop_before_last=stop_before_last)

    async def _collect(self, count: int, result: BatchResult, on_progress: Callable[[int], None]) -> None:
        if self.driver is StreamDriver.COCOTBEXT:
            await self._collect_cocotbext(count, result, on_progress)
        else:
            await self._collect_direct(count, result, on_progress)

    # The cocotbext-axi driver.

    async def _send_cocotbext(self, inputs, result: BatchResult, *, stop_before_last: bool) -> None:
        for index, beats in enumerate(inputs):
            payload = b"".join(int(word).to_bytes(4, "little") for word in beats)
            await self.source.send(payload)

            # The source dequeues a frame when it drives its first beat, which may
            # still wait for TREADY: the first accepted beat is found by watching the bus.
            await self._wait_input_handshake()
            result.first_input_cycles.append(current_cycle())
            self._sent_beats += 1
            if stop_before_last and index == len(inputs) - 1:
                cocotb.start_soon(self.stop_auto_restart())
            await self.source.wait()
            self._sent_beats += len(beats) - 1

    async def _wait_input_handshake(self) -> None:
        edge = RisingEdge(self.clock)
        while True:
            await edge
            if self.dut.x_stream_TVALID.value and self.dut.x_stream_TREADY.value:
                return

    async def _collect_cocotbext(self, count: int, result: BatchResult, on_progress) -> None:
        for _ in range(count):
            frame = await self.sink.recv(compact=False)
            words = [
                int.from_bytes(bytes(frame.tdata[offset : offset + 4]), "little")
                for offset in range(0, len(frame.tdata), 4)
            ]
            result.outputs.append(words)
            result.last_output_cycles.append(round(convert(frame.sim_time_end, "step", to="ns") / CLOCK_PERIOD_NS))
            self._finished += 1
            on_progress(self._finished)

    # The direct driver: one wake-up per accepted beat.

    async def _send_direct(self, inputs, result: BatchResult, *, stop_before_last: bool) -> None:
        dut = self.dut
        edge = RisingEdge(self.clock)
        ready_rise = RisingEdge(dut.x_stream_TREADY)
        tdata, tvalid, tlast, tready = dut.x_stream_TDATA, dut.x_stream_TVALID, dut.x_stream_TLAST, dut.x_stream_TREADY
        for index, beats in enumerate(inputs):
            last_beat = len(beats) - 1
            for position, word in enumerate(beats):
                tdata.value = int(word)
                tlast.value = int(position == last_beat)
                tvalid.value = 1
                while True:
                    await edge
                    if tready.value:
                        break
                    # The accelerator is busy: sleep until TREADY rises, then take the next edge.
                    await ready_rise
                self._sent_beats += 1
                if position == 0:
                    result.first_input_cycles.append(current_cycle())
                    if stop_before_last and index == len(inputs) - 1:
                        cocotb.start_soon(self.stop_auto_restart())
        tvalid.value = 0
        tlast.value = 0

    async def _collect_direct(self, count: int, result: BatchResult, on_progress) -> None:
        dut = self.dut
        edge = RisingEdge(self.clock)
        valid_rise = RisingEdge(dut.y_stream_TVALID)
        tdata, tvalid, tlast = dut.y_stream_TDATA, dut.y_stream_TVALID, dut.y_stream_TLAST
        dut.y_stream_TREADY.value = 1
        for _ in range(count):
            self._received = []
            while True:
                await edge
                if not tvalid.value:
                    await valid_rise
                    continue
                self._received.append(tdata.value.to_unsigned())
                if tlast.value:
                    break
            result.outputs.append(self._received)
            result.last_output_cycles.append(current_cycle())
            self._finished += 1
            on_progress(self._finished)
        dut.y_stream_TREADY.value = 0
