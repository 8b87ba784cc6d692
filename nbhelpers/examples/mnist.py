"""Train chapter 04's LeNet-style network on MNIST from the command line.

Alone::

    python -m nbhelpers.examples.mnist --epochs 3 --batch-size 32 --device cpu

Data-parallel, one process per GPU (or several CPU processes; the Trainer joins the process
group, wraps the model in DistributedDataParallel and shards the batches; only rank 0 prints)::

    torchrun --nproc_per_node=2 -m nbhelpers.examples.mnist --epochs 3

Each process draws ``--batch-size`` examples per step, so N processes take steps of N times that
many examples and 1/N as many steps per epoch; the one-cycle schedule is laid out over the steps
of one process. The last line printed reads ``valid_accuracy=... valid_loss=... seconds=...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import torch
import torch.distributed as dist

from nbhelpers.device import checked_device, get_device
from nbhelpers.recipes.mnist import BASE_MAX_LR, MnistRecipe, MnistRun, train_mnist
from nbhelpers.train.distributed import world_size_from_env
from nbhelpers.train.precision import PRECISIONS, check_precision


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m nbhelpers.examples.mnist``."""
    parser = argparse.ArgumentParser(
        prog="python -m nbhelpers.examples.mnist",
        description="Train the LeNet-style MNIST network of chapter 04 (AdamW, one-cycle schedule).",
    )
    parser.add_argument("--epochs", type=int, default=3, help="passes over the training split (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step and process (default 32)")
    parser.add_argument(
        "--subset", type=int, default=55_000, help="training images, a seeded subset of the 60,000 (default 55,000)"
    )
    parser.add_argument("--valid-size", type=int, default=5_000, help="validation images (default 5,000)")
    parser.add_argument(
        "--max-lr",
        type=float,
        default=None,
        help=f"one-cycle peak (default {BASE_MAX_LR}; the seed's 0.01 is unstable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the data order and the weights")
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default: CUDA, MPS, then CPU)"
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="32", help="32, bf16 (autocast) or 16 (CUDA)")
    parser.add_argument("--resident", action="store_true", help="keep the data on the device (not under torchrun)")
    parser.add_argument("--cuda-graph", action="store_true", help="capture the training step in a CUDA graph")
    parser.add_argument("--checkpoint", default=None, help="write a checkpoint to this path after training")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    return parser


def _device(name: str) -> torch.device:
    if name == "auto":
        return get_device()
    return checked_device(name, label=f"--device {name}")


def checked_setup(args: argparse.Namespace) -> tuple[MnistRecipe, torch.device]:
    """The recipe and device the arguments ask for.

    Raises:
        ValueError: an argument is out of range or names something this machine cannot do.
    """
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    device = _device(args.device)
    check_precision(args.precision, device)
    if args.cuda_graph and device.type != "cuda":
        raise ValueError(f"--cuda-graph needs a CUDA device, got {device}")
    if args.resident and world_size_from_env() > 1:
        raise ValueError("--resident cannot be combined with torchrun: the data of one device is not sharded")
    if args.cuda_graph and world_size_from_env() > 1:
        raise ValueError("--cuda-graph is not supported under torchrun (DDP)")
    recipe = MnistRecipe(
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_lr=args.max_lr if args.max_lr is not None else BASE_MAX_LR,
        train_size=args.subset,
        valid_size=args.valid_size,
        seed=args.seed,
        resident=args.resident,
        precision=args.precision,
        cuda_graph=args.cuda_graph,
    )
    return recipe, device


def run(argv: Sequence[str] | None = None) -> MnistRun:
    """Parse ``argv``, train, write the checkpoint if asked; returns the run (every process).

    Bad arguments end the program through ``argparse`` (exit status 2, message on stderr).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        recipe, device = checked_setup(args)
    except ValueError as error:
        parser.error(str(error))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    leader = int(os.environ.get("RANK", "0")) == 0
    if leader:
        print(f"device: {device} | processes: {world_size_from_env()} | torch {torch.__version__}", flush=True)
        print(recipe, flush=True)
    result = train_mnist(recipe, device=device, verbose=not args.quiet)
    if args.checkpoint:
        result.trainer.save_checkpoint(args.checkpoint)
    if result.trainer.rank == 0:
        print(f"data: {result.data_source}", flush=True)
        if args.checkpoint:
            print(f"checkpoint: {args.checkpoint}", flush=True)
        print(
            f"valid_accuracy={result.valid_accuracy:.4f} valid_loss={result.valid_loss:.4f} "
            f"seconds={result.seconds:.1f} processes={result.trainer.world_size}",
            flush=True,
        )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``run(argv)``, then leave the process group if training joined one."""
    try:
        run(argv)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
