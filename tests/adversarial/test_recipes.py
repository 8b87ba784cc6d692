"""Hostile inputs against the recipes and the chapter preamble: fields, profiles, checkpoints, names."""

from __future__ import annotations

import math
import os

import pytest
import torch
from harness import Case, Workspace, run_case
from support import TINY_HISTOPATHOLOGY

from nbhelpers.chapter import start_chapter
from nbhelpers.data.mnist import MNISTDataset, embedded_digits
from nbhelpers.device import cpu_threads, profile
from nbhelpers.models import CharCNN
from nbhelpers.recipes.histopathology import (
    CACHE_FOLDER,
    CachedModel,
    HistopathologyRecipe,
    trained_histopathology_model,
)
from nbhelpers.recipes.mnist import MnistRecipe
from nbhelpers.recipes.names import NamesRecipe, female_probability
from nbhelpers.storage import DataSource
from nbhelpers.train import StopAfter

TINY_MNIST = {"epochs": 2, "train_size": 64, "valid_size": 32}


def _digits() -> MNISTDataset:
    images, targets = embedded_digits(train=True)
    return MNISTDataset(images, targets, DataSource("embedded", "digits"))


def _real(count: int) -> MNISTDataset:
    """``count`` blank images presented as real MNIST from the mirror."""
    images = torch.zeros(count, 1, 28, 28)
    targets = torch.zeros(count, dtype=torch.long)
    return MNISTDataset(images, targets, DataSource("mirror", "MNIST/raw"))


def _train_mnist(ws: Workspace, **options: object) -> object:
    recipe = MnistRecipe(**TINY_MNIST)
    threads = torch.get_num_threads()
    try:
        return recipe.train(recipe.prepare(_digits()), "cpu", verbose=False, **options)
    finally:
        torch.set_num_threads(threads)


def _checkpoint_by(
    ws: Workspace, recipe: object, data: object, stop_after: int = 1
) -> None:
    recipe.train(
        data,
        "cpu",
        verbose=False,
        checkpoint=ws.root / "ck.pt",
        callbacks=[StopAfter(stop_after)],
    )


def _mnist_checkpoint(ws: Workspace, **fields: object) -> None:
    recipe = MnistRecipe(**{**TINY_MNIST, **fields})
    _checkpoint_by(ws, recipe, recipe.prepare(_digits()))


def _names_checkpoint(ws: Workspace) -> None:
    from nbhelpers.data.names import embedded_names

    recipe = NamesRecipe(
        train_size=64, valid_size=32, epochs=2, conv_width=8, fc_width=8
    )
    _checkpoint_by(ws, recipe, recipe.prepare(embedded_names()))


def _model() -> CharCNN:
    torch.manual_seed(0)
    return CharCNN()


def bad_field(recipe: type, slug: str, fields: dict[str, object], names: str) -> Case:
    shown = ", ".join(f"{key}={value!r}" for key, value in fields.items())
    return Case(
        f"{recipe.__name__}-{slug}",
        "arguments",
        f"{recipe.__name__}",
        f"{recipe.__name__}({shown})",
        "ValueError naming the field and its value",
        act=lambda ws: recipe(**fields),
        raises=ValueError,
        names=names,
    )


def bad_name(
    slug: str,
    names: object,
    pattern: str,
    tried: str,
    error: type[Exception] = ValueError,
) -> Case:
    return Case(
        f"female-probability-{slug}",
        "arguments",
        "female_probability",
        tried,
        f"{error.__name__} naming the input that cannot be normalised",
        act=lambda ws: female_probability(_model(), names),
        raises=error,
        names=pattern,
    )


