"""C simulation of the generated HLS C++ with g++: the testbench on the test vectors, or a ctypes library.

`run_csim` compiles ``hls/<project>.cpp`` with ``hls/tb_<project>.cpp`` and
runs the testbench on ``vectors/inputs.hex`` and ``vectors/outputs.hex``; the
testbench compares every output word. `CompiledDesign` compiles the same
top-level function into a shared library with a C entry point (as hls4ml
does with its compiled models), so Python can run the C++ on any batch and
compare it with the golden model.

Both compile in a temporary folder and keep the result in a cache keyed by
the SHA-256 of the sources, the compiler and the flags, so the same design is
compiled once. The cache lives in $MON2HLS_CACHE_DIR, else
$XDG_CACHE_HOME/mon2hls/csim, else ~/.cache/mon2hls/csim.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, SimulationError, ToolchainError
from ..fixedpoint import DatapathDesign, FixedFormat
from ..fixedpoint.stream import pack_inputs, unpack_outputs
from .headers import HeaderSet, find_compiler, find_headers

__all__ = ["CompiledDesign", "CsimResult", "Mismatch", "cache_dir", "compile_flags", "run_csim"]

logger = logging.getLogger(__name__)

#: Flags of every C simulation build. ap_int needs C++11 at least; -isystem
#: (added per build) silences warnings from the vendor headers. HLS pragmas
#: and loop labels mean nothing to g++, and g++ 12 reports the ap_private
#: default constructors (which leave their value unset on purpose) as
#: uninitialized uses at the inlined call sites, where -isystem cannot reach.
BASE_FLAGS = (
    "-O2",
    "-std=c++14",
    "-Wall",
    "-Wno-unknown-pragmas",
    "-Wno-unused-label",
    "-Wno-uninitialized",
    "-Wno-maybe-uninitialized",
)
#: Seconds a compilation may take before it is abandoned.
COMPILE_TIMEOUT = 900
#: Seconds the testbench may run.
RUN_TIMEOUT = 3600
#: Inferences per call into the shared library, so progress can be shown.
BATCH_CHUNK = 500

_MATCHED = re.compile(r"^matched (\d+)/(\d+)$", re.MULTILINE)
_MISMATCH = re.compile(r"^mismatch inference (\d+) word (\d+): (?:got ([0-9a-f]{8})|missing) expected ([0-9a-f]{8})")


@dataclass(frozen=True)
class Mismatch:
    """One output word where the C++ disagreed with the expected word (`got` is None when it was missing)."""

    inference: int
    word: int
    got: int | None
    expected: int


@dataclass(frozen=True)
class CsimResult:
    """Outcome of the C testbench: words matched out of words compared, the reported mismatches and the log.

    The testbench reports at most its first 20 mismatching words, so
    `mismatches` may be shorter than total - matched.
    """

    matched: int
    total: int
    mismatches: list[Mismatch] = field(default_factory=list)
    log: str = ""

    @property
    def passed(self) -> bool:
        return self.total > 0 and self.matched == self.total


def cache_dir() -> Path:
    """Folder of compiled testbenches and libraries."""
    explicit = os.environ.get("MON2HLS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mon2hls" / "csim"


def compile_flags(headers: HeaderSet, hls_dir: Path) -> list[str]:
    """Return the compiler flags for the sources in `hls_dir` against `headers`."""
    return [*BASE_FLAGS, "-isystem", str(headers.include_dir), "-I", str(hls_dir)]


@cache
def _compiler_identity(compiler: str) -> str:
    """First line of `compiler --version`, part of the cache key."""
    try:
        result = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ToolchainError(f"C++ compiler {compiler} does not run ({error}); set CXX to a working compiler") from None
    return (result.stdout or result.stderr).splitlines()[0] if (result.stdout or result.stderr) else compiler


def _hls_folder(path: Path) -> Path:
    """Accept a build folder (with hls/) or the hls folder itself."""
    path = Path(path)
    if (path / "hls" / "mon_config.h").is_file():
        return path / "hls"
    if (path / "mon_config.h").is_file():
        return path
    raise SimulationError(f"no generated HLS sources in {path}: expected {path / 'hls' / 'mon_config.h'}; run mon2hls build first")


def _project_name(hls_dir: Path) -> str:
    testbenches = sorted(p.name[3:-4] for p in hls_dir.glob("tb_*.cpp"))
    names = [name for name in testbenches if (hls_dir / f"{name}.cpp").is_file()]
    if len(names) != 1:
        raise SimulationError(
            f"expected exactly one testbench tb_<name>.cpp with its <name>.cpp in {hls_dir}, found {names or 'none'}"
        )
    return names[0]


def _compile(
    kind: str, hls_dir: Path, sources: list[Path], extra_flags: list[str], compiler: str, headers: HeaderSet
) -> Path:
    """Compile `sources` into the cache (once per content) and return the output path."""
    flags = compile_flags(headers, hls_dir) + extra_flags
    digest = hashlib.sha256()
    digest.update(kind.encode())
    digest.update(_compiler_identity(compiler).encode())
    digest.update(" ".join(flags[:len(BASE_FLAGS)] + extra_flags).encode())
    digest.update(str(headers.include_dir).encode())
    for path in sorted(hls_dir.glob("*.h")) + sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    key = digest.hexdigest()[:24]
    suffix = ".so" if kind == "library" else ""
    target = cache_dir() / f"{kind}-{key}{suffix}"
    if target.is_file():
        logger.debug("using the cached %s %s", kind, target)
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mon2hls-csim-") as build:
        output = Path(build) / f"out{suffix}"
        command = [compiler, *flags, *(str(s) for s in sources), "-o", str(output)]
        logger.info("compiling the HLS C++ (%s) with %s", kind, Path(compiler).name)
        logger.debug("command: %s", " ".join(command))
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, cwd=build, check=False
            )
        except subprocess.TimeoutExpired:
            raise ToolchainError(f"compiling {hls_dir} took more than {COMPILE_TIMEOUT} s and was stopped") from None
        except OSError as error:
            raise ToolchainError(f"C++ compiler {compiler} failed to start ({error}); set CXX to a working compiler") from None
        if result.returncode != 0:
            tail = "\n".join(result.stderr.splitlines()[-30:])
            raise ToolchainError(f"compiling the HLS C++ in {hls_dir} failed (exit {result.returncode}):\n{tail}")
        if result.stderr.strip():
            logger.debug("compiler messages:\n%s", result.stderr)
        # Move into place atomically, so a parallel run never loads half a file.
        staged = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        staged.write_bytes(output.read_bytes())
        staged.chmod(0o755)
        os.replace(staged, target)
    return target


def _parse_report(log: str) -> tuple[int, int, list[Mismatch]]:
    found = _MATCHED.findall(log)
    if not found:
        raise SimulationError(f"the C testbench printed no 'matched M/T' line; its output was:\n{log[-2000:]}")
    matched, total = (int(v) for v in found[-1])
    mismatches = []
    for inference, word, got, expected in _MISMATCH.findall(log):
        mismatches.append(Mismatch(int(inference), int(word), int(got, 16) if got else None, int(expected, 16)))
    return matched, total, mismatches


def run_csim(
    out_folder: str | os.PathLike[str],
    *,
    compiler: str | os.PathLike[str] | None = None,
    headers: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> CsimResult:
    """Compile the testbench of ``out_folder/hls`` and run it on ``out_folder/vectors``.

    `compiler` defaults to $CXX or g++; `headers` to the folder `find_headers`
    picks. `limit` runs only the first inferences. Mismatches found by the
    testbench are returned in the result, so the caller decides what they
    mean. Setup errors (no compiler, no headers, no vectors) raise.
    """
    # The compiler and the testbench run in other working folders, so every
    # path handed to them must be absolute.
    out_folder = Path(out_folder).resolve()
    hls_dir = _hls_folder(out_folder)
    vectors = hls_dir.parent / "vectors"
    for name in ("inputs.hex", "outputs.hex"):
        if not (vectors / name).is_file():
            raise DataError(f"test vectors not found: {vectors / name} is missing; run mon2hls build to write them")
    compiler_path = find_compiler(compiler)
    header_set = find_headers(headers)
    name = _project_name(hls_dir)

    executable = _compile(
        "testbench", hls_dir, [hls_dir / f"{name}.cpp", hls_dir / f"tb_{name}.cpp"], [], compiler_path, header_set
    )
    command = [str(executable), str(vectors / "inputs.hex"), str(vectors / "outputs.hex")]
    if limit is not None:
        command.append(str(int(limit)))
    logger.info("running the C testbench on %s", vectors)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=hls_dir, check=False)
    except subprocess.TimeoutExpired:
        raise SimulationError(f"the C testbench ran longer than {RUN_TIMEOUT} s and was stopped") from None
    log = result.stdout + result.stderr
    if result.returncode not in (0, 1):
        raise SimulationError(f"the C testbench failed (exit {result.returncode}):\n{log[-2000:]}")
    matched, total, mismatches = _parse_report(result.stdout)
    if result.returncode == 1 and matched == total and total > 0:
        raise SimulationError(f"the C testbench reported an error although every word matched:\n{log[-2000:]}")
    return CsimResult(matched=matched, total=total, mismatches=mismatches, log=log)


@dataclass(frozen=True)
class _StreamLayout:
    """The stream layout that pack_inputs and unpack_outputs read, recovered from mon_config.h."""

    input_format: FixedFormat
    input_features: int
    inputs_per_beat: int
    input_beats: int
    output_beats: int
    classes: int


def _read_layout(hls_dir: Path) -> _StreamLayout:
    text = (hls_dir / "mon_config.h").read_text(encoding="utf-8")

    def constant(name: str) -> int:
        match = re.search(rf"static const int {name} = (\d+);", text)
        if match is None:
            raise SimulationError(f"{hls_dir / 'mon_config.h'} does not define {name}; regenerate the HLS sources")
        return int(match.group(1))

    match = re.search(r"typedef ap_(u?)int<(\d+)> input_t;", text)
    if match is None:
        raise SimulationError(f"{hls_dir / 'mon_config.h'} does not define input_t; regenerate the HLS sources")
    width, signed = int(match.group(2)), match.group(1) == ""
    return _StreamLayout(
        input_format=FixedFormat(width, width, signed=signed),
        input_features=constant("input_features"),
        inputs_per_beat=constant("inputs_per_beat"),
        input_beats=constant("input_beats"),
        output_beats=constant("output_beats"),
        classes=constant("classes"),
    )


class CompiledDesign:
    """The generated C++ of a design compiled into a shared library, callable on batches of input codes.

    `source` is a `DatapathDesign` (rendered with default back-end options
    into a temporary folder) or a folder written by `write_hls` (the build
    folder or its hls/ folder). Every inference runs through ``mon_top``.
    """

    def __init__(
        self,
        source: DatapathDesign | str | os.PathLike[str],
        *,
        compiler: str | os.PathLike[str] | None = None,
        headers: str | os.PathLike[str] | None = None,
    ) -> None:
        compiler_path = find_compiler(compiler)
        header_set = find_headers(headers)
        entry = files("mon2hls.templates").joinpath("hls", "sim", "mon_batch.cpp")

        with tempfile.TemporaryDirectory(prefix="mon2hls-hls-") as scratch:
            if isinstance(source, DatapathDesign):
                from ..backends.hls import write_hls

                write_hls(source, Path(scratch))
                hls_dir = Path(scratch) / "hls"
                self.layout: Any = source
            else:
                hls_dir = _hls_folder(Path(source).resolve())
                self.layout = _read_layout(hls_dir)
            name = _project_name(hls_dir)
            entry_path = Path(scratch) / "mon_batch.cpp"
            entry_path.write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
            self.path = _compile(
                "library",
                hls_dir,
                [hls_dir / f"{name}.cpp", entry_path],
                ["-shared", "-fPIC", "-fvisibility=hidden"],
                compiler_path,
                header_set,
            )

        try:
            self._library = ctypes.CDLL(str(self.path))
        except OSError as error:
            raise ToolchainError(f"cannot load the compiled design {self.path}: {error}") from None
        self._run = self._library.mon_run_batch
        self._run.restype = ctypes.c_long
        self._run.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]
        self.input_beats = int(self._library.mon_input_beats())
        self.output_beats = int(self._library.mon_output_beats())
        if (self.input_beats, self.output_beats) != (self.layout.input_beats, self.layout.output_beats):
            raise SimulationError(
                f"compiled library {self.path} streams {self.input_beats} / {self.output_beats} words, "
                f"the design {self.layout.input_beats} / {self.layout.output_beats}; clear {cache_dir()}"
            )

    def run_words(self, input_words: Any, progress: bool = False) -> np.ndarray:
        """Run packed input words (B x input_beats) and return the output words (B x output_beats, uint32)."""
        words = np.ascontiguousarray(np.asarray(input_words, dtype=np.uint32))
        if words.ndim != 2 or words.shape[1] != self.input_beats:
            raise DataError(f"input words must be a B x {self.input_beats} array, not shape {words.shape}")
        batch = words.shape[0]
        out = np.zeros((batch, self.output_beats), dtype=np.uint32)

        bar = None
        if progress and sys.stderr.isatty() and batch > BATCH_CHUNK:
            from tqdm import tqdm

            bar = tqdm(total=batch, desc="C simulation", unit="input", file=sys.stderr)
        for start in range(0, batch, BATCH_CHUNK):
            stop = min(start + BATCH_CHUNK, batch)
            chunk_in = words[start:stop]
            chunk_out = out[start:stop]
            done = self._run(chunk_in.ctypes.data, stop - start, chunk_out.ctypes.data)
            if done != stop - start:
                raise SimulationError(
                    f"mon_top did not produce {self.output_beats} output words for inference {start - done - 1}"
                )
            if bar is not None:
                bar.update(stop - start)
        if bar is not None:
            bar.close()
        return out

    def run(self, x_codes: Any, progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run input codes (B x d) and return (logit codes, iteration counts, converged flags)."""
        words = pack_inputs(self.layout, x_codes)
        return unpack_outputs(self.layout, self.run_words(words, progress=progress))
