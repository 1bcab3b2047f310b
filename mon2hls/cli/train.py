"""The `mon2hls train` subcommand: train a MON, optionally quantization-aware, and save a checkpoint."""

from __future__ import annotations

import argparse
import logging
import os

from ..analysis import Splitting
from ..quantize import MAX_BITS, MIN_BITS, Scheme
from .common import (
    EXIT_OK,
    add_json_argument,
    bits_argument,
    check_parent_folder,
    positive_float,
    positive_int,
    print_json,
)

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a fully connected MON on MNIST or digits, optionally quantization-aware",
        description="Train a MON with W = (1 - m) I - A^T A + B - B^T, solving the equilibrium by operator "
        "splitting and differentiating it implicitly. With --qat-bits, W, U and b are quantized in the "
        "forward pass (quantization-aware training). A checkpoint is written after every epoch. Under "
        "torchrun with several processes, training is data parallel (gloo) and only process 0 writes.",
    )
    parser.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                        help="training data: mnist (784 inputs) or digits (scikit-learn 8 x 8, 64 inputs); "
                        "default: mnist")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="folder with the MNIST IDX files (default: $MON2HLS_DATA_DIR, then the cache)")
    parser.add_argument("--hidden", type=positive_int, default=64, metavar="N",
                        help="hidden units n of the equilibrium (default: 64)")
    parser.add_argument("--rank", type=positive_int, default=None, metavar="R",
                        help="rows of the factor A (r x n); default: n")
    parser.add_argument("--m", type=positive_float, default=1.0, metavar="M",
                        help="margin parameter m, fixed; with --learn-margin its start value (default: 1.0)")
    parser.add_argument("--learn-margin", action="store_true",
                        help="learn m as softplus(m_raw) + 1e-4, starting at --m")
    parser.add_argument("--splitting", choices=[s.value for s in Splitting], default=Splitting.PR.value,
                        help="equilibrium solver: fb (forward-backward) or pr (Peaceman-Rachford); default: pr")
    parser.add_argument("--epochs", type=positive_int, default=5, metavar="E",
                        help="total epochs, counting those of a resumed run (default: 5)")
    parser.add_argument("--batch-size", type=positive_int, default=128, metavar="N",
                        help="samples per optimizer step, over all processes (default: 128)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--lr-step", type=positive_int, default=None, metavar="EPOCH",
                        help="divide the learning rate by 10 after this many epochs (default: never)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; a seed fixes the model (default: 0)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="train on the first N training samples only")
    parser.add_argument("--qat-bits", type=bits_argument, default=None, metavar="B",
                        help=f"quantization-aware training with B-bit W, U and b ({MIN_BITS} to {MAX_BITS})")
    parser.add_argument("--scheme", choices=[s.value for s in Scheme], default=Scheme.MAX_ABS.value,
                        help="quantization scheme for --qat-bits (default: max-abs)")
    parser.add_argument("--target-margin", type=positive_float, default=None, metavar="MU",
                        help="with --qat-bits: raise m after any step that leaves mu(W_q) below MU")
    parser.add_argument("--max-iterations", type=positive_int, default=100, metavar="N",
                        help="iteration limit of each equilibrium solve (default: 100)")
    parser.add_argument("--tolerance", type=positive_float, default=1e-4,
                        help="relative residual that ends a solve (default: 1e-4)")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N",
                        help="PyTorch threads per process (default: 1)")
    parser.add_argument("--resume", default=None, metavar="CKPT",
                        help="continue training from a checkpoint that mon2hls train wrote")
    parser.add_argument("--no-resume-state", action="store_true",
                        help="write the model only, without the optimizer state that --resume needs "
                        "(a smaller file, for shipping)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.pt", help="checkpoint file to write")
    add_json_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train

    check_parent_folder(args.output, "-o")
    config = TrainConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        hidden_units=args.hidden,
        rank=args.rank,
        margin=args.m,
        learn_margin=args.learn_margin,
        splitting=args.splitting,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_step=args.lr_step,
        seed=args.seed,
        limit=args.limit,
        qat_bits=args.qat_bits,
        scheme=args.scheme,
        target_margin=args.target_margin,
        tolerance=args.tolerance,
        max_iterations=args.max_iterations,
        threads=args.threads,
        progress=False if args.no_progress else None,
        save_resume_state=not args.no_resume_state,
    )
    result = train(config, args.output, resume=args.resume)

    # Under torchrun only process 0 reports, as only it writes.
    if result.path is None:
        return EXIT_OK
    last = result.history[-1] if result.history else None
    summary = {
        "output": os.fspath(result.path),
        "epochs": len(result.history),
        "seconds": result.seconds,
        "float_accuracy": last.float_accuracy if last else None,
        "quantized_accuracy": last.quantized_accuracy if last else None,
        "margin": last.margin if last else None,
        "quantized_margin": last.quantized_margin if last else None,
        "m": last.m if last else None,
        "history": [record.to_dict() for record in result.history],
    }
    if args.json:
        print_json(summary)
    else:
        text = f"wrote {result.path}: {summary['epochs']} epochs in {result.seconds:.1f} s"
        if last is not None:
            text += f", float accuracy {last.float_accuracy:.2f}%, mu(W) {last.margin:.4f}"
            if last.quantized_accuracy is not None:
                text += (f", {config.qat_bits}-bit accuracy {last.quantized_accuracy:.2f}%, "
                         f"mu(W_q) {last.quantized_margin:.4f}")
        print(text)
    return EXIT_OK
