"""`build`: from a trained model to a certified accelerator folder.

The steps: resolve the options and check the output folder, load the model,
design and certify the fixed-point datapath, run the golden model on the
test inputs (and on the whole test set when it is available), then render
hls/, rtl/, vectors/, the reports and mon2hls.yaml into a temporary folder
that replaces OUT only once it is complete.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from .. import __version__
from ..errors import CertificationError, ConfigError, DataError, Mon2hlsError
from ..load import load_model
from ..model import MonModel
from ..targets import Target, resolve_target
from .config import BuildConfig
from .estimate import (
    UNKNOWN_TARGET_PARALLEL,
    CycleEstimate,
    check_parallel,
    default_parallel,
    estimate_cycles,
    estimate_resources,
)
from .output import atomic_folder, check_output_folder
from .vectors import TestInputs, data_dir_configured, labelled_dataset, random_raw_inputs

__all__ = ["BuildResult", "build", "resolve_config"]

logger = logging.getLogger(__name__)

#: Samples the golden model runs at once when it scores a whole test set.
GOLDEN_CHUNK = 1000

#: Training samples (or random inputs) that set the state range with --range data.
CALIBRATION_SAMPLES = 1000

#: Accuracy the golden model may lose against the float model before the build warns, as a fraction.
ACCURACY_LOSS_WARNING = 0.01


@dataclass(frozen=True)
class BuildResult:
    """What a build produced: the folder, the resolved configuration and the report document."""

    folder: Path
    config: BuildConfig
    certified: bool
    report: dict[str, Any]


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    # Back ends that are not installed are skipped, not fatal. A submodule of
    # the same name (verilog.cycles) is not the function and is skipped too.
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return None if isinstance(found, types.ModuleType) or not callable(found) else found


def _progress(iterable: Any, **kwargs: Any) -> Any:
    # Shown on a terminal only, and not with --quiet (which raises the log level above INFO).
    quiet = not logging.getLogger("mon2hls").isEnabledFor(logging.INFO)
    return tqdm(iterable, file=sys.stderr, disable=quiet or not sys.stderr.isatty(), leave=False, **kwargs)


def resolve_config(config: BuildConfig, model: MonModel, target: Target) -> BuildConfig:
    """Fill in the hardware choices of `config` that depend on the model and the target."""
    if config.parallel is not None:
        check_parallel(config.parallel, target, model.hidden_units, model.classes)
    config = config.replace(
        model=str(Path(config.model).resolve()),
        model_sha256=model.sha256,
        data_dir=None if config.data_dir is None else str(Path(config.data_dir).resolve()),
        target=None if config.part is not None else target.name,
    )
    return config.choose(clock_mhz=target.clock_mhz, parallel=default_parallel(model.hidden_units, target))


def _parallel_rule(parallel: int, hidden_units: int, target: Target) -> str:
    # Stated from the value, not from how it was given, so a rebuild from
    # mon2hls.yaml (where it is always explicit) writes the same report.
    if parallel != default_parallel(hidden_units, target):
        return "set by --parallel"
    if target.dsp_count is None:
        return f"default min(hidden units, {UNKNOWN_TARGET_PARALLEL}) because the part's DSP count is unknown"
    return "default min(hidden units, DSP slices of the target)"


def _datapath_options(config: BuildConfig, calibration: np.ndarray | None = None) -> Any:
    from ..fixedpoint import DatapathOptions, FixedFormat

    state_format = None
    if config.state_format is not None:
        state_format = FixedFormat(config.state_format[0], config.state_format[1], signed=True)
    given = {
        "bits": config.bits,
        "scheme": config.scheme,
        "splitting": config.splitting,
        "alpha": config.alpha,
        "tolerance": config.tolerance,
        "max_iterations": config.max_iterations,
        "state_format": state_format,
        "input_range": config.input_range,
        "range_mode": config.range_mode,
        "calibration": calibration,
    }
    # Options left unset take DatapathOptions' own defaults.
    return DatapathOptions(**{k: v for k, v in given.items() if v is not None})


def _resolve_datapath_choices(config: BuildConfig, design: Any) -> BuildConfig:
    """Record the choices the datapath stage made (scheme, alpha, tolerance, iterations, state format)."""
    return config.choose(
        scheme=design.scheme.value,
        alpha=float(design.alpha),
        tolerance=float(design.tolerance),
        max_iterations=int(design.max_iterations),
        state_format=(design.state_format.width, design.state_format.integer_bits),
    )


def _not_certified_message(model: MonModel, config: BuildConfig, options: Any, design: Any) -> str:
    from ..fixedpoint import design_datapath

    lines = [f"the {config.bits}-bit datapath of {model.source} is not certified:"]
    lines += [f"  - {reason}" for reason in design.certificate.failures()]
    suggestion = None
    if config.state_format is not None:
        # The user's state format may be what fails: try the one the certificate would choose.
        chosen = design_datapath(model, dataclasses.replace(options, state_format=None))
        if chosen.certified:
            fmt = chosen.state_format
            suggestion = (
                f"the state format the certificate chooses, {fmt}, passes: drop --state-format or pass "
                f"--state-format {fmt.width},{fmt.integer_bits}"
            )
    if suggestion is None:
        suggestion = _suggest_bits(model, options)
    if suggestion:
        lines.append(suggestion)
    lines.append("pass --force to build it anyway (the report will say CERTIFICATE FAILED)")
    return "\n".join(lines)


def _suggest_bits(model: MonModel, options: Any) -> str | None:
    from ..fixedpoint import smallest_certified_bits

    try:
        bits = smallest_certified_bits(model, options)
    except Mon2hlsError as error:
        logger.debug("no bit width suggestion: %s", error)
        return None
    if bits is None:
        return (
            f"no bit width from {options.bits} to 16 is certified with these options; "
            "try another --scheme, --splitting, --alpha or --tolerance"
        )
    if bits == options.bits:
        return None
    # The search runs upward only, so a narrower width may certify too (2-bit FB does for the MNIST model).
    return (
        f"the next bit width above {options.bits} that is certified with these options is {bits}: "
        f"try --bits {bits}"
    )


def _check_tolerance(model: MonModel, config: BuildConfig, options: Any, design: Any) -> None:
    """Reject a tolerance below the smallest certifiable one (4 beta at the widest state) as bad input."""
    from ..fixedpoint import smallest_tolerance

    ball = design.certificate.rounding
    if ball is None or not ball.contracts or ball.ball_fits:
        return
    smallest = smallest_tolerance(model, options)
    if math.isfinite(smallest) and design.tolerance < smallest:
        raise ConfigError(
            f"tolerance {design.tolerance:g} is smaller than this datapath can be certified for: the "
            f"rounding ball needs at least {smallest:.6g} with a 32-bit state; pass --tolerance {smallest:.3g} "
            "or more, or use more --bits"
        )


def _calibration_codes(model: MonModel, config: BuildConfig) -> np.ndarray:
    """Input codes that set the state range with --range data: training samples, else the random test inputs."""
    from ..fixedpoint.design import input_format_for
    from ..fixedpoint.formats import Overflow, Rounding

    input_format = input_format_for(model, config.input_range)
    raw = None
    if model.dataset:
        try:
            from ..data import load_dataset

            data_dir = config.data_dir
            if model.dataset == "mnist":
                from ..data import find_mnist_dir

                data_dir = str(find_mnist_dir(config.data_dir, download=False))
            raw = load_dataset(model.dataset, "train", data_dir).raw[:CALIBRATION_SAMPLES]
        except DataError as error:
            if model.dataset == "mnist" and data_dir_configured(config.data_dir):
                raise
            logger.warning("no training data for calibration (%s); calibrating on random inputs", error)
    if raw is None:
        low, high = config.input_range or (input_format.min_value, input_format.max_value)
        raw = random_raw_inputs(CALIBRATION_SAMPLES, model.input_features, low, high, config.seed)
    codes = input_format.from_real(np.asarray(raw, dtype=np.float64), Rounding.AP_RND, Overflow.AP_SAT)
    return np.asarray(codes, dtype=np.int64)


def _test_inputs(design: Any, model: MonModel, config: BuildConfig, dataset: Any) -> TestInputs:
    if dataset is not None:
        subset = dataset.head(min(config.vectors, len(dataset)))
        return TestInputs(np.asarray(subset.raw), np.asarray(subset.labels), f"{dataset.name} {dataset.split} set")
    if config.input_range is not None:
        low, high = config.input_range
    else:
        low, high = design.input_format.min_value, design.input_format.max_value
    raw = random_raw_inputs(config.vectors, model.input_features, low, high, config.seed)
    return TestInputs(raw, None, f"random inputs in [{low:g}, {high:g}], seed {config.seed}")


def _accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def _float_predictions(model: MonModel, raw: np.ndarray) -> np.ndarray:
    """Classify raw inputs in float64: argmax(W_out z* + b_out), z* = ReLU(W z* + U_raw x + b_raw).

    U_raw and b_raw fold the model's preprocessing into the input layer, as the hardware does.
    """
    from ..solve import solve_injection

    U_raw, b_raw = model.folded_input_layer()
    predictions = []
    for start in range(0, len(raw), GOLDEN_CHUNK):
        chunk = np.asarray(raw[start : start + GOLDEN_CHUNK], dtype=np.float64)
        z = solve_injection(model.W, chunk @ U_raw.T + b_raw).z
        with np.errstate(over="ignore", invalid="ignore"):
            logits = z @ model.W_out.T + model.b_out
        predictions.append(np.argmax(logits, axis=1))
    return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)


def _accuracy_warning(figures: dict[str, Any] | None) -> str | None:
    """Describe a golden accuracy more than ACCURACY_LOSS_WARNING below the float model's, else None."""
    if not figures or "accuracy" not in figures or "float_accuracy" not in figures:
        return None
    loss = figures["float_accuracy"] - figures["accuracy"]
    if loss <= ACCURACY_LOSS_WARNING:
        return None
    return (
        f"the golden accuracy {100 * figures['accuracy']:.2f} % is {100 * loss:.2f} percentage points below "
        f"the float model's {100 * figures['float_accuracy']:.2f} % on the same inputs ({figures['name']}): "
        "the certificate proves convergence and the absence of overflow, not accuracy; try more --bits, "
        "another --scheme or a smaller --tolerance"
    )


