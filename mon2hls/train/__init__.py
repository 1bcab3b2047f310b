"""Training MONs in PyTorch: float training, quantization-aware training and margin-aware QAT."""

from .margin import MarginProjection, enforce_quantized_margin, quantized_margin
from .network import MonNetwork, QuantizationSetting, SolverConfig, fake_quantize, solve_equilibrium
from .trainer import EpochRecord, TrainConfig, TrainResult, check_output_path, train

__all__ = [
    "EpochRecord",
    "MarginProjection",
    "MonNetwork",
    "QuantizationSetting",
    "SolverConfig",
    "TrainConfig",
    "TrainResult",
    "check_output_path",
    "enforce_quantized_margin",
    "fake_quantize",
    "quantized_margin",
    "solve_equilibrium",
    "train",
]
