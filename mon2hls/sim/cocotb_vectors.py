"""cocotb test that streams a vector file through mon_top and records the output words.

Run by `mon2hls.sim.rtl.run_rtl` and by the hardware tests; the settings come
from environment variables, because the cocotb runner starts the simulator
in a child process:

- MON2HLS_INPUTS: vector file, one inference per line (8-digit hex words);
- MON2HLS_RESULTS: JSON file this test writes (output words and beat cycles,
  plus "error" when the simulation timed out);
- MON2HLS_CYCLE_LIMIT: cycles one inference may take (default 5,000,000);
- MON2HLS_PROGRESS: optional file that receives the number of finished inferences;
- MON2HLS_DRIVER: "direct" (default) or "cocotbext-axi";
- MON2HLS_AUTO_RESTART: "1" (default) streams back to back, "0" starts each inference;
- MON2HLS_BACKPRESSURE, MON2HLS_INPUT_GAPS: with the cocotbext-axi driver, a
  ready/valid pattern such as "1,1,1,0" or "random:0.3" (probability of a pause);
- MON2HLS_SEED: seed of the random patterns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb

from mon2hls.sim.cocotb_tb import (
    BatchResult,
    MonTestbench,
    SimulationTimeout,
    StreamDriver,
    pattern_pauses,
    random_pauses,
)


def read_vectors(path: Path) -> list[list[int]]:
    return [[int(word, 16) for word in line.split()] for line in path.read_text().splitlines() if line.strip()]


def parse_pauses(text: str, seed: int):
    """Turn "1,1,1,0" (1 = active) or "random:P" into pause values for a pause generator."""
    if text.startswith("random:"):
        return random_pauses(float(text.split(":", 1)[1]), seed)
    return pattern_pauses([int(value) for value in text.split(",")])


def write_results(path: Path, result: BatchResult, error: str | None) -> None:
    document = {
        "outputs": result.outputs,
        "first_input_cycles": result.first_input_cycles,
        "last_output_cycles": result.last_output_cycles,
        "start_cycle": result.start_cycle,
        "error": error,
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document))
    temporary.replace(path)


@cocotb.test()
async def stream_vectors(dut) -> None:
    inputs = read_vectors(Path(os.environ["MON2HLS_INPUTS"]))
    results_path = Path(os.environ["MON2HLS_RESULTS"])
    cycle_limit = int(os.environ.get("MON2HLS_CYCLE_LIMIT", "5000000"))
    progress_path = os.environ.get("MON2HLS_PROGRESS")
    driver = StreamDriver(os.environ.get("MON2HLS_DRIVER", "direct"))
    auto_restart = os.environ.get("MON2HLS_AUTO_RESTART", "1") == "1"
    seed = int(os.environ.get("MON2HLS_SEED", "1"))

    tb = MonTestbench(dut, driver=driver)
    if os.environ.get("MON2HLS_BACKPRESSURE"):
        tb.set_backpressure(parse_pauses(os.environ["MON2HLS_BACKPRESSURE"], seed))
    if os.environ.get("MON2HLS_INPUT_GAPS"):
        tb.set_input_gaps(parse_pauses(os.environ["MON2HLS_INPUT_GAPS"], seed + 1))
    await tb.reset()

    # About 200 progress updates per run: each one is a small file write.
    step = max(1, len(inputs) // 200)

    def report(finished: int) -> None:
        if progress_path and (finished % step == 0 or finished == len(inputs)):
            Path(progress_path).write_text(str(finished))

    result = BatchResult()
    try:
        result = await tb.run_batch(inputs, auto_restart=auto_restart, cycle_limit=cycle_limit, on_progress=report,
                                    into=result)
    except SimulationTimeout as error:
        write_results(results_path, result, str(error))
        raise
    write_results(results_path, result, None)
