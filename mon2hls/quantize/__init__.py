"""Weight quantization schemes and the quantized model they produce."""

from .schemes import (
    DEFAULT_QUANTIZED_TENSORS,
    MAX_BITS,
    MIN_BITS,
    QuantizationConfig,
    QuantizedModel,
    QuantizedTensor,
    Scheme,
    check_bits,
    quantize_model,
    quantize_tensor,
)

__all__ = [
    "DEFAULT_QUANTIZED_TENSORS",
    "MAX_BITS",
    "MIN_BITS",
    "QuantizationConfig",
    "QuantizedModel",
    "QuantizedTensor",
    "Scheme",
    "check_bits",
    "quantize_model",
    "quantize_tensor",
]
