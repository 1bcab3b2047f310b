"""Reproduce the MON quantization study on MNIST with mon2hls train and the bit-width sweep.

Setup of the study (Li, Leong and Chaffey, "Quantization Robustness of Monotone
Operator Equilibrium Networks", 2026): 784 -> 100 hidden -> 10, A of size
25 x 100, learned margin m = softplus(m_raw) + 1e-4 starting at 0.2, FB
forward solve, Adam at 1e-3 divided by 10 after epoch 10, 15 epochs, batch
128, full MNIST training set, fixed seed.

Stages (each writes its checkpoint or JSON into --out-dir and is skipped when
that file exists, unless --force):

1. float:  train the float model.
2. sweep:  quantize W, U and b per tensor (max-abs) at 2..16 bits and report
           the quantized margin, the a-priori and exact certificates,
           convergence and accuracy; the same for pow2.
3. qat4:   quantization-aware training at 4 bits (max-abs), from scratch or,
           with --qat-epochs, as a fine-tuning of the float model.
4. margin-qat4, margin-qat3: margin-aware QAT with --target-margin.
5. qat4-continued: the qat4 model (from scratch) trained on at --qat-lr
           (default 1e-3) for --qat-continue-epochs more epochs.

Usage:

    python benchmarks/reproduce_quantization_study.py --data-dir DIR [--epochs 15] [--out-dir DIR]

Prints one table per stage and writes results.json with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import torch

from mon2hls.analysis import Splitting, analyze_operator, best_alpha
from mon2hls.data import load_mnist
from mon2hls.evaluate import sweep
from mon2hls.load import load_model
from mon2hls.quantize import Scheme
from mon2hls.train import TrainConfig, train

logger = logging.getLogger("reproduce_quantization_study")

QAT_RUNS = {
    "qat4": dict(qat_bits=4),
    "margin-qat4": dict(qat_bits=4, target_margin=True),
    "margin-qat3": dict(qat_bits=3, target_margin=True),
}


def study_config(args: argparse.Namespace, **changes) -> TrainConfig:
    """Build the study's training settings, with `changes` applied."""
    settings = dict(
        dataset="mnist", data_dir=args.data_dir, hidden_units=100, rank=25, margin=0.2, learn_margin=True,
        splitting=Splitting.FB, epochs=args.epochs, lr_step=args.lr_step, batch_size=128, lr=1e-3, seed=args.seed,
        max_iterations=args.max_iterations, threads=args.threads, progress=False,
    )
    settings.update(changes)
    return TrainConfig(**settings)


def run_training(name: str, config: TrainConfig, out_dir: Path, force: bool, resume: Path | None = None) -> dict:
    path = out_dir / f"{name}.pt"
    summary_path = out_dir / f"{name}.json"
    if path.exists() and summary_path.exists() and not force:
        logger.info("%s: reusing %s", name, path)
        return json.loads(summary_path.read_text())

    started = time.perf_counter()
    result = train(config, path, resume=resume)
    seconds = time.perf_counter() - started
    summary = {
        "name": name,
        "config": config.to_dict(),
        "seconds": seconds,
        "seconds_per_epoch": seconds / max(len(result.history), 1),
        "history": [record.to_dict() for record in result.history],
        "resumed_from": None if resume is None else str(resume),
    }
    summary_path.write_text(json.dumps(summary, indent=2))
    return summary


def with_learning_rate(checkpoint: Path, lr: float, out_dir: Path) -> Path:
    """Copy a resumable checkpoint with its optimizer's learning rate set to `lr`.

    Fine-tuning resumes the float run's Adam state, whose learning rate was
    divided by 10 after --lr-step epochs. The copy starts the fine-tune at `lr`.
    """
    content = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for group in content["resume"]["optimizer"]["param_groups"]:
        group["lr"] = lr
    path = out_dir / f"{checkpoint.stem}-lr{lr:g}.pt"
    torch.save(content, path)
    return path