CASES = [
    bad_field(
        MnistRecipe,
        "epochs-zero",
        {"epochs": 0},
        "MnistRecipe.epochs must be an int >= 1, got 0",
    ),
    bad_field(
        MnistRecipe,
        "epochs-float",
        {"epochs": 1.5},
        "MnistRecipe.epochs must be an int >= 1, got 1.5",
    ),
    bad_field(
        MnistRecipe,
        "batch-size-bool",
        {"batch_size": True},
        "MnistRecipe.batch_size must be an int >= 1, got True",
    ),
    bad_field(
        MnistRecipe,
        "max-lr-nan",
        {"max_lr": math.nan},
        "MnistRecipe.max_lr must be a finite number > 0, got nan",
    ),
    bad_field(
        MnistRecipe,
        "max-lr-zero",
        {"max_lr": 0.0},
        "MnistRecipe.max_lr must be a finite number > 0, got 0.0",
    ),
    bad_field(
        MnistRecipe, "precision-64", {"precision": "64"}, "MnistRecipe.precision='64'"
    ),
    bad_field(
        MnistRecipe,
        "seed-negative",
        {"seed": -3},
        "MnistRecipe.seed must be an int >= 0, got -3",
    ),
    bad_field(
        MnistRecipe,
        "resident-string",
        {"resident": "yes"},
        "MnistRecipe.resident must be True or False, got 'yes'",
    ),
    bad_field(
        NamesRecipe,
        "lr-inf",
        {"lr": math.inf},
        "NamesRecipe.lr must be a finite number > 0, got inf",
    ),
    bad_field(
        NamesRecipe,
        "valid-fraction-one",
        {"valid_fraction": 1.0},
        "valid_fraction must lie strictly between 0 and 1, got 1.0",
    ),
    bad_field(
        NamesRecipe,
        "train-size-alone",
        {"train_size": 100},
        "give both train_size and valid_size or neither",
    ),
    bad_field(
        NamesRecipe,
        "context-zero",
        {"context": 0},
        "NamesRecipe.context must be an int >= 1, got 0",
    ),
    bad_field(
        HistopathologyRecipe,
        "batch-size-one",
        {"batch_size": 1},
        "batch_size must be >= 2 .*BatchNorm1d.*got 1",
    ),
    bad_field(
        HistopathologyRecipe,
        "weights-unknown",
        {"weights": "pretrained"},
        "weights='pretrained'",
    ),
    bad_field(
        HistopathologyRecipe,
        "max-lr-negative",
        {"max_lr_finetune": -1e-3},
        "max_lr_finetune must be a finite number > 0, got -0.001",
    ),
    bad_field(
        HistopathologyRecipe,
        "augment-int",
        {"augment": 1},
        "augment must be True or False, got 1",
    ),
    bad_field(
        HistopathologyRecipe,
        "synthetic-size-zero",
        {"synthetic_size": 0},
        "synthetic_size must be an int >= 1, got 0",
    ),
    Case(
        "for-profile-unknown-profile",
        "arguments",
        "XRecipe.for_profile",
        "MnistRecipe.for_profile('medium')",
        "ValueError naming the profile and the choices",
        act=lambda ws: MnistRecipe.for_profile("medium"),
        raises=ValueError,
        names="unknown profile 'medium'; use one of quick, full",
    ),
    Case(
        "for-profile-unknown-field",
        "arguments",
        "XRecipe.for_profile",
        "HistopathologyRecipe.for_profile('quick', train=100) (the old field name)",
        "ValueError naming the unknown field and listing the known ones",
        act=lambda ws: HistopathologyRecipe.for_profile("quick", train=100),
        raises=ValueError,
        names=r"unknown HistopathologyRecipe field\(s\) \['train'\]",
    ),
    Case(
        "profile-variable-typo",
        "environment",
        "XRecipe.for_profile",
        "NBHELPERS_PROFILE=fast",
        "ValueError naming the variable and its value",
        setup=lambda ws: ws.env.setenv("NBHELPERS_PROFILE", "fast"),
        act=lambda ws: NamesRecipe.for_profile(),
        raises=ValueError,
        names="NBHELPERS_PROFILE='fast'",
    ),
    Case(
        "profile-variable-auto",
        "environment",
        "profile",
        "NBHELPERS_PROFILE=auto",
        "the machine's default profile (quick without an accelerator)",
        setup=lambda ws: ws.env.setenv("NBHELPERS_PROFILE", "auto"),
        act=lambda ws: profile(),
        expect=lambda result, ws: (
            None if result in ("quick", "full") else pytest.fail(result)
        ),
    ),
    Case(
        "threads-variable-zero",
        "environment",
        "start_chapter",
        "NBHELPERS_THREADS=0",
        "ValueError naming the variable",
        setup=lambda ws: ws.env.setenv("NBHELPERS_THREADS", "0"),
        act=lambda ws: start_chapter(),
        raises=ValueError,
        names="NBHELPERS_THREADS='0'",
    ),
    Case(
        "threads-variable-words",
        "environment",
        "cpu_threads",
        "NBHELPERS_THREADS=all",
        "ValueError naming the variable",
        setup=lambda ws: ws.env.setenv("NBHELPERS_THREADS", "all"),
        act=lambda ws: cpu_threads(),
        raises=ValueError,
        names="NBHELPERS_THREADS='all'",
    ),
    Case(
        "threads-variable-above-machine",
        "environment",
        "cpu_threads",
        "NBHELPERS_THREADS=99999 (segfaulted the kernel before)",
        "ValueError naming the variable and the bound, before torch is asked",
        setup=lambda ws: ws.env.setenv("NBHELPERS_THREADS", "99999"),
        act=lambda ws: cpu_threads(),
        raises=ValueError,
        names=r"NBHELPERS_THREADS='99999': use a number of threads from 1 to \d+",
    ),
    Case(
        "stop-after-zero",
        "arguments",
        "StopAfter",
        "StopAfter(0), the callback behind stop_after",
        "ValueError naming stop_after, before any step",
        act=lambda ws: _train_mnist(ws, callbacks=[StopAfter(0)]),
        raises=ValueError,
        names="stop_after must be an int >= 1, got 0",
    ),
    Case(
        "checkpoint-of-another-recipe",
        "checkpoints",
        "MnistRecipe.train",
        "resume from a checkpoint written with another max_lr",
        "ValueError naming the file and the differing field; the file unchanged",
        setup=lambda ws: _mnist_checkpoint(ws, max_lr=0.001),
        act=lambda ws: _train_mnist(ws, checkpoint=ws.root / "ck.pt"),
        raises=ValueError,
        names=r"ck.pt was written by a different recipe \(max_lr: 0.001 -> 0.003\)",
    ),
    Case(
        "checkpoint-of-another-kind-of-recipe",
        "checkpoints",
        "MnistRecipe.train",
        "resume an MNIST run from a checkpoint of the names recipe",
        "ValueError naming the file and both recipes; the file unchanged",
        setup=_names_checkpoint,
        act=lambda ws: _train_mnist(ws, checkpoint=ws.root / "ck.pt"),
        raises=ValueError,
        names="ck.pt is a checkpoint of 'NamesRecipe'",
    ),
    Case(
        "checkpoint-junk",
        "checkpoints",
        "MnistRecipe.train",
        "resume from a file of random bytes",
        "ValueError naming the file, before any step; the file unchanged",
        setup=lambda ws: (ws.root / "ck.pt").write_bytes(os.urandom(256)),
        act=lambda ws: _train_mnist(ws, checkpoint=ws.root / "ck.pt"),
        raises=ValueError,
        names="ck.pt is not a complete checkpoint",
    ),
    Case(
        "checkpoint-plain-trainer",
        "checkpoints",
        "MnistRecipe.train",
        "resume from a Trainer checkpoint saved without a recipe",
        "ValueError naming the file; the file unchanged",
        setup=lambda ws: _plain_trainer_checkpoint(ws),
        act=lambda ws: _train_mnist(ws, checkpoint=ws.root / "ck.pt"),
        raises=ValueError,
        names="ck.pt is a checkpoint of None",
    ),
    Case(
        "checkpoint-finished-run",
        "checkpoints",
        "MnistRecipe.train",
        "resume from the checkpoint of a run that already finished",
        "nothing to train: the finished run comes back, the file unchanged",
        setup=lambda ws: (
            _mnist_checkpoint(ws, max_lr=0.003)
            or _train_mnist(ws, checkpoint=ws.root / "ck.pt")
        ),
        act=lambda ws: _train_mnist(ws, checkpoint=ws.root / "ck.pt"),
        expect=lambda trainer, ws: (
            None
            if trainer.stop_reason is None and trainer.epoch == 2
            else pytest.fail(f"epoch {trainer.epoch}, stopped: {trainer.stop_reason}")
        ),
    ),
    Case(
        "checkpoint-missing-folder",
        "checkpoints",
        "MnistRecipe.train",
        "a checkpoint path in a folder that does not exist",
        "FileNotFoundError naming the folder, before any step",
        act=lambda ws: _train_mnist(ws, checkpoint=ws.root / "nowhere" / "ck.pt"),
        raises=FileNotFoundError,
        names="checkpoint folder does not exist: .*nowhere",
    ),
    Case(
        "mnist-sizes-above-the-data",
        "arguments",
        "MnistRecipe.prepare",
        "train_size=900, valid_size=200 on a data set of 1,000 real images",
        "ValueError naming both sizes and the data's count (no silent shrinking)",
        act=lambda ws: MnistRecipe(train_size=900, valid_size=200).prepare(
            _real(1_000)
        ),
        raises=ValueError,
        names=r"train_size=900 \+ valid_size=200 = 1,100 images, but the data holds 1,000",
    ),
    Case(
        "mnist-sizes-beyond-the-stand-in",
        "arguments",
        "MnistRecipe.prepare",
        "train_size=10**12, valid_size=200 on the 1,497 embedded digits",
        "ValueError: the stand-in shrinks in proportion only while each part keeps an image",
        act=lambda ws: MnistRecipe(train_size=10**12, valid_size=200).prepare(
            _digits()
        ),
        raises=ValueError,
        names=r"valid_size=200 = .* images, but the data holds 1,497",
    ),
    bad_name(
        "digits",
        ["R2D2"],
        "name 'R2D2' holds the character '2'",
        "a name with digits: R2D2",
    ),
    bad_name("hyphen", ["Anna-Lena"], "'-'", "a hyphenated name: Anna-Lena"),
    bad_name("empty", [""], "''", "an empty name"),
    bad_name("blank", ["   "], "'   '", "a name of spaces only"),
    bad_name("cyrillic", ["Мария"], "'м'", "a name in another alphabet: Мария"),
    bad_name(
        "not-a-list",
        "maria",
        "non-empty list of names, got 'maria'",
        "a single string instead of a list",
    ),
    bad_name("empty-list", [], r"non-empty list of names, got \[\]", "an empty list"),
    bad_name(
        "not-a-string",
        [42],
        "a name must be a str, got int 42",
        "a number in the list",
        TypeError,
    ),
    Case(
        "female-probability-normalises",
        "arguments",
        "female_probability",
        "'JUAN', 'Juan ', 'juan'; 'María José' and 'maria_jose'",
        "the same probability for each spelling of the same name",
        act=lambda ws: female_probability(
            _model(), ["JUAN", "Juan ", "juan", "María José", "maria_jose"]
        ),
        expect=lambda p, ws: (
            None if p[0] == p[1] == p[2] and p[3] == p[4] else pytest.fail(str(p))
        ),
    ),
]