def _score_dataset(design: Any, dataset: Any) -> dict[str, Any]:
    from ..fixedpoint import encode_inputs, run_golden

    correct = 0
    converged = 0
    saturated = 0
    iterations: list[np.ndarray] = []
    starts = range(0, len(dataset), GOLDEN_CHUNK)
    for start in _progress(starts, desc="golden model on the test set", unit="chunk"):
        raw = dataset.raw[start : start + GOLDEN_CHUNK]
        result = run_golden(design, encode_inputs(design, raw))
        correct += int(np.sum(result.predictions == dataset.labels[start : start + GOLDEN_CHUNK]))
        converged += int(np.sum(result.converged))
        saturated += int(np.sum(result.saturated))
        iterations.append(np.asarray(result.iterations))
    counts = np.concatenate(iterations)
    return {
        "name": f"{dataset.name} {dataset.split}",
        "samples": len(dataset),
        "accuracy": correct / len(dataset),
        "converged": converged,
        "saturated": saturated,
        "median_iterations": float(np.median(counts)),
        "max_iterations_seen": int(counts.max()),
    }


#: Added to the header of every generated source file. The back ends already
#: write the version, the source model with its SHA-256 and the datapath, so
#: this adds only how to regenerate the files.
HEADER_COMMENT = "Rebuild with: mon2hls build --config mon2hls.yaml -o OUT"


