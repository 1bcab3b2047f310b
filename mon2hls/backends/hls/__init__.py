"""The Vitis HLS back end: C++ sources, a C testbench and a Tcl project script for a datapath design."""

from .writer import HLS_FOLDER, KERNEL_SOURCES, TOP_FUNCTION, HlsOptions, render_hls, write_hls

__all__ = ["HLS_FOLDER", "KERNEL_SOURCES", "TOP_FUNCTION", "HlsOptions", "render_hls", "write_hls"]
