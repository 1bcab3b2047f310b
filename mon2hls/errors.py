"""Exceptions raised by mon2hls.

Library code raises these and never exits the process; the command line turns
them into messages and exit codes (2 for bad input or usage).
"""

__all__ = [
    "Mon2hlsError",
    "ModelLoadError",
    "UnsupportedModelError",
    "InvalidModelError",
    "ConfigError",
    "DataError",
    "ToolchainError",
    "SimulationError",
    "CertificationError",
]


class Mon2hlsError(Exception):
    """Base class of every error mon2hls raises on purpose."""


class ModelLoadError(Mon2hlsError):
    """A model file is missing, unreadable, corrupt or of an unknown layout."""


class UnsupportedModelError(ModelLoadError):
    """A model file was recognized, but its kind of MON is not supported yet."""


class InvalidModelError(Mon2hlsError):
    """Model tensors have inconsistent shapes or non-finite values."""


class ConfigError(Mon2hlsError):
    """An option or configuration value is out of range or inconsistent."""


class DataError(Mon2hlsError):
    """A data set is missing, corrupt or does not fit the model."""


class ToolchainError(Mon2hlsError):
    """An external tool (C++ compiler, ap_fixed headers, Verilator, Yosys) is missing or failed."""


class SimulationError(Mon2hlsError):
    """A simulation failed, timed out, or disagreed with the golden model."""


class CertificationError(Mon2hlsError):
    """A configuration was rejected because its certificate does not hold."""
