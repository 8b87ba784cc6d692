"""Chapter 07's recipe: a character-level CNN that guesses the gender of Spanish given names.

The seed's recipe: every (name, gender) row encoded as ``MAX_LEN + 1`` token ids, a seeded
80 / 20 split, batches of 32 in a new order each epoch, ``CharCNN(conv_width=128, context=4)``
trained with Adam at 1e-3 for 5 epochs. ``NamesRecipe.for_profile()`` reads epochs and batch size
from ``SIZES["names"]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset, random_split

from nbhelpers.data.names import GENDERS, NamesDataset, encode
from nbhelpers.device import get_device, seed_everything, sizes
from nbhelpers.models import CharCNN
from nbhelpers.train import Callback, Trainer

EVAL_BATCH_SIZE = 1024  # validation batches: any size gives the same means, larger is faster


@dataclass(frozen=True)
class NamesRecipe:
    """What to train and how; defaults are the seed's recipe (the "full" profile).

    Attributes:
        epochs: passes over the training split.
        batch_size: training examples per optimizer step.
        lr: Adam's learning rate (constant).
        valid_fraction: share of the names held out for validation.
        subset: train and validate on this many names only (a seeded choice); None: all.
        seed: seeds the split, the data order and the initial weights.
        context, conv_width, embedding_dim, fc_width: passed to ``CharCNN``.
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    valid_fraction: float = 0.2
    subset: int | None = None
    seed: int = 0
    context: int = 4
    conv_width: int = 128
    embedding_dim: int = 10
    fc_width: int = 256

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "context", "conv_width", "embedding_dim", "fc_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.subset is not None and (not isinstance(self.subset, int) or self.subset < 2):
            raise ValueError(f"subset must be None or an int >= 2, got {self.subset!r}")
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must lie strictly between 0 and 1, got {self.valid_fraction!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")

    @classmethod
    def for_profile(cls, run_profile: str | None = None, **overrides: Any) -> NamesRecipe:
        """The recipe with epochs, batch size and subset of ``SIZES["names"][profile]``, then ``overrides``."""
        table = sizes("names", run_profile)
        base = cls(epochs=table["epochs"], batch_size=table["batch_size"], subset=table["subset"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown NamesRecipe field(s) {unknown}; known: {sorted(known)}")
        return replace(base, **overrides)


def names_dataset(frame: pd.DataFrame) -> NamesDataset:
    """Encode a ``load_names()`` frame: label 1 for "F", 0 for "M" (``GENDERS``)."""
    for column in ("name", "gender"):
        if column not in frame.columns:
            raise ValueError(f"expected a frame with columns name and gender, got {list(frame.columns)}")
    unknown = sorted(set(frame["gender"]) - set(GENDERS))
    if unknown:
        raise ValueError(f"unknown gender value(s) {unknown}; expected {GENDERS}")
    labels = [GENDERS.index(gender) for gender in frame["gender"]]
    return NamesDataset(frame["name"].tolist(), labels)


def split_names(dataset: NamesDataset, recipe: NamesRecipe) -> tuple[Subset, Subset]:
    """Seeded (train, valid) subsets: ``random_split`` by fractions, as in the seed.

    With ``recipe.subset`` set, a seeded choice of that many names is split instead.
    """
    generator = torch.Generator().manual_seed(recipe.seed)
    pool: Any = dataset
    if recipe.subset is not None and recipe.subset < len(dataset):
        chosen = torch.randperm(len(dataset), generator=generator)[: recipe.subset].tolist()
        pool = Subset(dataset, chosen)
    train, valid = random_split(pool, [1 - recipe.valid_fraction, recipe.valid_fraction], generator=generator)
    return train, valid


def make_loaders(train: Subset, valid: Subset, recipe: NamesRecipe) -> tuple[DataLoader, DataLoader]:
    """Shuffled training batches (own seeded generator) and ordered validation batches.

    Each batch is (x, y): x (B, MAX_LEN + 1) int64 token ids, y (B,) int64 labels.
    """
    generator = torch.Generator().manual_seed(recipe.seed)
    train_loader = DataLoader(train, batch_size=recipe.batch_size, shuffle=True, generator=generator)
    valid_loader = DataLoader(valid, batch_size=EVAL_BATCH_SIZE, shuffle=False)
    return train_loader, valid_loader


def build_trainer(
    recipe: NamesRecipe,
    device: torch.device | str | None = None,
    callbacks: Iterable[Callback | Callable[[], Any]] = (),
    verbose: bool = True,
) -> Trainer:
    """A Trainer for a seeded ``CharCNN`` of the recipe's shape, Adam at ``recipe.lr``."""
    device = torch.device(device) if device is not None else get_device()
    seed_everything(recipe.seed)
    model = CharCNN(
        context=recipe.context,
        embedding_dim=recipe.embedding_dim,
        conv_width=recipe.conv_width,
        fc_width=recipe.fc_width,
    )
    optim = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    return Trainer(model, optim, F.cross_entropy, callbacks=callbacks, device=device, verbose=verbose)


@dataclass
class NamesRun:
    """The outcome of ``train_names``: the Trainer, its loaders, final validation and wall time."""

    recipe: NamesRecipe
    trainer: Trainer
    train_loader: DataLoader
    valid_loader: DataLoader
    valid_loss: float
    valid_accuracy: float
    seconds: float


def train_names(
    recipe: NamesRecipe,
    frame: pd.DataFrame,
    device: torch.device | str | None = None,
    callbacks: Iterable[Callback | Callable[[], Any]] = (),
    verbose: bool = True,
) -> NamesRun:
    """Encode ``frame`` (from ``load_names()``), split, train and validate; seconds include encoding."""
    start = time.perf_counter()
    train, valid = split_names(names_dataset(frame), recipe)
    train_loader, valid_loader = make_loaders(train, valid, recipe)
    trainer = build_trainer(recipe, device, callbacks, verbose)
    trainer.run(recipe.epochs, train_loader, valid_loader)
    return NamesRun(
        recipe=recipe,
        trainer=trainer,
        train_loader=train_loader,
        valid_loader=valid_loader,
        valid_loss=trainer.valid_log["loss"][-1],
        valid_accuracy=trainer.valid_log["accu"][-1],
        seconds=time.perf_counter() - start,
    )


def female_probability(trainer: Trainer, names: Sequence[str]) -> torch.Tensor:
    """p(F | name) for each name: softmax of the model's scores, column 1. Returns (len(names),) on the CPU."""
    if isinstance(names, str) or len(names) == 0:
        raise ValueError(f"expected a non-empty list of names, got {names!r}")
    tokens = torch.tensor([encode(name) for name in names], dtype=torch.long)
    return F.softmax(trainer.predict(tokens).float(), dim=1)[:, GENDERS.index("F")].cpu()
