"""RTL simulation of a built accelerator: Verilator through the cocotb runner.

`run_rtl(out_folder)` builds `rtl/` with Verilator, streams every inference of
`vectors/inputs.hex` through `mon_top` with the testbench of
`mon2hls.sim.cocotb_tb`, and compares each output word with
`vectors/outputs.hex`. The simulation runs in a child process (the cocotb
runner starts the Verilator executable), which writes the words it received
to a JSON file that this module reads back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, SimulationError
from .verilator import find_verilator, verilator_environment

__all__ = [
    "DEFAULT_CYCLE_LIMIT",
    "TOP_MODULE",
    "Mismatch",
    "RtlResult",
    "build_simulator",
    "read_hex_lines",
    "rtl_sources",
    "run_cocotb",
    "run_rtl",
    "simulation_environment",
]

logger = logging.getLogger(__name__)

#: Name of the accelerator's top-level module.
TOP_MODULE = "mon_top"

#: Cycles one inference may take before the testbench gives up, when nothing better is known.
DEFAULT_CYCLE_LIMIT = 5_000_000

#: cocotb test module that streams a vector file through mon_top.
VECTORS_TEST_MODULE = "mon2hls.sim.cocotb_vectors"

#: Verilator options for every build. Warnings stay visible in the build log
#: but do not stop the build; the C++ is optimized for simulation speed.
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-DECLFILENAME", "-Wno-UNUSEDSIGNAL", "-O3")


@dataclass(frozen=True)
class Mismatch:
    """One inference whose output words differ from the expected ones."""

    index: int
    expected: tuple[int, ...]
    received: tuple[int, ...]

    def describe(self) -> str:
        expected = " ".join(f"{word:08x}" for word in self.expected)
        received = " ".join(f"{word:08x}" for word in self.received)
        return f"inference {self.index}: expected {expected}, received {received}"

    def to_dict(self) -> dict[str, object]:
        return {
            "inference": self.index,
            "expected": [f"{word:08x}" for word in self.expected],
            "received": [f"{word:08x}" for word in self.received],
        }


@dataclass(frozen=True)
class RtlResult:
    """Outcome of an RTL simulation against the golden output words."""

    matched: int
    total: int
    #: Cycles of each inference streamed back to back: the interval between the
    #: last output beats of consecutive inferences. The first inference counts
    #: from the cycle before its first input beat, the cycle in which the idle
    #: core sees ap_start.
    cycles: tuple[int, ...]
    #: Cycles of each inference from its first input beat to its last output beat.
    latencies: tuple[int, ...]
    #: Iteration count of each inference, from its status word.
    iterations: tuple[int, ...]
    #: The first mismatching inferences (at most MAX_REPORTED_MISMATCHES).
    mismatches: tuple[Mismatch, ...]
    #: Simulator log file.
    log: Path
    wall_seconds: float

    @property
    def passed(self) -> bool:
        return self.matched == self.total

    @property
    def mean_cycles(self) -> float:
        return sum(self.cycles) / len(self.cycles) if self.cycles else 0.0


MAX_REPORTED_MISMATCHES = 20


@contextlib.contextmanager
def simulation_environment() -> Iterator[None]:
    """Make `verilator` resolve to a usable Verilator inside the block (see find_verilator)."""
    install = find_verilator()
    logger.debug("using Verilator %s from %s (%s)", install.version_text, install.executable, install.origin)
    saved = dict(os.environ)
    os.environ.update(verilator_environment(install))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build_simulator(
    sources: Sequence[Path],
    build_dir: Path,
    *,
    toplevel: str = TOP_MODULE,
    parameters: Mapping[str, object] | None = None,
    includes: Sequence[Path] = (),
    log_file: Path | None = None,
):
    """Compile `sources` with Verilator into `build_dir` and return the cocotb runner.

    Raises ToolchainError when Verilator is missing and SimulationError when the build fails.
    """
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    log_file = Path(log_file) if log_file is not None else build_dir / "build.log"
    runner = get_runner("verilator")
    with simulation_environment():
        try:
            runner.build(
                sources=[Path(source) for source in sources],
                hdl_toplevel=toplevel,
                build_dir=build_dir,
                parameters=dict(parameters or {}),
                includes=[Path(include) for include in includes],
                build_args=list(VERILATOR_ARGS),
                timescale=("1ns", "1ps"),
                log_file=log_file,
            )
        except (RuntimeError, SystemExit) as error:
            raise SimulationError(
                f"Verilator could not build {toplevel} from {len(sources)} source files ({error}); "
                f"see {log_file}"
            ) from None
    return runner


def run_cocotb(
    runner,
    test_module: str,
    test_dir: Path,
    *,
    toplevel: str = TOP_MODULE,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | Sequence[str] | None = None,
    test_filter: str | None = None,
    log_file: Path | None = None,
    seed: int | None = None,
) -> Path:
    """Run the cocotb tests of `test_module` on a built simulator; return the xUnit results file.

    Raises SimulationError when a test failed or the simulator stopped abnormally.
    """
    from cocotb_tools.check_results import get_results

    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    results_file = (test_dir / "results.xml").resolve()
    log_file = Path(log_file) if log_file is not None else test_dir / "sim.log"
    with simulation_environment():
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=toplevel,
                test_dir=test_dir,
                extra_env=dict(extra_env or {}),
                testcase=testcase,
                test_filter=test_filter,
                results_xml=str(results_file),
                log_file=log_file,
                seed=seed,
            )
        except SystemExit:
            # The runner exits the process when a cocotb test failed and it runs under pytest.
            pass

    try:
        tests, failed = get_results(results_file)
    except RuntimeError:
        raise SimulationError(f"the simulation of {toplevel} stopped abnormally; see {log_file}") from None
    if failed:
        details = "\n".join(_failure_messages(results_file))
        raise SimulationError(f"{failed} of {tests} cocotb tests of {test_module} failed; see {log_file}\n{details}")
    if tests == 0:
        raise SimulationError(f"no cocotb test of {test_module} ran (test case {testcase!r}, filter {test_filter!r}); see {log_file}")
    return results_file


def _failure_messages(results_file: Path, limit: int = 3) -> list[str]:
    """Name and first lines of the message of each failed test in an xUnit results file."""
    from xml.etree import ElementTree

    messages = []
    for testcase in ElementTree.parse(results_file).getroot().iter("testcase"):
        for problem in [*testcase.findall("failure"), *testcase.findall("error")]:
            text = (problem.get("message") or "").strip().splitlines()
            messages.append(f"{testcase.get('name')}: {' / '.join(text[:4])}")
    return messages[:limit]


def read_hex_lines(path: Path) -> list[list[int]]:
    """Read a vector file: one inference per line, 32-bit words as hexadecimal separated by spaces."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([int(word, 16) for word in line.split()])
        except ValueError:
            raise ConfigError(f"{path}:{number}: expected hexadecimal words, got {line[:60]!r}") from None
    return rows


