"""Train chapter 04's LeNet-style network on MNIST from the command line.

Alone::

    python -m nbhelpers.examples.mnist --epochs 3 --batch-size 32 --device cpu

Data-parallel, one process per GPU (or several CPU processes; the program joins the process
group, the Trainer wraps the model in DistributedDataParallel and shards the batches; only rank 0
prints)::

    torchrun --nproc_per_node=2 -m nbhelpers.examples.mnist --epochs 3

Each process draws ``--batch-size`` examples per step, so N processes take steps of N times that
many examples and 1/N as many steps per epoch; the one-cycle schedule is laid out over the steps
of one process. The last line printed reads ``valid_accuracy=... valid_loss=... seconds=...``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist

from nbhelpers.device import checked_device, get_device, max_cpu_threads
from nbhelpers.recipes.mnist import BASE_MAX_LR, MnistRecipe
from nbhelpers.signals import sigterm_as_interrupt
from nbhelpers.train import StopAfter, Trainer, distributed
from nbhelpers.train.checkpoint import check_checkpoint_path
from nbhelpers.train.precision import PRECISIONS

PROG = "python -m nbhelpers.examples.mnist"


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m nbhelpers.examples.mnist``."""
    full = MnistRecipe.SIZES["full"]
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train the LeNet-style MNIST network of chapter 04 (AdamW, one-cycle schedule).",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=full["epochs"],
        help="passes over the training split (default 3)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=full["batch_size"],
        help="examples per step and process (default 32)",
    )
    parser.add_argument(
        "--train-size",
        type=int,
        default=full["train_size"],
        help="training images, a seeded subset of the 60,000 (default 55,000)",
    )
    parser.add_argument(
        "--valid-size",
        type=int,
        default=full["valid_size"],
        help="validation images (default 5,000)",
    )
    parser.add_argument(
        "--max-lr",
        type=float,
        default=BASE_MAX_LR,
        help=f"one-cycle peak (default {BASE_MAX_LR}; the source's 0.01 is unstable)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the split, the data order and the weights",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda, cuda:N, mps or auto (default: CUDA, MPS, then CPU)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", *PRECISIONS),
        default="32",
        help="32, bf16 (autocast), 16 (CUDA) or auto",
    )
    parser.add_argument(
        "--resident",
        action="store_true",
        help="keep the data on the device (one process only)",
    )
    parser.add_argument(
        "--cuda-graph",
        action="store_true",
        help="capture the training step in a CUDA graph",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="write a checkpoint here after every epoch; if the file exists, resume from it "
        "(one run at a time: a second run given the same file is refused)",
    )
    parser.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop once this many epochs are done (resume later)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads, at most the CPUs here (default: torch's choice)",
    )
    parser.add_argument(
        "--join-timeout",
        type=float,
        default=60.0,
        help="under torchrun: seconds to wait for the other processes (default 60)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar and no per-epoch lines"
    )
    return parser


def checked_setup(args: argparse.Namespace) -> tuple[MnistRecipe, torch.device]:
    """The recipe and device the arguments ask for, everything a run will need checked first.

    Raises:
        ValueError: an argument is out of range or names something this machine cannot do,
            or the checkpoint path cannot be written.
    """
    most = max_cpu_threads()
    if args.threads is not None and not 1 <= args.threads <= most:
        raise ValueError(
            f"--threads must be >= 1 and at most {most} (the CPUs this process may use), "
            f"got {args.threads}"
        )
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after must be >= 1, got {args.stop_after}")
    if not 0 < args.join_timeout < float("inf"):
        raise ValueError(
            f"--join-timeout must be a finite number of seconds > 0, got {args.join_timeout}"
        )
    device = (
        get_device()
        if args.device == "auto"
        else checked_device(args.device, label=f"--device {args.device}")
    )
    if args.checkpoint is not None:
        try:
            check_checkpoint_path(Path(args.checkpoint))
        except (OSError, ValueError) as error:
            raise ValueError(f"--checkpoint {args.checkpoint}: {error}") from None
    recipe = MnistRecipe(
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_lr=args.max_lr,
        train_size=args.train_size,
        valid_size=args.valid_size,
        seed=args.seed,
        resident=args.resident,
        precision=args.precision,
        cuda_graph=args.cuda_graph,
    )
    world = distributed.world_size_from_env()
    recipe.checked_device(device, world=world)  # before any data is loaded
    return recipe, device


def run(argv: Sequence[str] | None = None) -> Trainer:
    """Parse ``argv``, check it, join the process group under torchrun, train; returns the
    Trainer.

    Bad arguments end the program through ``argparse`` (exit status 2, message on stderr)
    before any data is loaded or any step is taken.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        recipe, device = checked_setup(args)
    except ValueError as error:
        parser.error(str(error))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if distributed.world_size_from_env() > 1:
        distributed.join_process_group(
            distributed.process_device(device), timeout_s=args.join_timeout
        )
    leader = distributed.rank() == 0
    if leader:
        processes = distributed.world_size()
        print(
            f"device: {device} | processes: {processes} | torch {torch.__version__}",
            flush=True,
        )
        print(recipe, flush=True)
    data = recipe.prepare()
    stop = [StopAfter(args.stop_after)] if args.stop_after is not None else []
    started = time.perf_counter()
    trainer = recipe.train(
        data, device, callbacks=stop, verbose=not args.quiet, checkpoint=args.checkpoint
    )
    seconds = time.perf_counter() - started
    if leader:
        print(f"data: {data.source}", flush=True)
        if args.checkpoint:
            print(f"checkpoint: {args.checkpoint}", flush=True)
        valid = trainer.valid_log
        print(
            f"valid_accuracy={valid['accuracy'][-1]:.4f} "
            f"valid_loss={valid['loss'][-1]:.4f} seconds={seconds:.1f} "
            f"processes={trainer.world_size}",
            flush=True,
        )
    return trainer


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``run(argv)``, then leave the process group if this program joined one.

    Returns 0 on success. Bad arguments exit with status 2 (argparse). A failure once the run has
    started (a checkpoint of another recipe or in use by another run, a full disk, the other
    processes not coming, a NaN loss) prints one line naming it and returns 1. Ctrl-C (or
    SIGTERM, handled alike) prints one line and returns 130 (143): the checkpoint keeps the
    last completed epoch, from which the same command resumes.
    """
    args = build_parser().parse_args(argv)
    with sigterm_as_interrupt() as received:
        try:
            run(argv)  # the Trainer holds --checkpoint's lock for the run
        except KeyboardInterrupt:
            signum = received[0] if received else signal.SIGINT
            name = signal.Signals(signum).name
            print(
                f"{PROG}: interrupted ({name}); {_what_was_kept(args)}",
                file=sys.stderr,
                flush=True,
            )
            return 128 + signum
        except (
            ValueError,
            OSError,
            FloatingPointError,
            distributed.ProcessGroupError,
        ) as error:
            print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
            return 1
        finally:
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
    return 0


def _what_was_kept(args: argparse.Namespace) -> str:
    if args.checkpoint and Path(args.checkpoint).is_file():
        return (
            f"{args.checkpoint} holds the last completed epoch; "
            "run the same command to resume"
        )
    return "no checkpoint was written"


if __name__ == "__main__":
    sys.exit(main())