def _project_name(model: MonModel) -> str:
    stem = re.sub(r"[^0-9A-Za-z_]", "_", Path(model.source).stem) or "model"
    return f"mon_{stem}" if stem[0].isdigit() else stem


def _cycles(design: Any, parallel: int) -> CycleEstimate:
    rtl_cycles = _optional("mon2hls.backends.verilog", "cycles")
    if rtl_cycles is not None:
        estimate = rtl_cycles(design, parallel)
        # The Verilog schedule also counts the start cycle and the logit product.
        return CycleEstimate(
            load=int(getattr(estimate, "overhead", 0)) + int(estimate.load),
            injection=int(estimate.injection),
            per_iteration=int(estimate.per_iteration),
            output=int(getattr(estimate, "logits", 0)) + int(estimate.output),
            source="Verilog datapath schedule (exact for rtl/)",
        )
    n, d = design.hidden_units, design.input_features
    return estimate_cycles(d, n, design.classes, design.input_format.width, parallel)


def _model_section(model: MonModel) -> dict[str, Any]:
    return {
        "name": Path(model.source).name,
        "path": str(Path(model.source).resolve()),
        "sha256": model.sha256,
        "layout": model.layout,
        "dataset": model.dataset,
        "inputs": model.input_features,
        "hidden_units": model.hidden_units,
        "classes": model.classes,
        "m": model.m,
    }


