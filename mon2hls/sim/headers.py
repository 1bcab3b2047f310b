"""Locate the C++ compiler and the ap_int / ap_fixed / hls_stream headers for C simulation.

Headers, in order of preference:

1. a Vitis HLS installation: ``$XILINX_HLS/include``, or ``../include`` next
   to the ``bin`` folder of ``vitis_hls`` on PATH;
2. the open-source copy of the headers in the hls4ml wheel
   (``hls4ml/templates/vivado/ap_types``), found without importing hls4ml,
   because importing it loads its whole converter stack.

The compiler is ``$CXX`` when set, else ``g++`` on PATH.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolchainError

__all__ = ["HeaderSet", "find_compiler", "find_headers"]

logger = logging.getLogger(__name__)

#: Headers the generated C++ includes; a folder qualifies only when it has them all.
REQUIRED_HEADERS = ("ap_int.h", "ap_fixed.h", "hls_stream.h")

_HEADERS_HELP = (
    "install the open-source headers with pip install 'mon2hls[hls]' (they ship in the hls4ml wheel), "
    "or set XILINX_HLS to a Vitis HLS installation"
)


@dataclass(frozen=True)
class HeaderSet:
    """A folder with the ap_int, ap_fixed and hls_stream headers, and where it came from."""

    include_dir: Path
    source: str  #: "vitis" or "hls4ml"

    @property
    def has_axi_sdata(self) -> bool:
        """True when the folder has ap_axi_sdata.h, so the stream beat is Vitis HLS's own type."""
        return (self.include_dir / "ap_axi_sdata.h").is_file()


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED_HEADERS)


def _vitis_candidates() -> list[Path]:
    candidates = []
    root = os.environ.get("XILINX_HLS")
    if root:
        candidates.append(Path(root) / "include")
    binary = shutil.which("vitis_hls")
    if binary:
        candidates.append(Path(binary).resolve().parent.parent / "include")
    return candidates


def _hls4ml_candidate() -> Path | None:
    try:
        spec = importlib.util.find_spec("hls4ml")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "templates" / "vivado" / "ap_types"
        if folder.is_dir():
            return folder
    return None


def find_headers(include_dir: str | os.PathLike[str] | None = None) -> HeaderSet:
    """Return the header folder to compile against: `include_dir` if given, else Vitis HLS, else hls4ml.

    Raises ToolchainError when no folder has every header of REQUIRED_HEADERS.
    """
    if include_dir is not None:
        folder = Path(include_dir)
        if not _complete(folder):
            missing = [name for name in REQUIRED_HEADERS if not (folder / name).is_file()]
            raise ToolchainError(
                f"header folder {folder} lacks {', '.join(missing)}; point it at a folder with "
                f"{', '.join(REQUIRED_HEADERS)}, or {_HEADERS_HELP}"
            )
        return HeaderSet(folder, "given")

    for folder in _vitis_candidates():
        if _complete(folder):
            logger.debug("using Vitis HLS headers in %s", folder)
            return HeaderSet(folder, "vitis")
        logger.debug("no complete header set in %s", folder)

    folder = _hls4ml_candidate()
    if folder is not None and _complete(folder):
        logger.debug("using the hls4ml copy of the ap_types headers in %s", folder)
        return HeaderSet(folder, "hls4ml")

    raise ToolchainError(f"ap_int.h, ap_fixed.h and hls_stream.h were not found; {_HEADERS_HELP}")


def find_compiler(compiler: str | os.PathLike[str] | None = None) -> str:
    """Return the path of the C++ compiler: `compiler` if given, else $CXX, else g++ on PATH."""
    name = str(compiler) if compiler is not None else os.environ.get("CXX") or "g++"
    path = shutil.which(name)
    if path is None:
        if compiler is not None:
            origin = "given"
        elif os.environ.get("CXX"):
            origin = "from $CXX"
        else:
            origin = "default"
        raise ToolchainError(
            f"C++ compiler {name!r} ({origin}) was not found; install g++ (for example apt-get install g++) "
            f"or set CXX to a C++14 compiler"
        )
    return path
