"""Key layouts of model files and their conversion to `MonModel`.

Three layouts are supported:

- ``locuslab``: the ``state_dict`` of ``SingleFcNet`` from locuslab/monotone_op_net,
  with the MON factors under ``mon.linear_module.`` (or ``linear_module.``).
  The file does not store m, so the caller passes it.
- ``generic``: the dense tensors W, U, b, W_out, b_out, optionally with A, B, m,
  the input preprocessing scalars and the dataset name.
- ``mon2hls``: the checkpoint `save_checkpoint` writes, which adds the
  preprocessing, the dataset and the training settings.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InvalidModelError, ModelLoadError, UnsupportedModelError
from ..model import MNIST_PREPROCESSING, InputPreprocessing, compose_weight
from .files import GENERIC_FORMAT_HINT

__all__ = [
    "Layout",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "GENERIC_KEYS",
    "detect_layout",
    "convert",
    "unwrap_state_dict",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "mon2hls-checkpoint"
CHECKPOINT_VERSION = 1

GENERIC_KEYS = ("W", "U", "b", "W_out", "b_out")
GENERIC_OPTIONAL_KEYS = ("A", "B", "m", "input_scale", "input_mean", "input_std", "dataset")

LOCUSLAB_PREFIXES = ("mon.linear_module.", "linear_module.")
LOCUSLAB_FACTOR_KEYS = ("U.weight", "U.bias", "A.weight", "B.weight")
LOCUSLAB_HEAD_KEYS = ("Wout.weight", "Wout.bias")

#: Inputs of this size are taken to be 28 x 28 MNIST images in the locuslab layout.
MNIST_INPUT_FEATURES = 784

#: Relative tolerance when a generic file stores both W and its factors A, B, m.
_FACTOR_CONSISTENCY_RTOL = 1e-5

_MAX_KEYS_SHOWN = 12


class Layout(enum.Enum):
    """Key layout of a model file."""

    AUTO = "auto"
    LOCUSLAB = "locuslab"
    GENERIC = "generic"
    MON2HLS = "mon2hls"

    @classmethod
    def parse(cls, value: "str | Layout") -> "Layout":
        if isinstance(value, Layout):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            choices = ", ".join(layout.value for layout in cls)
            raise ModelLoadError(f"unknown model layout {value!r}; choose one of: {choices}") from None


SUPPORTED_LAYOUTS_TEXT = (
    "supported layouts: locuslab (state_dict of locuslab/monotone_op_net SingleFcNet with "
    "mon.linear_module.{U,A,B} and Wout), generic (W, U, b, W_out, b_out), "
    f"mon2hls (a checkpoint with format {CHECKPOINT_FORMAT!r})"
)


def _format_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_KEYS_SHOWN])
    if len(keys) > _MAX_KEYS_SHOWN:
        shown += f", ... ({len(keys) - _MAX_KEYS_SHOWN} more)"
    return shown or "(none)"


def unwrap_state_dict(content: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the state_dict inside a training checkpoint that wraps it, or the mapping itself."""
    for wrapper in ("state_dict", "model_state_dict"):
        inner = content.get(wrapper)
        if isinstance(inner, Mapping):
            return inner
    return content


def _to_array(value: Any) -> np.ndarray | None:
    """Convert a tensor, array or number to float64 numpy; None for anything else."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        import torch

        value = value.detach().cpu()
        if value.is_complex():
            return None
        return value.to(dtype=torch.float64).numpy()
    if isinstance(value, np.ndarray):
        return value.astype(np.float64) if value.dtype.kind in "fiub" else None
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return np.asarray(value, dtype=np.float64)
    return None


def _describe_value(value: Any) -> str:
    """Describe a non-numeric entry for an error message: its element type when it is an array or tensor."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        return f"an array of {dtype} elements"
    if value is None:
        return "an empty value (None)"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a nested mapping"
    if isinstance(value, (list, tuple)):
        return "a Python list; convert it to a tensor or array"
    return f"a value of type {type(value).__name__}"


def _tensor(content: Mapping[str, Any], key: str, source: str) -> np.ndarray:
    array = _to_array(content[key])
    if array is None:
        raise ModelLoadError(
            f"{source}: entry {key!r} must be a numeric tensor or array, not {_describe_value(content[key])}"
        )
    if not np.all(np.isfinite(array)):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise InvalidModelError(
            f"{source}: tensor {key!r} contains {bad} NaN or Inf value(s) out of {array.size}; "
            f"retrain or re-export the model with finite weights"
        )
    return array