def _report_document(
    model: MonModel,
    config: BuildConfig,
    target: Target,
    design: Any,
    tests: TestInputs,
    golden: Any,
    dataset: Any,
    dataset_scores: dict[str, Any] | None,
    rtl_written: bool,
    parallel_rule: str,
) -> dict[str, Any]:
    certificate = design.certificate
    iterations = np.asarray(golden.iterations)
    median_iterations = float(np.median(iterations))
    cycles = _cycles(design, config.parallel)
    resources = estimate_resources(
        design.input_features,
        design.hidden_units,
        design.classes,
        config.bits,
        design.state_format.width,
        max(
            design.injection_accumulator.accumulator_bits,
            design.operator_accumulator.accumulator_bits,
            design.output_accumulator.accumulator_bits,
        ),
        config.parallel,
        input_width=design.input_format.width,
    )
    vector_figures: dict[str, Any] = {
        "source": tests.source,
        "count": int(len(tests.raw)),
        "converged": int(np.sum(golden.converged)),
        "saturated": int(np.sum(golden.saturated)),
        "median_iterations": median_iterations,
        "max_iterations_seen": int(iterations.max()),
    }
    if tests.labels is not None:
        vector_figures["accuracy"] = _accuracy(golden.predictions, tests.labels)
        vector_figures["float_accuracy"] = _accuracy(_float_predictions(model, tests.raw), tests.labels)
    if dataset_scores is not None:
        dataset_scores = dict(dataset_scores)
        dataset_scores["float_accuracy"] = _accuracy(_float_predictions(model, dataset.raw), dataset.labels)
    # The whole test set, when scored, is the better figure; otherwise the labelled test vectors.
    if dataset_scores is not None and "accuracy" in dataset_scores:
        warning = _accuracy_warning(dataset_scores)
    else:
        warning = _accuracy_warning({**vector_figures, "name": tests.source})
    warnings = []
    if warning is not None:
        logger.warning("%s", warning)
        warnings.append(warning)
    return {
        "mon2hls_version": __version__,
        "certified": bool(certificate.certified),
        "failures": list(certificate.failures()),
        "model": _model_section(model),
        "quantization": {"bits": config.bits, "scheme": config.scheme},
        "datapath": design.to_dict(),
        "certificate": certificate.to_dict(),
        "target": target.to_dict(),
        "parallel": config.parallel,
        "parallel_rule": parallel_rule,
        "cycles": cycles.to_dict(median_iterations, config.max_iterations, target.clock_mhz),
        "resources": resources.to_dict(target),
        "accuracy": {"vectors": vector_figures, "dataset": dataset_scores},
        "warnings": warnings,
        "rtl": rtl_written,
    }


