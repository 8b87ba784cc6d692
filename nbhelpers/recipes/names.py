"""Chapter 07's recipe: a character-level CNN that guesses the gender of Spanish given names.

The source's recipe: every (name, gender) row encoded as ``MAX_LEN + 1`` token ids, a seeded
80 / 20 split, batches of 32 in a new order each epoch, ``CharCNN(conv_width=128, context=4)``
trained with Adam at 1e-3 for 5 epochs.

    recipe = NamesRecipe.for_profile()
    data = recipe.prepare()               # NamesData: the split, with data.source
    trainer = recipe.train(data, device)  # the Trainer: model, logs
    female_probability(trainer.model, ["María José", "Tuco"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset, random_split

from nbhelpers import checks
from nbhelpers.data.names import GENDERS, NamesDataset, NamesTable, load_names
from nbhelpers.data.tokens import encode, normalize_name
from nbhelpers.device import seed_everything
from nbhelpers.models import CharCNN
from nbhelpers.recipes.common import ProfiledRecipe
from nbhelpers.storage import DataSource
from nbhelpers.train import Callback, Trainer, eval_context


@dataclass(frozen=True)
class NamesRecipe(ProfiledRecipe):
    """What to train and how; the defaults are the source's recipe (the "full" profile).

    Attributes:
        train_size, valid_size: None (the source's split of all names, 80 / 20 by
            ``valid_fraction``), or numbers of names drawn (seeded) for training and validation.
        valid_fraction: share of the names held out for validation when the sizes are None.
        epochs: passes over the training split.
        batch_size: training examples per optimizer step; eval_batch_size: for validation.
        lr: Adam's learning rate (constant).
        seed: seeds the split, the data order and the initial weights.
        context, conv_width, embedding_dim, fc_width: the shape of the ``CharCNN``.
    """

    SIZES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"epochs": 5, "batch_size": 32},
        "quick": {"epochs": 2, "batch_size": 64},
    }

    train_size: int | None = None
    valid_size: int | None = None
    valid_fraction: float = 0.2
    epochs: int = 5
    batch_size: int = 32
    eval_batch_size: int = 1_024
    lr: float = 1e-3
    seed: int = 0
    context: int = 4
    conv_width: int = 128
    embedding_dim: int = 10
    fc_width: int = 256

    def __post_init__(self) -> None:
        checks.fields(
            self,
            integers=("epochs", "batch_size", "eval_batch_size", "context"),
            counts=("seed",),
            positive_numbers=("lr",),
        )
        checks.fields(self, integers=("conv_width", "embedding_dim", "fc_width"))
        if (self.train_size is None) != (self.valid_size is None):
            raise ValueError(
                "NamesRecipe: give both train_size and valid_size or neither, got "
                f"{self.train_size!r} and {self.valid_size!r}"
            )
        if self.train_size is not None:
            checks.fields(self, integers=("train_size", "valid_size"))
        fraction = self.valid_fraction
        if not checks.is_number(fraction) or not 0 < fraction < 1:
            raise ValueError(
                "NamesRecipe.valid_fraction must lie strictly between 0 and 1, got "
                f"{fraction!r}"
            )

    def prepare(self, table: NamesTable | None = None) -> NamesData:
        """Encode ``table`` (default: ``load_names()``) and split it, seeded.

        Raises:
            ValueError: the table lacks a column, holds an unknown gender, or is too small for
                the requested sizes.
        """
        table = table if table is not None else load_names()
        dataset = names_dataset(table.frame)
        generator = torch.Generator().manual_seed(self.seed)
        if self.train_size is None:
            train, valid = random_split(
                dataset,
                [1 - self.valid_fraction, self.valid_fraction],
                generator=generator,
            )
        else:
            assert self.valid_size is not None
            wanted = self.train_size + self.valid_size
            if wanted > len(dataset):
                raise ValueError(
                    f"train_size + valid_size = {wanted:,} names, but the table ({table.source}) holds {len(dataset):,}"
                )
            order = torch.randperm(len(dataset), generator=generator).tolist()
            train = Subset(dataset, order[: self.train_size])
            valid = Subset(dataset, order[self.train_size : wanted])
        return NamesData(table=table, train=train, valid=valid, source=table.source)

    def batches(self, data: NamesData) -> tuple[DataLoader, DataLoader]:
        """Shuffled training batches (the recipe's seed) and ordered validation batches.

        Each batch is (x, y): x (B, MAX_LEN + 1) int64 token ids, y (B,) int64 labels.
        """
        generator = torch.Generator().manual_seed(self.seed)
        train = DataLoader(
            data.train, batch_size=self.batch_size, shuffle=True, generator=generator
        )
        valid = DataLoader(data.valid, batch_size=self.eval_batch_size, shuffle=False)
        return train, valid

    def train(
        self,
        data: NamesData,
        device: torch.device | str | None = None,
        *,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        verbose: bool = True,
        checkpoint: str | None = None,
    ) -> Trainer:
        """A ``CharCNN`` of the recipe's shape trained by Adam; the Trainer."""
        train, valid = self.batches(data)
        seed_everything(self.seed)
        model = CharCNN(
            context=self.context,
            embedding_dim=self.embedding_dim,
            conv_width=self.conv_width,
            fc_width=self.fc_width,
        )
        optim = torch.optim.Adam(model.parameters(), lr=self.lr)
        trainer = Trainer(
            model,
            optim,
            F.cross_entropy,
            callbacks=callbacks,
            device=device,
            verbose=verbose,
        )
        trainer.run(
            self.epochs, train, valid, checkpoint=checkpoint, meta=self.identity()
        )
        return trainer


@dataclass(frozen=True)
class NamesData:
    """The recipe's data: the table and its seeded split into encoded names.

    Attributes:
        table: the names as loaded (``table.frame``: columns name, gender).
        train, valid: disjoint ``Subset``s of one ``NamesDataset``; items (x, y) with
            x (MAX_LEN + 1,) int64 token ids and y an int64 label (0 for M, 1 for F).
        source: where the names came from.
    """

    table: NamesTable
    train: Subset
    valid: Subset
    source: DataSource


def names_dataset(frame: pd.DataFrame) -> NamesDataset:
    """Encode a names frame (columns name, gender): label 1 for "F", 0 for "M" (``GENDERS``).

    Raises:
        ValueError: a missing column or a gender other than M and F.
    """
    for column in ("name", "gender"):
        if column not in frame.columns:
            raise ValueError(
                f"expected a frame with columns name and gender, got {list(frame.columns)}"
            )
    unknown = sorted(set(frame["gender"]) - set(GENDERS))
    if unknown:
        raise ValueError(f"unknown gender value(s) {unknown}; expected {GENDERS}")
    labels = [GENDERS.index(gender) for gender in frame["gender"]]
    return NamesDataset(frame["name"].tolist(), labels)


def female_probability(model: CharCNN, names: Sequence[str]) -> torch.Tensor:
    """p(F | name) for each name, as the model sees it after ``normalize_name``.

    Names are normalised as the data was ("María José" -> "maria_jose"); a name that cannot be
    (digits, other alphabets, empty) raises instead of being silently cut.

    Args:
        model: a trained ``CharCNN`` (e.g. ``run.model``), on any device.
        names: one or more names.

    Returns:
        (len(names),) float32 probabilities on the CPU.

    Raises:
        ValueError: no names, a single string instead of a list, or a name outside the vocabulary.
    """
    if isinstance(names, str) or len(names) == 0:
        raise ValueError(f"expected a non-empty list of names, got {names!r}")
    tokens = torch.tensor(
        [encode(normalize_name(name)) for name in names], dtype=torch.long
    )
    device = next(model.parameters()).device
    with torch.inference_mode(), eval_context(model):
        scores = model(tokens.to(device))
    return F.softmax(scores.float(), dim=1)[:, GENDERS.index("F")].cpu()
