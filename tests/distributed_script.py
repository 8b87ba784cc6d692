"""A tiny training run for tests/test_train_distributed.py, started with

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_script.py OUT_DIR

Each process joins the process group explicitly (``join_process_group``; the Trainer never does),
then writes OUT_DIR/rank{RANK}.pt with its final weights, logs and ``evaluate`` result.
The data and model builders are imported by the test to recompute the result in one process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

# 21 = 2 * 10 + 1: one padding copy on rank 1
N_TRAIN, N_VALID, BATCH_SIZE, EPOCHS = (
    64,
    21,
    4,
    2,
)


def make_datasets() -> tuple[TensorDataset, TensorDataset]:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(N_TRAIN + N_VALID, 4, generator=generator)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    return TensorDataset(X[:N_TRAIN], y[:N_TRAIN]), TensorDataset(
        X[N_TRAIN:], y[N_TRAIN:]
    )


def make_model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def main(out_dir: Path) -> None:
    from nbhelpers.train import Trainer, join_process_group

    assert join_process_group(torch.device("cpu"), timeout_s=60.0), (
        "expected a launch by torchrun"
    )
    train, valid = make_datasets()
    train_loader = DataLoader(
        train,
        batch_size=BATCH_SIZE,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    valid_loader = DataLoader(valid, batch_size=BATCH_SIZE)
    model = make_model()
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.2),
        F.cross_entropy,
        device="cpu",
        log_every=3,
    )
    trainer.run(EPOCHS, train_loader, valid_loader)
    result = trainer.evaluate(valid_loader)
    torch.save(
        {
            "rank": trainer.rank,
            "world_size": trainer.world_size,
            "model": trainer.model.state_dict(),
            "train_log": trainer.train_log,
            "valid_log": trainer.valid_log,
            "evaluate": result,
            "global_step": trainer.global_step,
        },
        out_dir / f"rank{trainer.rank}.pt",
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