def rtl_sources(rtl_folder: Path) -> list[Path]:
    """List the Verilog sources of a built design: its file list when present, else every .v and .sv file.

    A file list (`*.f` or `filelist.txt`) names one source per line, relative to rtl/;
    lines that start with `#` or `//` and options that start with `-` are skipped.
    """
    rtl_folder = Path(rtl_folder)
    lists = sorted(rtl_folder.glob("*.f")) + sorted(rtl_folder.glob("filelist*.txt"))
    if lists:
        sources = []
        for line in lists[0].read_text().splitlines():
            entry = line.strip()
            if not entry or entry.startswith(("#", "//", "-")):
                continue
            path = Path(entry) if Path(entry).is_absolute() else rtl_folder / entry
            if not path.is_file():
                raise ConfigError(f"{lists[0]} names {entry}, which does not exist in {rtl_folder}")
            sources.append(path)
        return sources
    return sorted(path for path in rtl_folder.iterdir() if path.suffix in (".v", ".sv"))


def _data_files(rtl_folder: Path) -> list[Path]:
    """Files of rtl/ that the simulation reads at run time: everything but sources and file lists."""
    skipped = {".v", ".sv", ".vh", ".svh", ".f"}
    return sorted(
        path
        for path in rtl_folder.iterdir()
        if path.is_file() and path.suffix not in skipped and not path.name.startswith("filelist")
    )


def _check_folder(out_folder: Path) -> tuple[Path, Path, Path]:
    rtl_folder = out_folder / "rtl"
    inputs = out_folder / "vectors" / "inputs.hex"
    outputs = out_folder / "vectors" / "outputs.hex"
    if not rtl_folder.is_dir():
        raise ConfigError(
            f"{out_folder} has no rtl/ folder; build it with a Verilog target (mon2hls build ... -o {out_folder})"
        )
    for path in (inputs, outputs):
        if not path.is_file():
            raise ConfigError(f"{path} not found; `mon2hls build` writes the test vectors into vectors/")
    return rtl_folder, inputs, outputs


def _watch_progress(progress_file: Path, total: int, stop: threading.Event, show: bool) -> None:
    from tqdm import tqdm

    with tqdm(total=total, unit="inference", desc="RTL simulation", disable=not show, file=sys.stderr) as bar:
        while not stop.wait(0.5):
            with contextlib.suppress(OSError, ValueError):
                bar.update(int(progress_file.read_text() or 0) - bar.n)
        with contextlib.suppress(OSError, ValueError):
            bar.update(int(progress_file.read_text() or 0) - bar.n)


