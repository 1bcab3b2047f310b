"""mon2hls: certified fixed-point accelerators for monotone operator equilibrium networks."""

from .errors import (
    CertificationError,
    ConfigError,
    DataError,
    InvalidModelError,
    ModelLoadError,
    Mon2hlsError,
    SimulationError,
    ToolchainError,
    UnsupportedModelError,
)
from .model import InputPreprocessing, MonModel

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "MonModel",
    "InputPreprocessing",
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