def _scalar(content: Mapping[str, Any], key: str, source: str) -> float:
    array = _tensor(content, key, source)
    if array.size != 1:
        raise ModelLoadError(f"{source}: entry {key!r} must be a scalar, not shape {array.shape}")
    return float(array.reshape(()))


def _string(value: Any, key: str, source: str) -> str:
    if isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.size == 1:
        value = str(value.reshape(()))
    if not isinstance(value, str):
        raise ModelLoadError(f"{source}: entry {key!r} must be a string, not {type(value).__name__}")
    return value


def _ndim(value: Any) -> int:
    return len(getattr(value, "shape", ()))


def _module_name(key: str) -> str:
    """Return the name of the module that owns a parameter: "A" for "mon.linear_module.A.weight"."""
    parts = key.split(".")
    if len(parts) >= 2 and parts[-1] in ("weight", "bias"):
        return parts[-2]
    return parts[-1]


def _describe_unsupported(content: Mapping[str, Any]) -> str | None:
    """Name a recognized but unsupported kind of MON, or return None."""
    keys = [str(key) for key in content]
    for key in keys:
        if _module_name(key) in ("A", "B", "U") and _ndim(content[key]) == 4:
            return (
                f"a convolutional MON (tensor {key!r} has 4-D shape {tuple(content[key].shape)}); "
                f"convolutional MONs are not supported yet"
            )
    conv_scalars = [key for key in keys if key.endswith(("linear_module.g", "linear_module.h"))]
    if conv_scalars:
        return (
            f"a convolutional MON (scalars {_format_keys(conv_scalars)}); convolutional MONs are not "
            f"supported yet"
        )
    modules = {_module_name(key) for key in keys}
    scaled_factors = sorted(modules & {"V", "S", "G"})
    if "psi" in modules and scaled_factors:
        return (
            f"a MON with a diagonal scaling psi and factors {', '.join(scaled_factors)}; "
            f"this parameterization is not supported yet"
        )
    return None


def detect_layout(content: Any, source: str) -> Layout:
    """Recognize the layout of a file's content, or raise an error that lists its keys."""
    if not isinstance(content, Mapping):
        raise ModelLoadError(
            f"{source}: expected a dict of tensors, found {type(content).__name__}; "
            f"save model.state_dict() rather than the whole module. {SUPPORTED_LAYOUTS_TEXT}"
        )
    if content.get("format") == CHECKPOINT_FORMAT:
        return Layout.MON2HLS

    state = unwrap_state_dict(content)
    keys = [str(key) for key in state]
    if any(
        key.startswith(prefix) and key[len(prefix) :] in LOCUSLAB_FACTOR_KEYS
        for key in keys
        for prefix in LOCUSLAB_PREFIXES
    ):
        unsupported = _describe_unsupported(state)
        if unsupported:
            raise UnsupportedModelError(f"{source}: recognized {unsupported}; {GENERIC_FORMAT_HINT}")
        return Layout.LOCUSLAB
    if all(key in state for key in GENERIC_KEYS):
        return Layout.GENERIC

    unsupported = _describe_unsupported(state)
    if unsupported:
        raise UnsupportedModelError(f"{source}: recognized {unsupported}; {GENERIC_FORMAT_HINT}")
    raise ModelLoadError(
        f"{source}: unrecognized model layout; keys found: {_format_keys(keys)}. {SUPPORTED_LAYOUTS_TEXT}"
    )


def _require_keys(state: Mapping[str, Any], required: list[str], layout: Layout, source: str) -> None:
    missing = [key for key in required if key not in state]
    if missing:
        raise ModelLoadError(
            f"{source}: not a valid {layout.value} model: missing {_format_keys(missing)}; "
            f"keys found: {_format_keys([str(key) for key in state])}. {SUPPORTED_LAYOUTS_TEXT}"
        )


def _check_margin_parameter(m: float | None, source: str) -> None:
    if m is not None and not (np.isfinite(m) and m > 0):
        raise ModelLoadError(f"{source}: margin parameter m must be a positive number, not {m!r}")


