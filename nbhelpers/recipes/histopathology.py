"""Chapter 05's recipe: a ResNet18 trained on histopathology patches in two phases.

Phase 1 ("frozen") trains the head on a frozen backbone (AdamW lr 1e-3, one-cycle up to 1e-2);
phase 2 ("finetune") unfreezes everything and fine-tunes with rates ten times smaller (AdamW lr
1e-4, one-cycle up to 1e-3).

    recipe = HistopathologyRecipe.for_profile()
    data = recipe.prepare()                         # PatchData: decoded uint8 patches
    frozen, finetune = recipe.train(data, device)   # one Trainer per phase

Where the patches come from, in order (``prepare``): a Kaggle-layout folder with enough labelled
patches in the data folder or the mirror (the source's data); PatchCamelyon (PCam), the public
data set the Kaggle set was cut from, in torchvision's layout in the data folder or the mirror:
its train and valid splits, or its valid split alone when it holds enough patches for both parts
(``python -m nbhelpers.data.pcam fetch --split valid``, 0.8 GB, suits the quick profile); PCam
downloaded when ``download`` is set (the full profile) and the machine is online; else a
synthetic set generated once. The patches are decoded once into a uint8 tensor that lives on the
training device; batches are cut from it and augmented there (``DeviceBatches`` with
``BatchAugment``; see ``nbhelpers.data.pipeline``).

Two variants for comparisons: ``freeze_batchnorm=True`` keeps the backbone in eval mode during
phase 1, so that its batch-norm statistics stay as they were (``frozen_phase``), and
``train_discriminative`` trains everything in one phase, the backbone at ``backbone_lr_factor``
times the head's rates.

Chapter 06 needs a trained model without depending on chapter 05 having run:
``trained_histopathology_model`` trains the recipe once and caches the weights in the data folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import OneCycleLR

from nbhelpers import checks
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
from nbhelpers.models import (
    WEIGHT_MODES,
    BuiltModel,
    ResolvedWeights,
    histopathology_resnet18,
    resolve_weights,
    set_trainable,
)
from nbhelpers.recipes.common import PRECISION_CHOICES, ProfiledRecipe
from nbhelpers.storage import DataSource, atomic_path, writable_data_dir
from nbhelpers.train import Callback, Trainer
from nbhelpers.train.checkpoint import load_safely
from nbhelpers.train.precision import resolve_precision

# Bump when a change to the recipe changes the weights it produces: cached models then retrain.
# 4: the backbone starts with the normalisation of its weights (ImageNet's mean and std).
RECIPE_VERSION = 4
# the source's split of the shuffled Kaggle labels: 80% train, 20% validation
TRAIN_SHARE = 0.8
CACHE_FOLDER = "models"
# With PCam's valid split alone, both parts come from it, from disjoint ranges: validation
# its first valid_size patches, training the train_size patches after them. The
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
        freeze_batchnorm: keep the backbone in eval mode in phase 1, so that its batch-norm
            layers normalise with, and keep, their running statistics (False, the lecture
            notebook's way: they go on updating them although their parameters are frozen).
        backbone_lr_factor: ``train_discriminative``'s backbone rates as a fraction of the
            head's (``train`` does not use it).
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
    freeze_batchnorm: bool = False
    backbone_lr_factor: float = 0.1
    weights: str = "auto"
    seed: int = 0
    synthetic_size: int = 40_000
    download: bool = False

    def __post_init__(self) -> None:
        checks.fields(
            self,
            integers=("train_size", "valid_size", "epochs_frozen", "epochs_finetune"),
            counts=("seed",),
            flags=("channels_last", "augment", "download", "freeze_batchnorm"),
            choices={"precision": PRECISION_CHOICES, "weights": WEIGHT_MODES},
        )
        checks.fields(
            self, integers=("batch_size", "eval_batch_size", "synthetic_size")
        )
        if self.batch_size < 2:
            raise ValueError(
                "HistopathologyRecipe.batch_size must be >= 2 (the head's BatchNorm1d), "
                f"got {self.batch_size}"
            )
        rates = ("lr_frozen", "max_lr_frozen", "lr_finetune", "max_lr_finetune")
        rates += ("backbone_lr_factor",)
        checks.fields(self, positive_numbers=rates)

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
            "train": self.train_size,
            "valid": self.valid_size,
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
            images, labels = pcam_patches(role, root=pcam.root, limit=size)
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

    # ---- model and training ---------------------------------------------------------------

    def train(
        self,
        data: PatchData,
        device: torch.device | str | None = None,
        *,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        verbose: bool = True,
        checkpoints: str | os.PathLike[str] | None = None,
    ) -> tuple[Trainer, Trainer]:
        """Phase 1 trains the head on the frozen backbone, phase 2 everything with
        rates ten times smaller; returns both Trainers. ``checkpoints``: a folder for
        ``frozen.pt`` and ``finetune.pt``, written every epoch, resumed if present."""
        device = self.checked_device(device)
        train, valid = self.batches(data, device)
        model = self.build_model().model.to(device)
        frozen = self.frozen_phase(
            model, train, valid, device, callbacks, verbose, checkpoints
        )
        set_trainable(model[0], True)  # phase 2: everything, rates ten times smaller,
        model[0].train()  # batch norm updating (again, after freeze_batchnorm),
        train = train.reseeded(self.seed + 1)  # and batch orders of its own
        finetune = self.phase_trainer(
            model, "finetune", len(train), device, callbacks, verbose
        )
        finetune.run(
            self.epochs_finetune, train, valid, **self.saving(checkpoints, "finetune")
        )
        return frozen, finetune

    def frozen_phase(
        self,
        model: nn.Sequential,
        train: DeviceBatches,
        valid: DeviceBatches,
        device: torch.device,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        verbose: bool = True,
        checkpoints: str | os.PathLike[str] | None = None,
    ) -> Trainer:
        """Phase 1 on ``model`` (``build_model``'s, on ``device``): the head learns,
        the backbone's parameters are frozen, and with ``freeze_batchnorm`` its
        batch-norm statistics too (eval mode, which the Trainer leaves as it is)."""
        set_trainable(model[0], False)  # only the head learns
        if self.freeze_batchnorm:
            model[0].eval()  # batch norm with its running statistics, which stay put
        frozen = self.phase_trainer(
            model, "frozen", len(train), device, callbacks, verbose
        )
        frozen.run(
            self.epochs_frozen, train, valid, **self.saving(checkpoints, "frozen")
        )
        return frozen

    def train_discriminative(
        self,
        data: PatchData,
        device: torch.device | str | None = None,
        *,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        verbose: bool = True,
    ) -> Trainer:
        """One phase of ``epochs_frozen + epochs_finetune`` epochs over every parameter,
        with discriminative rates (``discriminative_trainer``), instead of ``train``'s
        two phases; the same model, batches and seed. Returns its Trainer."""
        device = self.checked_device(device)
        train, valid = self.batches(data, device)
        model = self.build_model().model.to(device)
        trainer = self.discriminative_trainer(
            model, len(train), device, callbacks, verbose
        )
        trainer.run(self.epochs_frozen + self.epochs_finetune, train, valid)
        return trainer

    def discriminative_trainer(
        self,
        model: nn.Sequential,
        steps: int,
        device: torch.device,
        callbacks: list[Callback] | tuple[Callback, ...],
        verbose: bool,
    ) -> Trainer:
        """AdamW with two parameter groups: the head (``model[1]``) at phase 1's
        rates, the backbone (``model[0]``) at ``backbone_lr_factor`` times them; one
        cycle over both phases' epochs, each group to and from its own peak."""
        factor = self.backbone_lr_factor
        groups = [
            {"params": model[0].parameters(), "lr": self.lr_frozen * factor},
            {"params": model[1].parameters(), "lr": self.lr_frozen},
        ]
        optim = torch.optim.AdamW(groups)  # OneCycleLR overwrites each group's lr
        peaks = [self.max_lr_frozen * factor, self.max_lr_frozen]  # one per group
        epochs = self.epochs_frozen + self.epochs_finetune
        scheduler = OneCycleLR(
            optim, max_lr=peaks, steps_per_epoch=steps, epochs=epochs
        )
        return Trainer(
            model,
            optim,
            F.cross_entropy,
            scheduler,
            callbacks,
            device,
            verbose,
            precision=self.precision,
        )

    def phase_trainer(
        self,
        model: nn.Module,
        phase: str,
        steps: int,
        device: torch.device,
        callbacks: list[Callback] | tuple[Callback, ...],
        verbose: bool,
    ) -> Trainer:
        """AdamW on the trainable parameters, one cycle over the phase's epochs."""
        lr, max_lr, epochs = self.phase_settings(phase)
        params = [p for p in model.parameters() if p.requires_grad]
        optim = torch.optim.AdamW(params, lr=lr)  # OneCycleLR overwrites lr at once
        scheduler = OneCycleLR(
            optim, max_lr=max_lr, steps_per_epoch=steps, epochs=epochs
        )
        return Trainer(
            model,
            optim,
            F.cross_entropy,
            scheduler,
            callbacks,
            device,
            verbose,
            precision=self.precision,
        )

    def phase_settings(self, phase: str) -> tuple[float, float, int]:
        """AdamW's rate, the one-cycle peak and the epochs of ``phase`` ("frozen" or
        "finetune")."""
        if phase == "frozen":
            return self.lr_frozen, self.max_lr_frozen, self.epochs_frozen
        return self.lr_finetune, self.max_lr_finetune, self.epochs_finetune

    def saving(
        self, folder: str | os.PathLike[str] | None, phase: str
    ) -> dict[str, Any]:
        """``Trainer.run``'s checkpoint arguments for ``phase``: ``folder/phase.pt`` and the
        recipe's identity (none without a folder)."""
        if folder is None:
            return {}
        return {
            "checkpoint": Path(folder) / f"{phase}.pt",
            "meta": self.identity(phase=phase),
        }

    def build_model(self) -> BuiltModel:
        """``histopathology_resnet18(weights)``, seeded, channels-last if asked."""
        seed_everything(self.seed)
        built = histopathology_resnet18(self.weights)
        if self.channels_last:
            built.model.to(memory_format=torch.channels_last)
        return built

    def checked_device(self, device: torch.device | str | None) -> torch.device:
        """``device`` (None: ``get_device()``) after checking the recipe's precision runs there."""
        device = torch.device(device) if device is not None else get_device()
        resolve_precision(self.precision, device)
        return device


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
        not_cached: why a model trained by this call was not cached (a full disk, say); None
            when it was, or when it came from the cache.
    """

    model: nn.Sequential
    meta: dict[str, Any]
    cache_path: Path | None
    loaded_from_cache: bool
    not_cached: str | None = None


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
    weights = resolve_weights(recipe.weights, "resnet18")
    path = model_cache_path(recipe.resolved(device), data, _backbone_start(weights))
    if path is not None and path.is_file():
        model, meta = load_model(path)
        return CachedModel(model.to(device), meta, path, loaded_from_cache=True)
    started = time.perf_counter()
    _, finetune = recipe.train(data, device, verbose=verbose)
    seconds = time.perf_counter() - started
    return _cached(recipe, data, finetune, weights, path, seconds)


def store_trained_model(
    recipe: HistopathologyRecipe,
    data: PatchData,
    finetune: Trainer,
    device: torch.device | str,
    seconds: float,
) -> CachedModel:
    """Cache the model that ``recipe.train(data, device)`` trained (its second Trainer,
    ``finetune``, which ran for ``seconds``) where ``trained_histopathology_model`` looks
    for it, so that chapter 06 finds the model chapter 05 trained.

    A failed write (a full disk, say) does not lose the model: the returned ``CachedModel``
    holds it and says why it was not cached.
    """
    weights = resolve_weights(recipe.weights, "resnet18")
    path = model_cache_path(recipe.resolved(device), data, _backbone_start(weights))
    return _cached(recipe, data, finetune, weights, path, seconds)


def _cached(
    recipe: HistopathologyRecipe,
    data: PatchData,
    finetune: Trainer,
    weights: ResolvedWeights,
    path: Path | None,
    seconds: float,
) -> CachedModel:
    """``finetune``'s model written to ``path`` (None: a read-only data folder) with what
    trained it; a failed write is reported in ``not_cached``, the model kept."""
    meta = {
        "recipe_version": RECIPE_VERSION,
        "source": str(data.source),
        "weights_source": weights.source,
        "train_size": recipe.train_size,
        "valid_size": recipe.valid_size,
        "epochs_frozen": recipe.epochs_frozen,
        "epochs_finetune": recipe.epochs_finetune,
        "valid_accuracy": float(finetune.valid_log["accuracy"][-1]),
        "seconds": seconds,
    }
    model, not_cached = finetune.model.eval(), None
    if path is not None:
        try:
            save_model(model, path, meta)
        except OSError as error:  # the trained model is worth more than its cache entry
            not_cached = f"the cache could not be written ({error})"
    return CachedModel(
        model, meta, path, loaded_from_cache=False, not_cached=not_cached
    )


def _backbone_start(weights: ResolvedWeights) -> str:
    """The cache name's word for where the backbone started: "imagenet" or "random"."""
    return "imagenet" if weights.pretrained else "random"
