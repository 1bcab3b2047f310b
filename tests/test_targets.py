"""Board targets: the YAML data, name resolution, bare parts and the default parallelism."""

from __future__ import annotations

import pytest

from mon2hls.build.estimate import UNKNOWN_TARGET_PARALLEL, check_parallel, default_parallel
from mon2hls.errors import ConfigError
from mon2hls.targets import (
    DEFAULT_CLOCK_MHZ,
    known_targets,
    get_target,
    load_boards,
    resolve_target,
    target_for_part,
)


def test_known_targets_listed_in_file_order():
    assert known_targets() == ["pynq-z2", "ultra96v2", "zcu104", "kv260"]


def test_pynq_z2_figures():
    target = get_target("pynq-z2")
    assert target.part == "xc7z020clg400-1"
    assert target.clock_mhz == 100.0
    assert target.dsp_type == "DSP48E1"
    assert target.capacity("LUT") == 53200
    assert target.capacity("FF") == 106400
    assert target.capacity("DSP") == 220
    assert target.capacity("BRAM36") == 140
    assert target.capacity("URAM") is None


@pytest.mark.parametrize(
    ("name", "part", "dsp", "bram", "uram"),
    [
        ("ultra96v2", "xczu3eg-sbva484-1-i", 360, 216, 0),
        ("zcu104", "xczu7ev-ffvc1156-2-e", 1728, 312, 96),
        ("kv260", "xck26-sfvc784-2LV-c", 1248, 144, 64),
    ],
)
def test_ultrascale_boards(name, part, dsp, bram, uram):
    target = get_target(name)
    assert target.part == part
    assert target.dsp_type == "DSP48E2"
    assert target.dsp_count == dsp
    assert target.capacity("BRAM36") == bram
    assert target.capacity("URAM") == uram


def test_every_figure_states_its_source():
    for target in load_boards().values():
        assert target.resources_known
        for resource in target.resources:
            assert resource.count >= 0
            assert isinstance(resource.confirmed, bool)
            assert resource.source.endswith(("(DS190)", "(DS891)", "(DS987)"))


@pytest.mark.parametrize(("alias", "name"), [("pynq", "pynq-z2"), ("PYNQ", "pynq-z2"), ("k26", "kv260")])
def test_aliases_resolve(alias, name):
    assert get_target(alias).name == name


def test_unknown_target_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown target 'zedboard'; known targets: pynq-z2 .*kv260"):
        get_target("zedboard")


def test_bare_part_has_unknown_capacity():
    target = target_for_part("xczu9eg-ffvb1156-2-e")
    assert target.part == "xczu9eg-ffvb1156-2-e"
    assert not target.resources_known
    assert target.dsp_count is None
    assert target.clock_mhz == DEFAULT_CLOCK_MHZ


def test_part_of_known_board_keeps_capacity():
    assert target_for_part("xc7z020clg400-1").dsp_count == 220


def test_malformed_part_rejected():
    with pytest.raises(ConfigError, match="does not look like an AMD part name"):
        target_for_part("my board")


def test_resolve_defaults_to_pynq_z2():
    assert resolve_target().name == "pynq-z2"


def test_resolve_overrides_clock():
    assert resolve_target("zcu104", clock_mhz=250.0).clock_mhz == 250.0


@pytest.mark.parametrize("clock", [0.0, -5.0, 5000.0])
def test_resolve_rejects_bad_clock(clock):
    with pytest.raises(ConfigError, match="clock must be above 0 and at most 1000 MHz"):
        resolve_target("pynq", clock_mhz=clock)


def test_resolve_rejects_target_and_part():
    with pytest.raises(ConfigError, match="either a target"):
        resolve_target("pynq", "xc7z020clg400-1")


def test_default_parallel_rule():
    assert default_parallel(87, get_target("pynq")) == 87
    assert default_parallel(500, get_target("pynq")) == 220
    assert default_parallel(87, target_for_part("xcvu9p-flga2104-2L-e")) == UNKNOWN_TARGET_PARALLEL
    assert default_parallel(4, target_for_part("xcvu9p-flga2104-2L-e")) == 4


def test_check_parallel_names_dsp_limit():
    assert check_parallel(220, get_target("pynq")) == 220
    with pytest.raises(ConfigError, match=r"exceeds the 220 DSP slices .* choose --parallel from 1 to 220"):
        check_parallel(221, get_target("pynq"))
    with pytest.raises(ConfigError, match="at least 1"):
        check_parallel(0, get_target("pynq"))
    assert check_parallel(10000, target_for_part("xcvu9p-flga2104-2L-e")) == 10000
