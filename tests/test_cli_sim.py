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
    (out / "vectors" / "inputs.hex").write_text("00000000\n" * 4)
    return out


@dataclass(frozen=True)
class _Mismatch:
    inference: int
    word: int
    got: int | None
    expected: int


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
    # The C testbench counts output words: 4 vectors of 11 words.
    calls = _fake_simulator(monkeypatch, "mon2hls.sim.csim", "run_csim", _Result(44, 44))
    assert main(["sim", str(built), "--csim"]) == 0
    assert calls == [built]
    assert capsys.readouterr().out.strip() == "C simulation: matched 4/4 vectors bit for bit"


def test_csim_mismatch_exits_1(monkeypatch, built, capsys):
    result = _Result(42, 44, [_Mismatch(2, 3, 5, 6), _Mismatch(2, 4, None, 7)])
    _fake_simulator(monkeypatch, "mon2hls.sim.csim", "run_csim", result)
    assert main(["sim", str(built), "--csim"]) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert "C simulation: matched 3/4 vectors bit for bit" in out
    assert "  mismatch: inference 2 word 3: expected 0x00000006 got 0x00000005" in out
    assert "  mismatch: inference 2 word 4: expected 0x00000007 got nothing (the word is missing)" in out
    assert "{" not in out
    assert "C simulation: 1 of 4 vectors differ from the golden model" in captured.err


def test_csim_truncated_mismatches_bounded(monkeypatch, built, capsys):
    _fake_simulator(monkeypatch, "mon2hls.sim.csim", "run_csim", _Result(30, 44, [_Mismatch(0, 1, 5, 6)]))
    assert main(["sim", str(built), "--csim"]) == 1
    assert "matched at most 3/4 vectors" in capsys.readouterr().out


def test_csim_no_words_fails(monkeypatch, built):
    _fake_simulator(monkeypatch, "mon2hls.sim.csim", "run_csim", _Result(0, 0))
    assert main(["sim", str(built), "--csim"]) == 1


def test_csim_json(monkeypatch, built, capsys):
    _fake_simulator(monkeypatch, "mon2hls.sim.csim", "run_csim", _Result(43, 44, [_Mismatch(1, 10, 0, 1)]))
    assert main(["sim", str(built), "--csim", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["simulation"] == "csim"
    assert document["matched"] == 3
    assert document["total"] == 4
    assert document["words_matched"] == 43
    assert document["words_total"] == 44
    assert document["passed"] is False
    assert document["mismatches"] == [{"inference": 1, "word": 10, "got": 0, "expected": 1}]


def test_rtl_dispatches_to_run_rtl(monkeypatch, built, capsys):
    (built / "rtl").mkdir()
    _fake_simulator(monkeypatch, "mon2hls.sim.rtl", "run_rtl", _Result(4, 4))
    assert main(["sim", str(built), "--rtl", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] is True
    assert document["matched"] == 4


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
