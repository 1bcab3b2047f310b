"""`mon2hls build`: a certified accelerator folder (HLS, RTL, test vectors, report) from a trained model."""

from .config import DEFAULT_VECTORS, BuildConfig, parse_state_format, read_config
from .estimate import UNKNOWN_TARGET_PARALLEL, default_parallel
from .pipeline import BuildResult, build

__all__ = [
    "DEFAULT_VECTORS",
    "UNKNOWN_TARGET_PARALLEL",
    "BuildConfig",
    "BuildResult",
    "build",
    "default_parallel",
    "parse_state_format",
    "read_config",
]