def _locuslab_factor(state: Mapping[str, Any], name: str, source: str) -> np.ndarray:
    """Read one factor tensor, checking copies stored under both prefixes agree."""
    copies = [
        (prefix + name, _tensor(state, prefix + name, source))
        for prefix in LOCUSLAB_PREFIXES
        if prefix + name in state
    ]
    if not copies:
        raise ModelLoadError(
            f"{source}: not a valid locuslab model: missing {LOCUSLAB_PREFIXES[0] + name}; "
            f"keys found: {_format_keys([str(key) for key in state])}"
        )
    first_key, first = copies[0]
    for key, other in copies[1:]:
        if other.shape != first.shape or not np.array_equal(other, first):
            raise ModelLoadError(
                f"{source}: {first_key!r} and {key!r} hold different values; the file stores two "
                f"different models, so save a single state_dict"
            )
    return first


def _convert_locuslab(state: Mapping[str, Any], m: float | None, source: str) -> dict[str, Any]:
    _require_keys(state, list(LOCUSLAB_HEAD_KEYS), Layout.LOCUSLAB, source)
    if m is None:
        raise ModelLoadError(
            f"{source}: the locuslab layout does not store the margin parameter m; pass the value the model "
            f"was trained with as --m M (m= in Python). The published MNIST model used --m 1.0"
        )
    factors = {name: _locuslab_factor(state, name, source) for name in LOCUSLAB_FACTOR_KEYS}
    A = factors["A.weight"]
    B = factors["B.weight"]
    U = factors["U.weight"]
    for key, array in (("A.weight", A), ("B.weight", B), ("U.weight", U)):
        if array.ndim != 2:
            raise UnsupportedModelError(
                f"{source}: {key} has shape {array.shape}; only fully connected MONs (2-D weights) are "
                f"supported; {GENERIC_FORMAT_HINT}"
            )
    n = B.shape[0]
    if B.shape != (n, n) or A.shape[1:] != (n,) or U.shape[0] != n:
        raise InvalidModelError(
            f"{source}: shape mismatch: U.weight {U.shape}, A.weight {A.shape} and B.weight {B.shape} "
            f"do not describe one MON (U must be n x d, A r x n, B n x n)"
        )

    known_keys = {prefix + name for prefix in LOCUSLAB_PREFIXES for name in LOCUSLAB_FACTOR_KEYS}
    ignored = [str(key) for key in state if key not in known_keys and key not in LOCUSLAB_HEAD_KEYS]
    if ignored:
        logger.warning(
            "%s: ignoring entries the locuslab layout does not use: %s", source, _format_keys(ignored)
        )

    fields: dict[str, Any] = dict(
        W=compose_weight(A, B, m),
        A=A,
        B=B,
        m=float(m),
        U=U,
        b=factors["U.bias"],
        W_out=_tensor(state, "Wout.weight", source),
        b_out=_tensor(state, "Wout.bias", source),
    )
    # NOTE: 784 inputs are taken to mean MNIST because the file carries no dataset name. A locuslab
    # model trained on other 28 x 28 data gets the wrong preprocessing unless converted to the generic format.
    if U.shape[1] == MNIST_INPUT_FEATURES:
        fields["dataset"] = "mnist"
        fields["preprocessing"] = MNIST_PREPROCESSING
    return fields


def _convert_generic(state: Mapping[str, Any], m: float | None, source: str) -> dict[str, Any]:
    _require_keys(state, list(GENERIC_KEYS), Layout.GENERIC, source)
    fields: dict[str, Any] = {key: _tensor(state, key, source) for key in GENERIC_KEYS}
    for key in ("A", "B"):
        if key in state:
            fields[key] = _tensor(state, key, source)

    stored_m = _scalar(state, "m", source) if "m" in state else None
    _check_margin_parameter(stored_m, source)
    if stored_m is not None and m is not None and not np.isclose(stored_m, m, rtol=1e-12, atol=0.0):
        raise ModelLoadError(
            f"{source}: the file stores m = {stored_m!r} but m = {m!r} was passed; "
            f"drop --m or pass the stored value"
        )
    margin_parameter = stored_m if stored_m is not None else m
    if margin_parameter is not None:
        fields["m"] = margin_parameter

    if all(key in fields for key in ("A", "B", "m")):
        _check_factors_match(fields, source)

    if any(key in state for key in ("input_scale", "input_mean", "input_std")):
        fields["preprocessing"] = InputPreprocessing(
            scale=_scalar(state, "input_scale", source) if "input_scale" in state else 1.0,
            mean=_scalar(state, "input_mean", source) if "input_mean" in state else 0.0,
            std=_scalar(state, "input_std", source) if "input_std" in state else 1.0,
        )
    if "dataset" in state:
        fields["dataset"] = _string(state["dataset"], "dataset", source)

    unknown = [str(key) for key in state if key not in GENERIC_KEYS and key not in GENERIC_OPTIONAL_KEYS]
    if unknown:
        logger.warning(
            "%s: ignoring entries the generic layout does not use: %s", source, _format_keys(unknown)
        )
    return fields


