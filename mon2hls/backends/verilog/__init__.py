"""The Verilog back end: a hand-written parameterized datapath, configured per design.

`write_rtl` renders the rtl/ folder (top level, modules, ROM files, file list);
`cycles` gives the exact cycle count of that RTL at a parallelism P.
"""

from .cycles import PIPELINE_DRAIN, CycleEstimate, cycles
from .layout import LaneLayout, lane_layout
from .writer import FILE_LIST, TOP_MODULE, write_rtl

__all__ = [
    "CycleEstimate",
    "FILE_LIST",
    "LaneLayout",
    "PIPELINE_DRAIN",
    "TOP_MODULE",
    "cycles",
    "lane_layout",
    "write_rtl",
]