def finite(value):
    """Replace NaN and infinite floats by None, since JSON has neither (a diverged solve yields them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def run_sweep(name: str, model_path: Path, scheme: Scheme, args: argparse.Namespace, bits: list[int],
              alpha: float | None = None) -> dict:
    """Sweep `bits` on the saved model, at the best step of each W_q or at `alpha` when given."""
    path = Path(args.out_dir) / f"{name}.json"
    if path.exists() and not args.force:
        logger.info("%s: reusing %s", name, path)
        return json.loads(path.read_text())

    started = time.perf_counter()
    model = load_model(model_path)
    test = load_mnist("test", args.data_dir)
    result = sweep(model, bits, scheme, test, limit=args.sweep_limit, splitting=args.sweep_splitting,
                   max_iter=args.sweep_max_iterations, alpha=alpha, progress=False)
    document = result.to_dict()
    document["seconds"] = time.perf_counter() - started
    path.write_text(json.dumps(finite(document), indent=2, allow_nan=False, default=str))
    return document


def print_training(summary: dict) -> None:
    last = summary["history"][-1]
    print(f"\n## {summary['name']}: {len(summary['history'])} epochs, {summary['seconds']:.0f} s "
          f"({summary['seconds_per_epoch']:.0f} s per epoch)")
    print("| epoch | float acc % | quant acc % | mu(W) | mu(W_q) | m | FB iters (train) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for record in summary["history"]:
        quantized = record["quantized_accuracy"]
        quantized_margin = record["quantized_margin"]
        print(f"| {record['epoch']} | {record['float_accuracy']:.2f} | "
              f"{'-' if quantized is None else f'{quantized:.2f}'} | {record['margin']:.4f} | "
              f"{'-' if quantized_margin is None else f'{quantized_margin:.4f}'} | {record['m']:.4f} | "
              f"{record['forward_iterations']:.1f} | {record['seconds']:.0f} |")
    del last


def print_sweep(document: dict) -> None:
    print(f"\n## sweep {document['scheme']} ({document['splitting']}): float accuracy {document['float_accuracy'] * 100:.2f}%, "
          f"mu(W) {document['margin']:.4f}, {document['samples']} test images, {document['seconds']:.0f} s")
    print("| bits | norm(dW)/mu | a priori | mu(W_q) | exact | step | factor | converged % | median iters "
          "| accuracy % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in document["rows"]:
        ratio = row["weight_perturbation_norm"] / row["margin"]
        contraction = row["contraction"]
        print(f"| {row['bits']} | {ratio:.3f} | {'yes' if row['certified_a_priori'] else 'no'} | "
              f"{row['quantized_margin']:.4f} | {'yes' if row['quantized_margin'] > 0 else 'no'} | "
              f"{row['solver_alpha']:.3g} | {'-' if contraction is None else f'{contraction:.4f}'} | "
              f"{row['converged_fraction'] * 100:.1f} | {row['iterations_median']:.0f} | "
              f"{row['accuracy'] * 100:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--out-dir", default="out/quantization-study", help="checkpoints and JSON results")
    parser.add_argument("--epochs", type=int, default=15, help="epochs of each training run (study: 15)")
    parser.add_argument("--lr-step", type=int, default=10, help="epoch after which the learning rate drops 10x")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads")
    parser.add_argument("--max-iterations", type=int, default=100, help="FB iteration limit in training")
    parser.add_argument("--qat-epochs", type=int, default=None,
                        help="fine-tune the float model for this many QAT epochs instead of training "
                        "each QAT model from scratch for --epochs")
    parser.add_argument("--qat-lr", type=float, default=None,
                        help="with --qat-epochs: learning rate of the fine-tune (default: the float run's "
                        "last, 1e-4 after the step)")
    parser.add_argument("--qat-continue-epochs", type=int, default=10,
                        help="epochs of the qat4-continued stage after the qat4 run (needs qat4.pt)")
    parser.add_argument("--qat-splitting", choices=("fb", "pr"), default="fb",
                        help="solver of the QAT runs (the study used FB)")
    parser.add_argument("--target-margin", type=float, default=0.05, help="target mu(W_q) of margin-aware QAT")
    parser.add_argument("--sweep-limit", type=int, default=None, help="test images per sweep (default: all)")
    parser.add_argument("--sweep-splitting", choices=("fb", "pr"), default="fb",
                        help="solver of the sweeps (the study used FB)")
    parser.add_argument("--sweep-max-iterations", type=int, default=500, help="iteration limit in sweeps")
    parser.add_argument("--stages", default="float,sweep,qat4,margin-qat4,margin-qat3",
                        help="comma-separated stages to run")
    parser.add_argument("--force", action="store_true", help="recompute stages whose files exist")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stages = [stage.strip() for stage in args.stages.split(",") if stage.strip()]
    results: dict = {}

    if "float" in stages:
        results["float"] = run_training("float", study_config(args), out_dir, args.force)
        print_training(results["float"])
        analysis = analyze_operator(load_model(out_dir / "float.pt").W)
        results["float"]["operator"] = {"margin": analysis.margin, "lipschitz": analysis.lipschitz,
                                        "fb_alpha": analysis.fb.alpha, "fb_contraction": analysis.fb.contraction}
        print(f"mu(W) = {analysis.margin:.4f}, L = {analysis.lipschitz:.4f}, "
              f"best FB alpha {analysis.fb.alpha:.4f} (factor {analysis.fb.contraction:.4f})")

    if "sweep" in stages:
        for scheme in (Scheme.MAX_ABS, Scheme.POW2):
            name = f"sweep-{scheme.value}"
            results[name] = run_sweep(name, out_dir / "float.pt", scheme, args, list(range(2, 17)))
            print_sweep(results[name])

    for name, changes in QAT_RUNS.items():
        if name not in stages:
            continue
        changes = dict(changes)
        if changes.pop("target_margin", False):
            changes["target_margin"] = args.target_margin
        if args.qat_epochs is None:
            config = study_config(args, splitting=args.qat_splitting, **changes)
            resume = None
        else:
            # Fine-tune the float model: its optimizer and learning-rate schedule carry on.
            config = study_config(args, epochs=args.epochs + args.qat_epochs, splitting=args.qat_splitting,
                                  **changes)
            resume = out_dir / "float.pt"
            if args.qat_lr is not None:
                resume = with_learning_rate(resume, args.qat_lr, out_dir)
        results[name] = run_training(name, config, out_dir, args.force, resume)
        print_training(results[name])
        bits = changes["qat_bits"]
        results[f"{name}-sweep"] = run_sweep(f"{name}-sweep", out_dir / f"{name}.pt", Scheme.MAX_ABS, args, [bits])
        print_sweep(results[f"{name}-sweep"])

        # Where no step contracts W_q, the best step found is a degenerate one at the end of the search
        # range. Training then solved at the float W's best step, so the sweep is repeated at that step.
        if results[f"{name}-sweep"]["rows"][0]["quantized_margin"] <= 0:
            float_step = best_alpha(load_model(out_dir / f"{name}.pt").W, args.sweep_splitting)[0]
            key = f"{name}-sweep-float-step"
            results[key] = run_sweep(key, out_dir / f"{name}.pt", Scheme.MAX_ABS, args, [bits], float_step)
            print_sweep(results[key])

    if "qat4-continued" in stages:
        # Plain QAT from scratch, continued at --qat-lr (default 1e-3) for --qat-continue-epochs more epochs.
        # After the learning-rate step, m drifts down and mu(W_q) stays below zero. At 1e-3, m keeps rising.
        start = with_learning_rate(out_dir / "qat4.pt", args.qat_lr or 1e-3, out_dir)
        config = study_config(args, epochs=args.epochs + args.qat_continue_epochs, splitting=args.qat_splitting,
                              qat_bits=4)
        results["qat4-continued"] = run_training("qat4-continued", config, out_dir, args.force, start)
        print_training(results["qat4-continued"])
        results["qat4-continued-sweep"] = run_sweep("qat4-continued-sweep", out_dir / "qat4-continued.pt",
                                                    Scheme.MAX_ABS, args, [4])
        print_sweep(results["qat4-continued-sweep"])

    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
