"""`mon2hls sim`: folder checks, dispatch to the simulators, exit codes and --json."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field

import pytest

from mon2hls.cli import main


@dataclass(frozen=True)
class _Result:
    matched: int
    total: int
    mismatches: list = field(default_factory=list)
    log: str = ""


@pytest.fixture
def built(tmp_path):
    """A folder shaped like a build output (hls/, vectors/, no rtl/)."""
    out = tmp_path / "out"
    (out / "hls").mkdir(parents=True)
    (out / "vectors").mkdir()
    return out


def _fake_simulator(monkeypatch, module: str, function: str, result: _Result) -> list:
    calls: list = []
    fake = types.ModuleType(module)

    def simulate(folder):
        calls.append(folder)
        return result

    setattr(fake, function, simulate)
    monkeypatch.setitem(sys.modules, module, fake)
    return calls


def test_csim_all_matched_exits_0(monkeypatch, built, capsys):
    calls = _fake_simulator(monkeypatch, "mon2hls.sim.csim", "run_csim", _Result(200, 200))
    assert main(["sim", str(built), "--csim"]) == 0
    assert calls == [built]
    assert capsys.readouterr().out.strip() == "C simulation: matched 200/200 vectors bit for bit"


def test_csim_mismatch_exits_1(monkeypatch, built, capsys):
    _fake_simulator(monkeypatch, "mon2hls.sim.csim", "run_csim", _Result(199, 200, ["vector 7 word 3"]))
    assert main(["sim", str(built), "--csim"]) == 1
    out = capsys.readouterr().out
    assert "C simulation: matched 199/200 vectors bit for bit" in out
    assert "vector 7 word 3" in out


def test_csim_json(monkeypatch, built, capsys):
    _fake_simulator(monkeypatch, "mon2hls.sim.csim", "run_csim", _Result(199, 200, ["vector 7 word 3"]))
    assert main(["sim", str(built), "--csim", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["simulation"] == "csim"
    assert document["matched"] == 199
    assert document["total"] == 200
    assert document["passed"] is False
    assert document["mismatches"] == ["vector 7 word 3"]


def test_rtl_dispatches_to_run_rtl(monkeypatch, built, capsys):
    (built / "rtl").mkdir()
    _fake_simulator(monkeypatch, "mon2hls.sim.rtl", "run_rtl", _Result(20, 20))
    assert main(["sim", str(built), "--rtl", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True


def test_missing_folder_exits_2(tmp_path, capsys):
    assert main(["sim", str(tmp_path / "absent"), "--csim"]) == 2
    assert "not found" in capsys.readouterr().err


def test_folder_without_rtl_exits_2(built, capsys):
    assert main(["sim", str(built), "--rtl"]) == 2
    assert "has no rtl/ folder" in capsys.readouterr().err


def test_missing_simulator_exits_2(monkeypatch, built, capsys):
    monkeypatch.setitem(sys.modules, "mon2hls.sim.csim", None)
    assert main(["sim", str(built), "--csim"]) == 2
    assert "not available" in capsys.readouterr().err


def test_simulation_kind_required(built):
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", str(built)])
    assert exit_info.value.code == 2
