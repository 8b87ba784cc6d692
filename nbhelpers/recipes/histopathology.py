"""Chapter 05's recipe: a ResNet18 trained on histopathology patches in two phases.

Phase 1 ("frozen") trains the head on a frozen backbone (AdamW lr 1e-3, one-cycle up to 1e-2);
phase 2 ("finetune") unfreezes everything and fine-tunes with rates ten times smaller (AdamW lr
1e-4, one-cycle up to 1e-3).

    recipe = HistopathologyRecipe.for_profile()
    data = recipe.prepare()              # PatchData: decoded uint8 patches, with data.source
    run = recipe.train(data, device)     # Run: run.trainers["frozen"], run.trainers["finetune"]

Where the patches come from, in order (``prepare``): a Kaggle-layout folder with enough labelled
patches in the data folder or the mirror (the source's data); PatchCamelyon (PCam), the public
data set the Kaggle set was cut from, in torchvision's layout in the data folder or the mirror:
its train and valid splits, or its valid split alone when it holds enough patches for both parts
(``python -m nbhelpers.data.pcam fetch --split valid``, 0.8 GB, suits the quick profile); PCam
downloaded when ``download`` is set (the full profile) and the machine is online; else a
synthetic set generated once. The patches are decoded once into a uint8 tensor that lives on the
training device; batches are cut from it and augmented there (``DeviceBatches`` with
``BatchAugment``; see ``nbhelpers.data.pipeline``).

Chapter 06 needs a trained model without depending on chapter 05 having run:
``trained_histopathology_model`` trains the recipe once and caches the weights in the data folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import OneCycleLR

from nbhelpers.data.histopathology import (
    HistopathologicDataset,
    PatchFolder,
    find_kaggle_patches,
    load_histopathology_labels,
    synthetic_patches,
)
from nbhelpers.data.loaders import DeviceBatches
from nbhelpers.data.pcam import (
    PcamFolder,
    find_pcam,
    pcam_patches,
    published_rows,
    resolve_pcam,
)
from nbhelpers.data.pipeline import BatchAugment, centre_crop, decode_patches
from nbhelpers.device import get_device, seed_everything
from nbhelpers.models import histopathology_resnet18, resolve_weights, set_trainable
from nbhelpers.recipes.common import Phase, Plan, ProfiledRecipe
from nbhelpers.storage import DataSource, atomic_path, writable_data_dir
from nbhelpers.train import Callback, Trainer
from nbhelpers.train.checkpoint import load_safely
from nbhelpers.train.precision import check_precision

# Bump when a change to the recipe changes the weights it produces: cached models then retrain.
RECIPE_VERSION = 3
# the source's split of the shuffled Kaggle labels: 80% train, 20% validation
TRAIN_SHARE = 0.8
CACHE_FOLDER = "models"
WEIGHT_MODES = ("auto", "imagenet", "none")
# PCam's own splits stand in for the source's split of the Kaggle labels: training patches come
# from PCam's "train" split, validation patches from its "valid" split (the first ones of each).
PCAM_SPLITS = {"train": "train", "valid": "valid"}
# With PCam's valid split alone, both parts come from it, from disjoint ranges: validation
# its first valid_size patches (as above), training the train_size patches after them. The
# two ranges hold patches of the same slides, which PCam's own splits never share, so the
# validation accuracy is somewhat optimistic there.


@dataclass(frozen=True)
class HistopathologyRecipe(ProfiledRecipe):
    """Everything that decides what the recipe trains.

    Attributes:
        train_size, valid_size: patches used for training and validation.
        epochs_frozen, epochs_finetune: epochs of phase 1 (backbone frozen) and phase 2 (all).
        batch_size: training batch size (the source: 16); eval_batch_size: for validation.
        lr_frozen, max_lr_frozen, lr_finetune, max_lr_finetune: AdamW's rate and OneCycleLR's
            peak in each phase. As in the source, AdamW's rate is overwritten by OneCycleLR,
            which starts at max_lr / 25.
        precision: "auto" (bf16 where it is fast on the training device, else 32; resolved by
            ``train``), "32", "bf16" or "16".
        channels_last: channels-last batches and weights (faster convolutions on GPUs, and
            measured faster on this book's CPU too).
        augment: random flips and rotations of the training patches (False: centre crop only,
            to show what augmentation prevents).
        weights: the backbone's start, "auto", "imagenet" or "none" (see ``histopathology_resnet18``).
        seed: seeds the model's initialisation, the data split, the batch order and the augmentation.
        synthetic_size: patches of the synthetic set when no real set is at hand (at least
            ``train_size + valid_size``).
        download: allow downloading PCam when no real set is at hand (the full profile does).
    """

    SIZES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {
            "train_size": 32_000,
            "valid_size": 8_000,
            "epochs_frozen": 10,
            "epochs_finetune": 20,
            "batch_size": 16,
            "synthetic_size": 40_000,
            "download": True,
        },
        # quick: chosen on the 2-core CPU (one torch thread, random initialisation): about 20 s of
        # training and 0.88 validation accuracy on the synthetic set (majority share about 0.6),
        # so that chapters 05 and 06 each stay within 60 s when run side by side.
        "quick": {
            "train_size": 1_200,
            "valid_size": 300,
            "epochs_frozen": 1,
            "epochs_finetune": 2,
            "batch_size": 32,
            "synthetic_size": 1_500,
            "download": False,
        },
    }

    train_size: int = 32_000
    valid_size: int = 8_000
    epochs_frozen: int = 10
    epochs_finetune: int = 20
    batch_size: int = 16
    eval_batch_size: int = 256
    lr_frozen: float = 1e-3
    max_lr_frozen: float = 1e-2
    lr_finetune: float = 1e-4
    max_lr_finetune: float = 1e-3
    precision: str = "auto"
    channels_last: bool = True
    augment: bool = True
    weights: str = "auto"
    seed: int = 0
    synthetic_size: int = 40_000
    download: bool = False

    def __post_init__(self) -> None:
        self.check_positive_ints(
            "train_size", "valid_size", "epochs_frozen", "epochs_finetune"
        )
        self.check_positive_ints("batch_size", "eval_batch_size", "synthetic_size")
        if self.batch_size < 2:
            raise ValueError(
                f"HistopathologyRecipe.batch_size must be >= 2 (the head's BatchNorm1d), got {self.batch_size}"
            )
        self.check_positive_numbers(
            "lr_frozen", "max_lr_frozen", "lr_finetune", "max_lr_finetune"
        )
        self.check_seed()
        self.check_precision_choice()
        if self.weights not in WEIGHT_MODES:
            raise ValueError(
                f"HistopathologyRecipe.weights={self.weights!r}: use one of {WEIGHT_MODES}"
            )
        self.check_flags("channels_last", "augment", "download")

    # ---- data -----------------------------------------------------------------------------------

    def prepare(self, num_workers: int = 0) -> PatchData:
        """The recipe's patches, decoded once, from the first source that has enough of them.

        Args:
            num_workers: processes decoding patch files in parallel (see ``decode_patches``).

        Returns:
            ``PatchData`` with its ``source``: the Kaggle folder, PCam, or the synthetic set.
        """
        needed = self.train_size + self.valid_size
        folder = find_kaggle_patches(min_labelled=needed)
        if folder is not None:
            return self._from_folder(folder, num_workers)
        wanted = {
            PCAM_SPLITS["train"]: self.train_size,
            PCAM_SPLITS["valid"]: self.valid_size,
        }
        both = find_pcam(wanted)
        if both is not None:
            return self._from_pcam(both)
        if needed <= published_rows("valid"):
            valid_only = find_pcam({"valid": needed})
            if valid_only is not None:
                return self._from_pcam_valid_split(valid_only)
        lookup = resolve_pcam(wanted, download=self.download)
        if lookup.folder is not None:
            return self._from_pcam(lookup.folder)
        if self.download:
            warnings.warn(
                f"PCam not used ({lookup.reason}); training on the synthetic set",
                stacklevel=2,
            )
        return self._from_folder(
            synthetic_patches(max(needed, self.synthetic_size)), num_workers
        )

    def _from_folder(self, folder: PatchFolder, num_workers: int) -> PatchData:
        labels = load_histopathology_labels(folder.root)
        train_labels, valid_labels = split_labels(
            labels, self.train_size, self.valid_size, self.seed
        )
        # checks that every id has its file
        train_set = HistopathologicDataset(train_labels, folder.root)
        valid_set = HistopathologicDataset(valid_labels, folder.root)
        return PatchData(
            train_images=decode_patches(train_set.paths, num_workers=num_workers),
            train_targets=torch.tensor(
                train_labels["label"].tolist(), dtype=torch.int64
            ),
            valid_images=decode_patches(valid_set.paths, num_workers=num_workers),
            valid_targets=torch.tensor(
                valid_labels["label"].tolist(), dtype=torch.int64
            ),
            source=folder.source,
            folder=folder.root,
        )

    def _from_pcam(self, pcam: PcamFolder) -> PatchData:
        parts = {}
        for role, size in (("train", self.train_size), ("valid", self.valid_size)):
            images, labels = pcam_patches(PCAM_SPLITS[role], root=pcam.root, limit=size)
            parts[role] = (images.permute(0, 3, 1, 2).contiguous(), labels)
        return PatchData(
            *parts["train"], *parts["valid"], source=pcam.source, folder=None
        )

    def _from_pcam_valid_split(self, pcam: PcamFolder) -> PatchData:
        """Validation: patches [0, valid_size) of PCam's valid split; training the next
        train_size; the source's detail says so."""
        valid = pcam_patches("valid", root=pcam.root, limit=self.valid_size)
        train = pcam_patches(
            "valid", root=pcam.root, limit=self.train_size, start=self.valid_size
        )
        end = self.valid_size + self.train_size
        detail = (
            f"{pcam.source.detail}; PCam's valid split alone: patches "
            f"0-{self.valid_size - 1:,} validate, {self.valid_size:,}-{end - 1:,} train"
        )
        return PatchData(
            train[0].permute(0, 3, 1, 2).contiguous(),
            train[1],
            valid[0].permute(0, 3, 1, 2).contiguous(),
            valid[1],
            source=dataclasses.replace(pcam.source, detail=detail),
            folder=None,
        )

    def batches(
        self, data: PatchData, device: torch.device | str
    ) -> tuple[DeviceBatches, DeviceBatches]:
        """(train, valid) batches on ``device``, cut from the uint8 patches copied there once.

        Training: shuffled, augmented by ``BatchAugment`` (or centre-cropped without ``augment``);
        validation: in order, centre-cropped. x: (B, 3, 49, 49) float32 in [0, 1], y: (B,) int64.
        """
        transform = BatchAugment() if self.augment else centre_crop
        common = {"channels_last": self.channels_last, "device": device}

        train = DeviceBatches(
            data.train_images,
            data.train_targets,
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            transform=transform,
            **common,
        )
        valid = DeviceBatches(
            data.valid_images,
            data.valid_targets,
            self.eval_batch_size,
            transform=centre_crop,
            **common,
        )
        return train, valid

    # ---- model and training ---------------------------------------------------------------------

    def build_model(self) -> tuple[nn.Sequential, str]:
        """``histopathology_resnet18(weights)``, seeded, channels-last if asked; and where its weights came from."""
        seed_everything(self.seed)
        built = histopathology_resnet18(self.weights)
        model = (
            built.model.to(memory_format=torch.channels_last)
            if self.channels_last
            else built.model
        )
        return model, built.weights_source

    def plan(self, data: PatchData, device: torch.device) -> Plan:
        """The ResNet18 and the two phases: "frozen" (``epochs_frozen``), then "finetune".

        Epochs count across the phases: ``train(..., stop_after=epochs_frozen)`` stops after
        phase 1. Checked first: a precision the device lacks (ValueError).
        """
        check_precision(self.precision, device)
        train, valid = self.batches(data, device)
        model, weights_source = self.build_model()
        steps = len(train)

        def frozen(
            model: nn.Module, callbacks: list[Callback], verbose: bool
        ) -> Trainer:
            return frozen_phase(model, self, steps, device, callbacks, verbose)

        def finetune(
            model: nn.Module, callbacks: list[Callback], verbose: bool
        ) -> Trainer:
            # Each phase counts its epochs from 0: a base seed of its own keeps phase 2 from
            # repeating phase 1's orders and augmentations epoch for epoch.
            train.load_state_dict({"seed": self.seed + 1, "epoch": 0})
            return finetune_phase(model, self, steps, device, callbacks, verbose)

        phases = [
            Phase("frozen", self.epochs_frozen, frozen),
            Phase("finetune", self.epochs_finetune, finetune),
        ]
        return Plan(model.to(device), phases, train, valid, weights_source)


@dataclass(frozen=True)
class PatchData:
    """The recipe's patches, decoded.

    Attributes:
        train_images, valid_images: (N, 3, 96, 96) uint8 RGB on the CPU.
        train_targets, valid_targets: (N,) int64 labels, 1 for tumour tissue in the centre 32x32.
        source: where the patches came from (Kaggle folder, PCam, or the synthetic set).
        folder: the Kaggle-layout folder they were read from (None for PCam).
    """

    train_images: torch.Tensor
    train_targets: torch.Tensor
    valid_images: torch.Tensor
    valid_targets: torch.Tensor
    source: DataSource
    folder: Path | None


def split_labels(
    labels: pd.DataFrame, train: int, valid: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The source's split: shuffle, 80% / 20%, then the first ``train`` and ``valid`` rows of each part.

    Returns:
        (train_labels, valid_labels), DataFrames with fresh indices and no id in common.

    Raises:
        ValueError: a part holds fewer rows than asked for.
    """
    shuffled = labels.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    cut = int(TRAIN_SHARE * len(shuffled))
    train_part, valid_part = shuffled.iloc[:cut], shuffled.iloc[cut:]
    if train > len(train_part) or valid > len(valid_part):
        raise ValueError(
            f"{len(labels)} labelled patches split 80/20 give {len(train_part)} / {len(valid_part)}; "
            f"asked for train_size={train}, valid_size={valid}"
        )
    return train_part.iloc[:train].reset_index(drop=True), valid_part.iloc[
        :valid
    ].reset_index(drop=True)


def frozen_phase(
    model: nn.Sequential,
    recipe: HistopathologyRecipe,
    steps: int,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
) -> Trainer:
    """Phase 1: freeze the backbone ``model[0]``; AdamW on the head, one cycle."""
    set_trainable(model[0], False)
    head = [p for p in model.parameters() if p.requires_grad]
    lr, max_lr, epochs = recipe.lr_frozen, recipe.max_lr_frozen, recipe.epochs_frozen
    return phase_trainer(
        model, head, lr, max_lr, epochs, steps, recipe, device, callbacks, verbose
    )


def finetune_phase(
    model: nn.Sequential,
    recipe: HistopathologyRecipe,
    steps: int,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
) -> Trainer:
    """Phase 2: unfreeze the backbone; train everything with ten times smaller rates."""
    set_trainable(model[0], True)
    params = list(model.parameters())
    lr, max_lr, epochs = (
        recipe.lr_finetune,
        recipe.max_lr_finetune,
        recipe.epochs_finetune,
    )
    return phase_trainer(
        model, params, lr, max_lr, epochs, steps, recipe, device, callbacks, verbose
    )


def phase_trainer(
    model: nn.Module,
    parameters: list[nn.Parameter],
    lr: float,
    max_lr: float,
    epochs: int,
    steps: int,
    recipe: HistopathologyRecipe,
    device: torch.device,
    callbacks: Sequence[Callback],
    verbose: bool,
) -> Trainer:
    """AdamW on ``parameters`` under a one-cycle schedule peaking at ``max_lr``,
    stepped after each of the ``steps`` batches of ``epochs`` epochs: the Trainer of one
    phase."""
    optim = torch.optim.AdamW(parameters, lr=lr)
    scheduler = OneCycleLR(optim, max_lr=max_lr, steps_per_epoch=steps, epochs=epochs)
    return Trainer(
        model,
        optim,
        F.cross_entropy,
        scheduler,
        callbacks=callbacks,
        device=device,
        verbose=verbose,
        precision=recipe.precision,
    )


# ---- the cached model of chapter 06 --------------------------------------------------------------


@dataclass(frozen=True)
class CachedModel:
    """A trained histopathology model and how it was obtained.

    Attributes:
        model: the ``histopathology_resnet18`` network, in eval mode, on the requested device.
        meta: what trained it: data source, weights' origin, sizes, epochs, final validation
            accuracy, seconds of training.
        cache_path: the file the weights are cached in; None when the data folder is read-only.
        loaded_from_cache: False when this call trained the model.
    """

    model: nn.Sequential
    meta: dict[str, Any]
    cache_path: Path | None
    loaded_from_cache: bool


def model_cache_path(
    recipe: HistopathologyRecipe, data: PatchData, init: str
) -> Path | None:
    """Where the weights trained by ``recipe`` on ``data`` are cached; None if the data folder is read-only.

    ``<data folder>/models/histopathology-resnet18-r<recipe version>-<source kind>-<init>-<key>.pt``,
    with ``init`` "random" or "imagenet" and ``key`` a hash of every recipe field and of the data
    (its source and sizes). Changing any of them names a new file instead of reusing weights
    trained differently.

    Raises:
        ValueError: ``init`` is not "random" or "imagenet".
    """
    if init not in ("random", "imagenet"):
        raise ValueError(f"init must be 'random' or 'imagenet', got {init!r}")
    folder = writable_data_dir()
    if folder is None:
        return None
    identity = {
        "recipe": dataclasses.asdict(recipe),
        "source": str(data.source),
        "sizes": [len(data.train_targets), len(data.valid_targets)],
    }
    key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return (
        folder
        / CACHE_FOLDER
        / f"histopathology-resnet18-r{RECIPE_VERSION}-{data.source.kind}-{init}-{key}.pt"
    )


def save_model(model: nn.Module, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``{"state_dict", "meta"}`` atomically (temporary file beside ``path``, then a rename).

    ``meta`` must hold plain values (str, int, float, bool, lists, dicts) so that
    ``torch.load(weights_only=True)`` reads it back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    with atomic_path(path) as temporary:
        torch.save({"state_dict": state, "meta": dict(meta)}, temporary)
    return path


def load_model(path: str | Path) -> tuple[nn.Sequential, dict[str, Any]]:
    """The ``histopathology_resnet18`` and meta that ``save_model`` wrote (``weights_only=True``).

    Returns:
        (model on the CPU in eval mode, meta).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not such a checkpoint, or its weights do not fit the model.
    """
    saved = load_safely(path)
    if not isinstance(saved, dict) or set(saved) != {"state_dict", "meta"}:
        raise ValueError(f"{path} is not a model file written by save_model")
    model = histopathology_resnet18(weights="none").model
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as error:
        raise ValueError(
            f"{path}: the weights do not fit histopathology_resnet18 ({error})"
        ) from None
    return model.eval(), dict(saved["meta"])


def trained_histopathology_model(
    recipe: HistopathologyRecipe,
    data: PatchData,
    device: torch.device | str | None = None,
    verbose: bool = False,
) -> CachedModel:
    """The model ``recipe`` trains on ``data``: from the cache, or trained now and cached.

    The cache file (``model_cache_path``) is named by recipe version, data source, the
    backbone's start (ImageNet or random) and a hash of the recipe and the data. Several
    processes may call this at once: each writes through its own temporary file and renames it
    into place, so a reader never sees half a file.
    """
    device = torch.device(device) if device is not None else get_device()
    recipe = recipe.resolved(device)
    init = (
        "imagenet"
        if resolve_weights(recipe.weights, "resnet18").pretrained
        else "random"
    )
    path = model_cache_path(recipe, data, init)
    if path is not None and path.is_file():
        model, meta = load_model(path)
        return CachedModel(model.to(device), meta, path, loaded_from_cache=True)
    run = recipe.train(data, device, verbose=verbose)
    meta = {
        "recipe_version": RECIPE_VERSION,
        "source": str(data.source),
        "weights_source": run.init,
        "train_size": recipe.train_size,
        "valid_size": recipe.valid_size,
        "epochs_frozen": recipe.epochs_frozen,
        "epochs_finetune": recipe.epochs_finetune,
        "valid_accuracy": float(run.valid_accuracy),
        "seconds": float(run.seconds["total"]),
    }
    if path is not None:
        save_model(run.model, path, meta)
    return CachedModel(run.model.eval(), meta, path, loaded_from_cache=False)