def _check_factors_match(fields: dict[str, Any], source: str) -> None:
    """Check that a stored W equals (1 - m) I - A^T A + B - B^T when the factors are stored too."""
    W = fields["W"]
    try:
        composed = compose_weight(fields["A"], fields["B"], fields["m"])
    except InvalidModelError as error:
        raise InvalidModelError(f"{source}: {error}") from None
    if composed.shape != W.shape:
        raise InvalidModelError(
            f"{source}: shape mismatch: W has shape {W.shape} but A {fields['A'].shape} and B "
            f"{fields['B'].shape} compose to {composed.shape}"
        )
    scale = max(float(np.max(np.abs(W))), 1.0)
    deviation = float(np.max(np.abs(composed - W)))
    if deviation > _FACTOR_CONSISTENCY_RTOL * scale:
        raise InvalidModelError(
            f"{source}: W differs from (1 - m) I - A^T A + B - B^T by up to {deviation:.3g}; "
            f"the stored W, A, B and m do not belong together, so export them from one model "
            f"or drop A and B"
        )


def _convert_checkpoint(content: Mapping[str, Any], m: float | None, source: str) -> dict[str, Any]:
    version = content.get("version")
    if version != CHECKPOINT_VERSION:
        raise UnsupportedModelError(
            f"{source}: {CHECKPOINT_FORMAT} version {version!r} is not supported; this mon2hls reads "
            f"version {CHECKPOINT_VERSION}, so upgrade mon2hls or save the checkpoint again"
        )
    tensors = content.get("model")
    if not isinstance(tensors, Mapping):
        raise ModelLoadError(f"{source}: the checkpoint has no 'model' dict of tensors; save it again")
    fields = _convert_generic(tensors, m, source)

    preprocessing = content.get("preprocessing")
    if isinstance(preprocessing, Mapping):
        try:
            fields["preprocessing"] = InputPreprocessing(
                scale=float(preprocessing.get("scale", 1.0)),
                mean=float(preprocessing.get("mean", 0.0)),
                std=float(preprocessing.get("std", 1.0)),
            )
        except (TypeError, ValueError) as error:
            raise ModelLoadError(
                f"{source}: invalid 'preprocessing' entry {dict(preprocessing)!r} ({error}); "
                f"scale, mean and std must be numbers, so save the checkpoint again"
            ) from None
    dataset = content.get("dataset")
    if dataset is not None:
        fields["dataset"] = _string(dataset, "dataset", source)
    training = content.get("training")
    fields["metadata"] = {"training": dict(training)} if isinstance(training, Mapping) else {}
    return fields


def convert(content: Any, layout: Layout, m: float | None, source: str) -> tuple[Layout, dict[str, Any]]:
    """Convert a file's content to MonModel fields; returns the layout used and the fields."""
    _check_margin_parameter(m, source)
    if layout is Layout.AUTO:
        layout = detect_layout(content, source)
    elif not isinstance(content, Mapping):
        raise ModelLoadError(f"{source}: expected a dict of tensors, found {type(content).__name__}")

    if layout is Layout.MON2HLS:
        if content.get("format") != CHECKPOINT_FORMAT:
            raise ModelLoadError(
                f"{source}: not a mon2hls checkpoint: 'format' is {content.get('format')!r}, expected "
                f"{CHECKPOINT_FORMAT!r}; use --layout auto"
            )
        return layout, _convert_checkpoint(content, m, source)
    state = unwrap_state_dict(content)
    if layout is Layout.LOCUSLAB:
        return layout, _convert_locuslab(state, m, source)
    return layout, _convert_generic(state, m, source)
