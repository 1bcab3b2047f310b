"""Jinja2 templates of the generated HLS C++, Tcl and Verilog (data, shipped as mon2hls.templates)."""
