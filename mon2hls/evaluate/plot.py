"""PNG plot of a bit-width sweep: quantized margin and accuracy against bits."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import ConfigError
from .sweep import SweepResult

__all__ = ["plot_sweep"]


def plot_sweep(result: SweepResult, path: str | os.PathLike) -> Path:
    """Write a PNG with mu(W_q) (left axis) and accuracy (right axis) against bits.

    A horizontal line marks margin zero, below which W_q is not monotone, and a
    vertical line marks the certified threshold (the smallest bit width from
    which every wider one is certified). The file is written to a temporary
    name beside `path` and renamed, so a failure never leaves a partial PNG.
    Raises ConfigError when the folder is missing or not writable.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"cannot write the plot {path}: folder {folder} does not exist; create it first")

    bits = [row.bits for row in result.rows]
    margins = [row.certificate.operator.quantized_margin for row in result.rows]
    accuracies = [row.accuracy for row in result.rows]

    figure, margin_axis = plt.subplots(figsize=(7.0, 4.2))
    try:
        margin_axis.plot(bits, margins, "o-", color="tab:blue", label="margin mu(W_q)")
        margin_axis.axhline(0.0, color="tab:blue", linestyle=":", linewidth=1.0)
        margin_axis.set_xlabel("weight bits")
        margin_axis.set_ylabel("margin mu(W_q)", color="tab:blue")
        margin_axis.set_xticks(bits)

        accuracy_axis = margin_axis.twinx()
        accuracy_axis.plot(bits, accuracies, "s-", color="tab:orange", label="accuracy")
        accuracy_axis.axhline(result.float_accuracy, color="tab:orange", linestyle="--", linewidth=1.0,
                              label=f"float accuracy {result.float_accuracy:.4f}")
        accuracy_axis.set_ylabel("accuracy", color="tab:orange")
        accuracy_axis.set_ylim(0.0, 1.02)

        threshold = result.certified_threshold_bits
        if threshold is not None:
            margin_axis.axvline(threshold, color="tab:green", linestyle="--", linewidth=1.2,
                                label=f"certified from {threshold} bits")

        handles = margin_axis.get_legend_handles_labels()[0] + accuracy_axis.get_legend_handles_labels()[0]
        margin_axis.legend(handles=handles, loc="lower right", fontsize="small")
        margin_axis.set_title(
            f"{result.scheme.value} quantization, {result.dataset} {result.split} ({result.samples} inputs)"
        )
        figure.tight_layout()

        try:
            descriptor, partial = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
        except OSError as error:
            raise ConfigError(f"cannot write the plot {path}: {error}; choose a writable folder") from None
        try:
            with os.fdopen(descriptor, "wb") as output:
                figure.savefig(output, format="png", dpi=120)
            # mkstemp creates the file with mode 0600; give the PNG the mode a plain open would.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(partial, 0o666 & ~umask)
            os.replace(partial, path)
        except OSError as error:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise ConfigError(f"cannot write the plot {path}: {error}; choose a writable folder") from None
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise
    finally:
        plt.close(figure)
    return path