def build(config: BuildConfig, output: str | Path, *, force: bool = False) -> BuildResult:
    """Build the accelerator folder `output` from `config`.

    Raises ConfigError (bad options, output folder not writable or existing
    without `force`), a model or data error, or CertificationError when the
    datapath is not certified and `force` is false. Nothing is left at
    `output` unless the whole build succeeds.
    """
    from ..fixedpoint import design_datapath, encode_inputs, run_golden
    from ..fixedpoint.reference import measure_displacement

    target = resolve_target(config.target, config.part, config.clock_mhz)
    if config.parallel is not None:
        check_parallel(config.parallel, target)
    check_output_folder(output, force)

    logger.info("loading %s", config.model)
    model = load_model(config.model, m=config.m, layout=config.layout)
    if config.model_sha256 and model.sha256 != config.model_sha256:
        raise ConfigError(
            f"model file {config.model} has changed since the configuration was written "
            f"(sha256 {model.sha256}, expected {config.model_sha256}); remove the sha256 line to accept it"
        )
    config = resolve_config(config, model, target)
    parallel_rule = _parallel_rule(config.parallel, model.hidden_units, target)

    dataset = labelled_dataset(model, config.data_dir)
    calibration = _calibration_codes(model, config) if config.range_mode == "data" else None

    logger.info("designing and certifying the %d-bit datapath", config.bits)
    options = _datapath_options(config, calibration)
    design = design_datapath(model, options)
    certified = bool(design.certificate.certified)
    if not certified:
        _check_tolerance(model, config, options, design)
    if not certified and not force:
        raise CertificationError(_not_certified_message(model, config, options, design))
    if not certified:
        logger.warning("CERTIFICATE FAILED: building anyway because of --force")
    config = _resolve_datapath_choices(config, design)

    tests = _test_inputs(design, model, config, dataset)
    logger.info("running the golden model on %d test vectors", len(tests.raw))
    x_codes = encode_inputs(design, tests.raw)
    golden = run_golden(design, x_codes)
    # The certificate bounds the distance to the float equilibrium, so the report shows it measured too.
    design = measure_displacement(design, model, x_codes, golden)
    dataset_scores = None
    if dataset is not None and certified:
        dataset_scores = _score_dataset(design, dataset)
    elif dataset is not None:
        # An uncertified datapath may run every input to max_iterations, which can take hours.
        logger.warning("not scoring the whole %s test set because the datapath is not certified", dataset.name)
        dataset_scores = {"name": f"{dataset.name} {dataset.split}", "skipped": "the datapath is not certified"}

    document = _report_document(
        model, config, target, design, tests, golden, dataset, dataset_scores, False, parallel_rule
    )
    with atomic_folder(output, force) as staging:
        _render(staging, design, model, config, target, tests, x_codes, golden, document)
    folder = Path(output).absolute()
    logger.info("wrote %s", folder)
    return BuildResult(folder=folder, config=config, certified=certified, report=document)


def _render(
    staging: Path,
    design: Any,
    model: MonModel,
    config: BuildConfig,
    target: Target,
    tests: TestInputs,
    x_codes: np.ndarray,
    golden: Any,
    document: dict[str, Any],
) -> None:
    from ..backends.hls import write_hls
    from ..fixedpoint import write_vectors
    from ..report import write_reports

    common = {"header_comment": HEADER_COMMENT}
    logger.info("writing hls/")
    # write_hls creates the hls/ folder inside the folder it is given.
    write_hls(
        design,
        staging,
        parallel=config.parallel,
        part=target.part,
        clock_mhz=target.clock_mhz,
        project_name=_project_name(model),
        **common,
    )
    write_rtl = _optional("mon2hls.backends.verilog", "write_rtl")
    if write_rtl is not None:
        logger.info("writing rtl/")
        write_rtl(design, staging / "rtl", parallel=config.parallel, **common)
        document["rtl"] = True
        if config.synth:
            _synthesize(staging / "rtl", target, document)
    elif config.synth:
        raise ConfigError("--synth needs the Verilog back end, which is not installed with this mon2hls")
    logger.info("writing vectors/")
    write_vectors(design, staging / "vectors", x_codes, golden, labels=tests.labels)
    (staging / "mon2hls.yaml").write_text(config.to_yaml(), encoding="utf-8")
    write_reports(staging, document)


def _synthesize(rtl_folder: Path, target: Target, document: dict[str, Any]) -> None:
    """Run Yosys on the rendered RTL and record its counts beside the estimate."""
    from ..sim.synth import run_yosys

    logger.info("synthesizing rtl/ with Yosys for %s (this takes minutes for large models)", target.part)
    result = run_yosys(rtl_folder, target.part)
    document["synthesis"] = {
        **result.to_dict(),
        "tool": "Yosys synth_xilinx, out of context",
        "note": "Yosys counts, not Vivado's; no timing analysis",
    }