def run_rtl(
    out_folder: Path,
    *,
    timeout_cycles: int | None = None,
    limit: int | None = None,
    build_dir: Path | None = None,
    progress: bool | None = None,
) -> RtlResult:
    """Simulate `out_folder/rtl` on `out_folder/vectors` and compare every output word.

    The inferences run back to back with auto_restart, with TREADY held high and
    the next input always ready, so the measured cycles are the accelerator's own.
    `timeout_cycles` bounds each inference (default DEFAULT_CYCLE_LIMIT); `limit`
    keeps only the first inferences of the vector file. Raises ConfigError for a
    folder without rtl/ or vectors, ToolchainError without Verilator and
    SimulationError when the build fails or an inference times out.
    """
    out_folder = Path(out_folder)
    rtl_folder, inputs_file, outputs_file = _check_folder(out_folder)
    find_verilator()
    inputs = read_hex_lines(inputs_file)
    expected = read_hex_lines(outputs_file)
    if len(inputs) != len(expected):
        raise ConfigError(
            f"{inputs_file} has {len(inputs)} inferences but {outputs_file} has {len(expected)}; rebuild the vectors"
        )
    if limit is not None:
        inputs, expected = inputs[:limit], expected[:limit]
    if not inputs:
        raise ConfigError(f"{inputs_file} contains no inference; rebuild the vectors with mon2hls build")
    sources = rtl_sources(rtl_folder)
    if not sources:
        raise ConfigError(f"no Verilog source (.v or .sv) found in {rtl_folder}; rebuild it with mon2hls build")

    work = Path(build_dir) if build_dir is not None else out_folder / "build" / "rtl_sim"
    work.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    logger.info("building %s with Verilator in %s", TOP_MODULE, work)
    runner = build_simulator(sources, work / "verilator", includes=[rtl_folder])

    selected = work / "inputs.hex"
    selected.write_text("".join(" ".join(f"{word:08x}" for word in row) + "\n" for row in inputs))
    results_file = work / "received.json"
    progress_file = work / "progress.txt"
    for stale in (results_file, progress_file):
        stale.unlink(missing_ok=True)
    environment = {
        "MON2HLS_INPUTS": str(selected.resolve()),
        "MON2HLS_RESULTS": str(results_file.resolve()),
        "MON2HLS_PROGRESS": str(progress_file.resolve()),
        "MON2HLS_CYCLE_LIMIT": str(timeout_cycles or DEFAULT_CYCLE_LIMIT),
    }

    # $readmemh resolves relative file names against the simulator's working
    # folder, so the memory images of rtl/ go beside the run.
    run_dir = work / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for path in _data_files(rtl_folder):
        shutil.copyfile(path, run_dir / path.name)

    show = sys.stderr.isatty() if progress is None else progress
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_progress, args=(progress_file, len(inputs), stop, show), daemon=True)
    watcher.start()
    logger.info("simulating %d inferences", len(inputs))
    log_file = work / "sim.log"
    try:
        run_cocotb(runner, VECTORS_TEST_MODULE, run_dir, extra_env=environment, log_file=log_file)
    except SimulationError:
        received = _read_received(results_file)
        if received.get("error"):
            raise SimulationError(f"{received['error']} (log: {log_file})") from None
        raise
    finally:
        stop.set()
        watcher.join()

    received = _read_received(results_file)
    return _compare(expected, received, log_file, time.perf_counter() - begin)


def _read_received(results_file: Path) -> dict:
    try:
        return json.loads(results_file.read_text())
    except (OSError, ValueError):
        return {}


def _compare(expected: list[list[int]], received: dict, log_file: Path, wall_seconds: float) -> RtlResult:
    outputs = received.get("outputs", [])
    mismatches = []
    matched = 0
    for index, words in enumerate(expected):
        got = outputs[index] if index < len(outputs) else []
        if got == words:
            matched += 1
        elif len(mismatches) < MAX_REPORTED_MISMATCHES:
            mismatches.append(Mismatch(index, tuple(words), tuple(got)))

    first = received.get("first_input_cycles", [])
    last = received.get("last_output_cycles", [])
    # The write response of ap_start arrives a design-dependent number of cycles
    # after the core sees it, so the first interval starts from the input beat.
    # NOTE: this assumes a core that takes its first input beat in the cycle after
    # it sees ap_start, as the mon2hls core does; Vitis HLS output may differ by a
    # few cycles on the first inference only.
    previous = [first[0] - 2, *last[:-1]] if first else []
    return RtlResult(
        matched=matched,
        total=len(expected),
        cycles=tuple(end - before for before, end in zip(previous, last)),
        latencies=tuple(end - start + 1 for start, end in zip(first, last)),
        iterations=tuple(words[-1] & 0xFFFF for words in outputs if words),
        mismatches=tuple(mismatches),
        log=log_file,
        wall_seconds=wall_seconds,
    )

