"""CUDA-only parts of the Trainer: the CUDA-graph step and float16 with a GradScaler.

Skipped without CUDA (conftest skips `gpu` tests without an accelerator; these also need CUDA
specifically, not MPS).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nbhelpers.train import Trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def lenet(dropout: float = 0.0) -> nn.Module:
    """The seed's LeNet-style MNIST network (dropout off by default so runs can be compared)."""
    torch.manual_seed(0)

    return nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3, padding=1),
        nn.SELU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 32, kernel_size=5),
        nn.SELU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(32 * 5 * 5, 256),
        nn.SELU(),
        nn.Dropout(dropout),
        nn.Linear(256, 10),
    )


def batches(
    count: int, batch_size: int = 32, last: int | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    sizes = [batch_size] * count + ([last] if last else [])
    return [
        (
            torch.rand(n, 1, 28, 28, generator=generator).pin_memory(),
            torch.randint(0, 10, (n,), generator=generator).pin_memory(),
        )
        for n in sizes
    ]


def train(cuda_graph: bool, data, scheduler_factory=None, epochs: int = 2) -> Trainer:
    model = lenet()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3, capturable=True)
    scheduler = scheduler_factory(optim) if scheduler_factory else None
    trainer = Trainer(
        model,
        optim,
        F.cross_entropy,
        scheduler,
        device="cuda",
        verbose=False,
        cuda_graph=cuda_graph,
        log_every=4,
    )
    trainer.run(epochs, data)
    return trainer


def test_cuda_graph_training_matches_eager_training():
    data = batches(6)
    eager, graphed = train(False, data), train(True, data)
    assert graphed.global_step == eager.global_step == 12
    for (name, a), b in zip(
        eager.model.state_dict().items(), graphed.model.state_dict().values()
    ):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4, msg=name)
    assert graphed.train_log["loss"] == pytest.approx(eager.train_log["loss"], rel=1e-3)


def test_cuda_graph_needs_static_shapes():
    with pytest.raises(ValueError, match="static shapes"):
        train(True, batches(3, last=7), epochs=1)


def test_cuda_graph_refuses_a_scheduler_that_changes_baked_in_values():
    def one_cycle(optim):  # cycles betas[0] (a float) and lr (a float)
        return torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=0.01, total_steps=10)

    with pytest.raises(ValueError, match="captured graph uses the old value"):
        train(True, batches(3), scheduler_factory=one_cycle, epochs=1)


def test_cuda_graph_needs_a_capturable_optimizer():
    model = lenet()
    with pytest.raises(ValueError, match="capturable=True"):
        Trainer(
            model,
            torch.optim.AdamW(model.parameters()),
            F.cross_entropy,
            device="cuda",
            cuda_graph=True,
        )


@pytest.mark.parametrize("precision", ["16", "bf16"])
def test_mixed_precision_on_cuda_trains(precision):
    model = lenet()
    trainer = Trainer(
        model,
        torch.optim.AdamW(model.parameters(), lr=1e-3),
        F.cross_entropy,
        device="cuda",
        verbose=False,
        precision=precision,
    )
    data = batches(8)
    trainer.run(2, data, data[:2])
    assert all(torch.isfinite(torch.tensor(trainer.train_log["loss"])))
    assert all(torch.isfinite(torch.tensor(trainer.valid_log["loss"])))


def test_batches_are_copied_to_cuda_without_blocking(monkeypatch):
    model = lenet()
    trainer = Trainer(
        model,
        torch.optim.AdamW(model.parameters(), lr=1e-3),
        F.cross_entropy,
        device="cuda",
        verbose=False,
    )
    flags = []
    original = torch.Tensor.to

    def recording(self, *args, **kwargs):
        flags.append(kwargs.get("non_blocking", False))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", recording)
    trainer.train_step(batches(1)[0])  # pinned CPU tensors
    assert flags[:2] == [True, True]  # x, then y
