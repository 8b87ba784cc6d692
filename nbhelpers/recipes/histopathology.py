"""Chapter 05's recipe: a ResNet18 trained on histopathology patches in two phases.

Phase 1 trains the head on a frozen backbone (AdamW lr 1e-3, one-cycle up to 1e-2); phase 2
unfreezes everything and fine-tunes with rates ten times smaller (AdamW lr 1e-4, one-cycle up to
1e-3). Sizes and epochs come from ``nbhelpers.device.SIZES["histopathology"]``.

Used by chapter 05 (which runs the phases one by one and shows them), by chapter 06 (which needs
a trained model: ``trained_histopathology_model`` trains the recipe once and caches the weights)
and by ``benchmarks/histopathology_pipeline.py`` (end-to-end timing on a GPU).

Data path: the patches are decoded once into a uint8 tensor (``decode_patches``) that lives on
the training device; batches are cut from it and augmented there (``BatchAugment``). See
``nbhelpers.data.pipeline``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import OneCycleLR

from nbhelpers.data.histopathology import (
    HistopathologicDataset,
    histopathology_root,
    load_histopathology_labels,
)
from nbhelpers.data.paths import data_dir
from nbhelpers.data.pipeline import BatchAugment, PatchBatches, decode_patches
from nbhelpers.data.synthetic_histopathology import GENERATOR_VERSION, MARKER
from nbhelpers.device import get_device, profile, seed_everything, sizes
from nbhelpers.models import histopathology_resnet18, set_trainable
from nbhelpers.models.pretrained import resolve_weights
from nbhelpers.train import Trainer
from nbhelpers.train.checkpoint import load_safely, save_atomically

# Bump when a change to the recipe changes the weights it produces: cached models then retrain.
RECIPE_VERSION = 1
TRAIN_SHARE = 0.8  # the seed's split of the shuffled labels: 80% train, 20% validation
CACHE_FOLDER = "models"


@dataclass(frozen=True)
class HistopathologyRecipe:
    """Everything that decides what the recipe trains. Build it with ``recipe()``.

    Attributes:
        train, valid: patches used for training and validation.
        epochs_frozen, epochs_finetune: epochs of phase 1 (backbone frozen) and phase 2 (all).
        batch_size: training batch size (the seed: 16); eval_batch_size: for validation.
        lr_frozen, max_lr_frozen, lr_finetune, max_lr_finetune: AdamW's rate and OneCycleLR's
            peak in each phase. As in the seed, AdamW's rate is overwritten by OneCycleLR, which
            starts at max_lr / 25.
        precision: the Trainer's precision, "32" or "bf16" (autocast); ``recipe()`` picks
            ``fast_precision(get_device())``.
        channels_last: give the network channels-last batches and weights (faster convolutions
            on GPUs, and measured faster on this book's CPU too).
        weights: the backbone's start, "auto", "imagenet" or "none" (see ``histopathology_resnet18``).
        seed: seeds the model's initialisation, the data split, the batch order and the augmentation.
        profile: the run profile the sizes came from (names the model cache).
    """

    train: int
    valid: int
    epochs_frozen: int
    epochs_finetune: int
    batch_size: int
    eval_batch_size: int = 256
    lr_frozen: float = 1e-3
    max_lr_frozen: float = 1e-2
    lr_finetune: float = 1e-4
    max_lr_finetune: float = 1e-3
    precision: str = "32"
    channels_last: bool = True
    weights: str = "auto"
    seed: int = 0
    profile: str = "quick"

    def __post_init__(self) -> None:
        for name in ("train", "valid", "epochs_frozen", "epochs_finetune", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (the head's BatchNorm1d), got {self.batch_size}")


def recipe(run_profile: str | None = None, **overrides: Any) -> HistopathologyRecipe:
    """The recipe of a run profile (``SIZES["histopathology"]``), with optional field overrides.

    Example: ``recipe("full", batch_size=256, precision="bf16")`` for a fast GPU run.
    """
    chosen = run_profile or profile()
    table = sizes("histopathology", chosen)
    names = {f.name for f in dataclasses.fields(HistopathologyRecipe)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown recipe field(s) {sorted(unknown)}; known: {sorted(names)}")
    values = {key: value for key, value in table.items() if key in names}
    values.update(profile=chosen, precision=fast_precision(get_device()))
    values.update(overrides)
    return HistopathologyRecipe(**values)


def fast_precision(device: torch.device | str) -> str:
    """"bf16" where bfloat16 autocast is fast, else "32".

    Fast: CUDA devices with bfloat16 support, and CPUs with AVX-512 BF16 or AMX instructions
    (bfloat16 matrix multiplication in hardware; on this book's development CPU it halves the
    time of a ResNet18 training step). Elsewhere bfloat16 would be emulated, slower than float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "32"
    if device.type == "cpu":
        probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return "bf16" if any(probe is not None and probe() for probe in probes) else "32"
    return "32"


# ---- data ----------------------------------------------------------------------------------------


def split_labels(labels: pd.DataFrame, train: int, valid: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seed's split: shuffle, 80% / 20%, then the first ``train`` and ``valid`` rows of each part.

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
            f"asked for train={train}, valid={valid}"
        )
    return train_part.iloc[:train].reset_index(drop=True), valid_part.iloc[:valid].reset_index(drop=True)


@dataclass
class PatchData:
    """The recipe's patches, decoded. images: (N, 3, 96, 96) uint8 RGB on the CPU; labels: (N,) int64."""

    root: Path
    source: str
    train_labels: pd.DataFrame
    valid_labels: pd.DataFrame
    train_images: torch.Tensor
    valid_images: torch.Tensor

    @property
    def train_targets(self) -> torch.Tensor:
        return torch.tensor(self.train_labels["label"].tolist(), dtype=torch.int64)

    @property
    def valid_targets(self) -> torch.Tensor:
        return torch.tensor(self.valid_labels["label"].tolist(), dtype=torch.int64)


def load_patch_data(config: HistopathologyRecipe, root: str | Path | None = None, num_workers: int = 0) -> PatchData:
    """Split the labels and decode the recipe's patches once.

    Args:
        config: gives the sizes and the split's seed.
        root: a Kaggle-layout folder; None means ``histopathology_root(min_patches=train + valid)``
            (the real set when a full copy is present, else the synthetic one).
        num_workers: processes decoding in parallel (see ``decode_patches``).
    """
    if root is None:
        root = histopathology_root(min_patches=config.train + config.valid)
    labels = load_histopathology_labels(root)
    train_labels, valid_labels = split_labels(labels, config.train, config.valid, config.seed)
    train_set = HistopathologicDataset(train_labels, root)  # checks every id has its file
    valid_set = HistopathologicDataset(valid_labels, root)
    return PatchData(
        root=Path(root),
        source=train_set.source,
        train_labels=train_labels,
        valid_labels=valid_labels,
        train_images=decode_patches(train_set.paths, num_workers=num_workers),
        valid_images=decode_patches(valid_set.paths, num_workers=num_workers),
    )


def patch_batches(
    data: PatchData, config: HistopathologyRecipe, device: torch.device | str | None = None
) -> tuple[PatchBatches, PatchBatches]:
    """(train, valid) batch iterables on ``device``: augmented and shuffled / centre-cropped in order.

    The uint8 patches are copied to the device once; batches are cut and augmented there.
    """
    device = torch.device(device) if device is not None else get_device()
    order = torch.Generator().manual_seed(config.seed)
    augment = BatchAugment(generator=torch.Generator().manual_seed(config.seed + 1))
    train = PatchBatches(
        data.train_images.to(device),
        data.train_targets,
        config.batch_size,
        augment=augment,
        shuffle=True,
        channels_last=config.channels_last,
        generator=order,
    )
    valid = PatchBatches(
        data.valid_images.to(device),
        data.valid_targets,
        config.eval_batch_size,
        channels_last=config.channels_last,
    )
    return train, valid


# ---- model and the two phases --------------------------------------------------------------------


def build_model(config: HistopathologyRecipe) -> nn.Sequential:
    """``histopathology_resnet18(config.weights)``, seeded, in channels-last format if asked.

    ``model.weights_source`` says whether the backbone starts from ImageNet or at random.
    """
    seed_everything(config.seed)
    model = histopathology_resnet18(config.weights)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def train_phase(
    model: nn.Sequential,
    parameters: Iterable[nn.Parameter],
    lr: float,
    max_lr: float,
    epochs: int,
    train_loader: Any,
    valid_loader: Any,
    config: HistopathologyRecipe,
    device: torch.device | str | None = None,
    verbose: bool = True,
) -> Trainer:
    """One phase of the recipe: AdamW on ``parameters`` under a one-cycle schedule peaking at
    ``max_lr``, stepped after every batch, for ``epochs`` epochs. Returns the Trainer."""
    optim = torch.optim.AdamW(parameters, lr=lr)
    scheduler = OneCycleLR(optim, max_lr=max_lr, steps_per_epoch=len(train_loader), epochs=epochs)
    trainer = Trainer(model, optim, F.cross_entropy, scheduler, device=device, verbose=verbose, precision=config.precision)
    trainer.run(epochs, train_loader, valid_loader)
    return trainer


def train_frozen(
    model: nn.Sequential,
    train_loader: Any,
    valid_loader: Any,
    config: HistopathologyRecipe,
    device: torch.device | str | None = None,
    verbose: bool = True,
) -> Trainer:
    """Phase 1: freeze the backbone ``model[0]`` and train the head. Returns the Trainer."""
    set_trainable(model[0], False)
    head = [p for p in model.parameters() if p.requires_grad]
    return train_phase(
        model, head, config.lr_frozen, config.max_lr_frozen, config.epochs_frozen,
        train_loader, valid_loader, config, device, verbose,
    )  # fmt: skip


def fine_tune(
    model: nn.Sequential,
    train_loader: Any,
    valid_loader: Any,
    config: HistopathologyRecipe,
    device: torch.device | str | None = None,
    verbose: bool = True,
) -> Trainer:
    """Phase 2: unfreeze the backbone and train everything with ten times smaller rates."""
    set_trainable(model[0], True)
    return train_phase(
        model, model.parameters(), config.lr_finetune, config.max_lr_finetune, config.epochs_finetune,
        train_loader, valid_loader, config, device, verbose,
    )  # fmt: skip


@dataclass
class RecipeRun:
    """What ``run_recipe`` produced. seconds: wall time of "data", "frozen", "finetune" and "total"."""

    config: HistopathologyRecipe
    model: nn.Sequential
    data: PatchData
    train_loader: PatchBatches
    valid_loader: PatchBatches
    frozen: Trainer
    finetune: Trainer
    seconds: dict[str, float] = field(default_factory=dict)


def run_recipe(
    config: HistopathologyRecipe | None = None,
    root: str | Path | None = None,
    device: torch.device | str | None = None,
    verbose: bool = False,
    num_workers: int = 0,
) -> RecipeRun:
    """The whole recipe end to end: decode the patches, build the model, phase 1, phase 2.

    Args:
        config: None means ``recipe()`` (the current profile).
        root: the patches' folder (see ``load_patch_data``).
        device: where to train; None means ``get_device()``.
        verbose: the Trainers' progress bars and epoch lines.
        num_workers: processes decoding the patch files.
    """
    config = config or recipe()
    device = torch.device(device) if device is not None else get_device()
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    data = load_patch_data(config, root, num_workers=num_workers)
    train_loader, valid_loader = patch_batches(data, config, device)
    model = build_model(config)
    decoded = time.perf_counter()
    frozen = train_frozen(model, train_loader, valid_loader, config, device, verbose)
    synchronize()
    phase_one = time.perf_counter()
    finetune = fine_tune(model, train_loader, valid_loader, config, device, verbose)
    synchronize()
    end = time.perf_counter()
    seconds = {"data": decoded - start, "frozen": phase_one - decoded, "finetune": end - phase_one, "total": end - start}
    return RecipeRun(config, model, data, train_loader, valid_loader, frozen, finetune, seconds)


# ---- the cached model of chapter 06 --------------------------------------------------------------


def model_cache_path(config: HistopathologyRecipe, root: str | Path, init: str) -> Path:
    """Where the weights trained by ``config`` on the patches in ``root`` are cached.

    ``<data folder>/models/histopathology-resnet18-r<recipe version>-<profile>-<data>-<init>-<key>.pt``,
    e.g. ``...-r1-quick-synthetic1-random-3f2a9c01d4.pt``. ``data`` is "kaggle" or "synthetic"
    with the generator's version; ``init`` is "random" or "imagenet"; ``key`` is a hash of every
    recipe field (sizes, epochs, rates, precision, seed, ...) and of the data folder's name and
    number of labelled patches. Changing any of them, e.g. the profile's sizes in ``SIZES``,
    therefore names a new file instead of reusing weights trained differently.

    Raises:
        ValueError: ``init`` is not "random" or "imagenet".
    """
    if init not in ("random", "imagenet"):
        raise ValueError(f"init must be 'random' or 'imagenet', got {init!r}")
    root = Path(root)
    data_kind = f"synthetic{GENERATOR_VERSION}" if (root / MARKER).is_file() else "kaggle"
    identity = {
        "recipe": dataclasses.asdict(config),
        "data": data_kind,
        "folder": root.name,
        "labelled": len(load_histopathology_labels(root)),
    }
    key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    name = f"histopathology-resnet18-r{RECIPE_VERSION}-{config.profile}-{data_kind}-{init}-{key}.pt"
    return data_dir() / CACHE_FOLDER / name


def save_model(model: nn.Module, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``{"state_dict", "meta"}`` atomically (temporary file beside ``path``, then ``os.replace``).

    ``meta`` must hold plain values (str, int, float, bool, lists, dicts) so that
    ``torch.load(weights_only=True)`` reads it back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return save_atomically({"state_dict": state, "meta": dict(meta)}, path)


def load_model(path: str | Path) -> nn.Sequential:
    """A ``histopathology_resnet18`` with the weights ``save_model`` wrote (``weights_only=True``).

    The model is on the CPU in eval mode; ``model.training_meta`` holds the saved meta.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not such a checkpoint, or its weights do not fit the model.
    """
    try:
        saved = load_safely(path)
    except FileNotFoundError:
        raise
    except Exception as error:  # a truncated or foreign file: name it instead of a pickle trace
        raise ValueError(f"{path} is not a readable model checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(saved, dict) or set(saved) != {"state_dict", "meta"}:
        raise ValueError(f"{path} is not a checkpoint written by save_model")
    model = histopathology_resnet18(weights="none")
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"{path}: the weights do not fit histopathology_resnet18 ({error})") from None
    model.weights_source = saved["meta"].get("weights_source", "unknown")
    model.training_meta = saved["meta"]
    return model.eval()


def trained_histopathology_model(
    run_profile: str | None = None, device: torch.device | str | None = None, verbose: bool = False
) -> nn.Sequential:
    """The model trained by ``recipe(run_profile)``, from the cache, or trained now and cached.

    The cache file (``model_cache_path``) is named by recipe version, profile, data set (real
    Kaggle patches or the synthetic generator's version), the backbone's start (ImageNet or
    random) and a hash of the recipe's fields and the data folder. Several processes may call this at once: each writes through its own temporary
    file and renames it into place, so a reader never sees half a file.

    Returns:
        The model on ``device`` in eval mode, with ``training_meta`` (profile, data source,
        epochs, final validation accuracy, seconds of training), ``weights_source``,
        ``cache_path`` and ``loaded_from_cache`` (False when it was trained by this call).
    """
    config = recipe(run_profile)
    root = histopathology_root(min_patches=config.train + config.valid)
    init = "random" if resolve_weights(_resnet18_default(), config.weights).weights is None else "imagenet"
    path = model_cache_path(config, root, init)
    device = torch.device(device) if device is not None else get_device()
    cached = path.is_file()
    if not cached:
        run = run_recipe(config, root=root, device=device, verbose=verbose)
        meta = {
            "recipe_version": RECIPE_VERSION,
            "profile": config.profile,
            "data_source": run.data.source,
            "weights_source": run.model.weights_source,
            "train": config.train,
            "valid": config.valid,
            "epochs_frozen": config.epochs_frozen,
            "epochs_finetune": config.epochs_finetune,
            "valid_accu": float(run.finetune.valid_log["accu"][-1]),
            "seconds": float(run.seconds["total"]),
        }
        save_model(run.model, path, meta)
    model = load_model(path)
    model.cache_path = path
    model.loaded_from_cache = cached
    return model.to(device)


def _resnet18_default() -> Any:
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.DEFAULT