def _patches_and_a_full_model_cache(ws: Workspace) -> None:
    """The tiny synthetic set in the data folder, and a 64 KiB disk where models are cached."""
    HistopathologyRecipe(**TINY_HISTOPATHOLOGY).prepare()
    ws.small_disk(f"data/{CACHE_FOLDER}", 64)


def _train_and_cache(ws: Workspace) -> CachedModel:
    recipe = HistopathologyRecipe(**TINY_HISTOPATHOLOGY)
    threads = torch.get_num_threads()
    try:
        return trained_histopathology_model(recipe, recipe.prepare(), "cpu")
    finally:
        torch.set_num_threads(threads)


def _model_returned_not_cached(result: CachedModel, ws: Workspace) -> None:
    assert isinstance(result.model, torch.nn.Module), result
    assert not result.loaded_from_cache
    assert result.not_cached and "No space left on device" in result.not_cached, result
    assert list((ws.data / CACHE_FOLDER).iterdir()) == []  # no temporary file left


CASES += [
    Case(
        "histopathology-cache-full-disk",
        "full disk",
        "trained_histopathology_model",
        "train the chapter 06 model with its cache folder on a real 64 KiB tmpfs (torch "
        "raises RuntimeError: [enforce fail at inline_container.cc] on a full disk)",
        "the trained model returned, with why it was not cached (ENOSPC); no temporary "
        "file in the cache folder",
        setup=_patches_and_a_full_model_cache,
        act=_train_and_cache,
        expect=_model_returned_not_cached,
    ),
]


def _plain_trainer_checkpoint(ws: Workspace) -> None:
    from nbhelpers.models import mnist_cnn
    from nbhelpers.train import Trainer

    model = mnist_cnn()
    trainer = Trainer(
        model,
        torch.optim.AdamW(model.parameters()),
        torch.nn.functional.cross_entropy,
        device="cpu",
    )
    trainer.save_checkpoint(ws.root / "ck.pt")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_recipe_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
