"""The checks of values where they enter the package: numbers, flags, choices, environment.

Public entry points (the Trainer, the recipes, the loaders, the CLI) call these once, when a
value comes in; code further along trusts what it is given. Every error names the value and
what was expected, e.g. ``epochs must be an int >= 1, got 1.5``.

The module has three parts: plain values (numbers, flags, choices, the environment), tensors,
and the argument sets of the functions the book shows, so that each of those calls one check
and its body stays the idea.

Two kinds of integer check, on purpose: ``integer`` (settings such as epochs or batch sizes:
``ValueError`` for anything that is not an int in range) and ``index`` (sizes handed to tensor
operations, as in ``nbhelpers.conv``: ``TypeError`` for a non-integer, as PyTorch raises,
``ValueError`` for one out of range; NumPy integers accepted).
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Iterable
from typing import Any

import torch

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")


def is_int(value: Any) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum`` (bools refused), else ValueError."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def optional_integer(value: Any, name: str, minimum: int = 1) -> int | None:
    """``value`` if it is None or an int >= ``minimum``, else ValueError."""
    if value is not None and (not is_int(value) or value < minimum):
        raise ValueError(f"{name} must be an int >= {minimum} or None, got {value!r}")
    return value


def index(value: Any, name: str, minimum: int) -> int:
    """A size for a tensor operation: TypeError unless an integer (Python or NumPy, no bool
    and no float, not even 2.0), ValueError below ``minimum``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r} (a bool)")
    try:
        number = operator.index(value)
    except TypeError:
        kind = type(value).__name__
        raise TypeError(
            f"{name} must be an int >= {minimum}, got {value!r} ({kind})"
        ) from None
    if number < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return number


def flag(value: Any, name: str) -> bool:
    """``value`` if it is True or False (not 1, not "yes"), else ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def positive_number(value: Any, name: str) -> float:
    """``value`` if it is a finite int or float > 0 (bools refused), else ValueError."""
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def non_negative_number(value: Any, name: str) -> float:
    """``value`` if it is a finite int or float >= 0 (bools refused), else ValueError."""
    if not is_number(value) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def choice(value: Any, name: str, options: Iterable[Any]) -> Any:
    """``value`` if it is one of ``options``, else ValueError listing them."""
    options = tuple(options)
    if value not in options:
        listed = ", ".join(str(option) for option in options)
        raise ValueError(f"{name}={value!r}: use one of {listed}")
    return value


def positive_ints(**sizes: Any) -> None:
    """Sizes of a network (widths, lengths): TypeError unless each is an int (no bool),
    ValueError below 1; the message names it ("conv_width must be a positive int")."""
    for name, value in sizes.items():
        if not is_int(value):
            kind = type(value).__name__
            raise TypeError(f"{name} must be a positive int, got {value!r} ({kind})")
        if value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def env_flag(variable: str) -> bool:
    """A yes/no environment variable: 1/true/yes/on -> True; unset, "", 0/false/no/off -> False.

    Raises:
        ValueError: any other value, naming the variable.
    """
    value = os.environ.get(variable, "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(
        f"{variable}={os.environ[variable]!r}: use one of 1/true/yes/on or 0/false/no/off"
    )


def fields(
    settings: Any,
    *,
    integers: Iterable[str] = (),
    counts: Iterable[str] = (),
    positive_numbers: Iterable[str] = (),
    flags: Iterable[str] = (),
    choices: dict[str, Iterable[Any]] | None = None,
) -> None:
    """Check fields of a settings object (a recipe); errors name ``Class.field``.

    Args:
        integers: fields that must be ints >= 1; counts: ints >= 0 (a seed);
            positive_numbers: finite numbers > 0; flags: True or False;
            choices: field -> the values it may take.
    """
    owner = type(settings).__name__
    for name in integers:
        integer(getattr(settings, name), f"{owner}.{name}")
    for name in counts:
        integer(getattr(settings, name), f"{owner}.{name}", minimum=0)
    for name in positive_numbers:
        positive_number(getattr(settings, name), f"{owner}.{name}")
    for name in flags:
        flag(getattr(settings, name), f"{owner}.{name}")
    for name, options in (choices or {}).items():
        choice(getattr(settings, name), f"{owner}.{name}", options)


# ---- tensors ----------------------------------------------------------------------------------


def index_pair(value: Any, name: str, minimum: int) -> tuple[int, int]:
    """An int or a (vertical, horizontal) pair of them, each >= ``minimum``, as a pair."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(
                f"{name} must be an int or a pair of ints, got {value!r} "
                f"({len(value)} values)"
            )
        return index(value[0], f"{name}[0]", minimum), index(
            value[1], f"{name}[1]", minimum
        )
    number = index(value, name, minimum)
    return number, number


def tensor(value: Any, name: str, rank: int, layout: str) -> Any:
    """``value`` if it is a real-valued tensor with ``rank`` dimensions (named by ``layout``);
    TypeError for a non-tensor or a bool/complex one, ValueError for another rank."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a {layout} tensor, got {type(value).__name__}")
    if value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    if value.dim() != rank:
        raise ValueError(f"{name} must be {layout}, got shape {tuple(value.shape)}")
    return value


def floating(value: Any, name: str) -> None:
    """TypeError unless the tensor ``value`` holds floating-point numbers."""
    if not value.is_floating_point():
        raise TypeError(
            f"{name} must be a floating point tensor, got dtype {value.dtype} "
            "(convert it with .float())"
        )


def non_empty(value: Any, name: str, dims: slice = slice(None)) -> None:
    """ValueError if one of the dimensions ``dims`` of the tensor ``value`` is 0."""
    if any(size == 0 for size in value.shape[dims]):
        raise ValueError(
            f"{name} has a zero-size dimension: shape {tuple(value.shape)}"
        )


def same_device(**tensors: Any) -> None:
    """ValueError unless the given tensors (None ones skipped) are on one device."""
    present = {name: t for name, t in tensors.items() if t is not None}
    if len({t.device for t in present.values()}) > 1:
        where = ", ".join(f"{name} on {t.device}" for name, t in present.items())
        raise ValueError(f"tensors must be on one device, got {where}")


def images(value: Any, name: str = "X") -> Any:
    """A (B, C, H, W) real tensor with C, H, W >= 1 (an empty batch, B = 0, is allowed)."""
    tensor(value, name, 4, "(B, C, H, W)")
    non_empty(value, name, slice(1, None))
    return value


def patch_batch(images: Any, size: int) -> None:
    """A (B, 3, H, W) tensor of images at least ``size`` wide and high; else ValueError."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(
            f"images must be a (B, 3, H, W) tensor, got {type(images).__name__}"
        )
    if images.dim() != 4 or images.shape[1] != 3 or min(images.shape[2:]) < size:
        raise ValueError(
            f"expected (B, 3, H >= {size}, W >= {size}) images, got {tuple(images.shape)}"
        )


def generator(value: Any) -> None:
    """None or a CPU ``torch.Generator``; else ValueError."""
    if value is None:
        return
    if not isinstance(value, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {value!r}")
    if value.device.type != "cpu":
        raise ValueError(
            "generator must be a CPU torch.Generator (draws are made on the CPU), "
            f"got one on {value.device}"
        )


def token_ids(x: object, seq_len: int, vocab_size: int, device: torch.device) -> None:
    """Token ids a model of ``seq_len`` inputs and ``vocab_size`` tokens on ``device`` takes."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a tensor of token ids, got {type(x).__name__}")
    if x.dtype != torch.int64:
        raise TypeError(f"expected int64 token ids, got dtype {x.dtype}")
    if x.dim() != 2 or x.shape[1] != seq_len:
        raise ValueError(
            f"expected token ids of shape (B, {seq_len}) (max_len + 1), got {tuple(x.shape)}"
        )
    if x.device != device:
        raise ValueError(f"token ids are on {x.device} but the model is on {device}")
    # Only on the CPU: reading values back from an accelerator would cost a sync every step
    # (there an out-of-range id trips the embedding's own device-side check instead).
    if x.device.type == "cpu" and x.numel() > 0:
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise ValueError(
                f"token id {bad} is outside the vocabulary [0, {vocab_size})"
            )


# ---- the arguments of the functions the book shows ------------------------------------------


def bar_images_arguments(n: Any, size: Any, noise: Any, seed: Any) -> None:
    """``bar_images``: n >= 1 images of size >= 5, a noise level >= 0, a seed >= 0."""
    integer(n, "n")
    integer(size, "size", 5)
    integer(seed, "seed", 0)
    non_negative_number(noise, "noise")


def convolve_arguments(X: Any, K: Any) -> None:
    """``convolve``: X (H, W) and K (h, w) real, K no larger than X, on one device."""
    tensor(X, "X", 2, "2D (H, W)")
    tensor(K, "K", 2, "2D (h, w)")
    non_empty(K, "kernel K")
    same_device(X=X, K=K)
    if K.shape[0] > X.shape[0] or K.shape[1] > X.shape[1]:
        raise ValueError(
            f"kernel {tuple(K.shape)} is larger than the input {tuple(X.shape)}"
        )


def conv2d_arguments(
    X: Any, K: Any, bias: Any, stride: Any, padding: Any
) -> tuple[tuple[int, int], tuple[int, int]]:
    """``conv2d``: shapes, dtypes, one device, and the kernel inside the padded input.

    Returns:
        (stride, padding) as (vertical, horizontal) pairs.
    """
    images(X)
    tensor(K, "K", 4, "(C_out, C_in, kh, kw)")
    non_empty(K, "kernels K")
    if K.shape[1] != X.shape[1]:
        raise ValueError(
            f"K must be (C_out, {X.shape[1]}, kh, kw) for X {tuple(X.shape)}, "
            f"got {tuple(K.shape)}"
        )
    if bias is not None:
        tensor(bias, "bias", 1, "(C_out,)")
        if bias.shape != (K.shape[0],):
            raise ValueError(f"bias must be ({K.shape[0]},), got {tuple(bias.shape)}")
    for name, value in (("X", X), ("K", K), ("bias", bias)):
        if value is not None:
            floating(value, name)
    same_device(X=X, K=K, bias=bias)
    strides, paddings = (
        index_pair(stride, "stride", 1),
        index_pair(padding, "padding", 0),
    )
    (kh, kw), (ph, pw) = K.shape[2:], paddings
    H, W = X.shape[2] + 2 * ph, X.shape[3] + 2 * pw
    if kh > H or kw > W:
        raise ValueError(
            f"kernel {(kh, kw)} is larger than the padded input {(H, W)} "
            f"(padding {(ph, pw)})"
        )
    return strides, paddings


def flip_rotate_crop_arguments(images: Any, params: Any, size: int, mode: Any) -> None:
    """``flip_rotate_crop``: a known mode, a batch of images, one parameter per image."""
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
    patch_batch(images, size)
    for key in ("hflip", "vflip", "degrees"):
        if key not in params or params[key].shape != (images.shape[0],):
            raise ValueError(f"params[{key!r}] must have shape ({images.shape[0]},)")


def guided_backprop_arguments(model: Any, x: Any, activations: Any) -> None:
    """``guided_backprop``: autograd available, floating (B, ...) inputs, a non-empty tuple
    of module classes of which ``model`` holds at least one."""
    nn = torch.nn
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "guided_backprop needs autograd and cannot run under torch.inference_mode(); "
            "call it outside that block (torch.no_grad is fine: it re-enables gradients "
            "itself)"
        )
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating (B, ...) tensor, got {shape}")
    kinds = activations if isinstance(activations, tuple) else ()
    if not kinds or not all(
        isinstance(kind, type) and issubclass(kind, nn.Module) for kind in kinds
    ):
        raise ValueError(
            "activations must be a non-empty tuple of nn.Module classes, "
            f"got {activations!r}"
        )
    if not any(isinstance(module, kinds) for module in model.modules()):
        names = ", ".join(
            ("nn." if kind.__module__.startswith("torch.nn.modules") else "")
            + kind.__name__
            for kind in kinds
        )
        raise ValueError(
            f"{type(model).__name__} has no {names} module: guided backpropagation "
            "would equal the plain gradient"
        )


def lr_range_test_arguments(
    start: Any, end: Any, steps: Any, diverge: Any, beta: Any
) -> None:
    """``LRRangeTest``: rates 0 < start < end, steps an int >= 2, diverge > 1, beta in
    [0, 1)."""
    positive_number(start, "start")
    positive_number(end, "end")
    if start >= end:
        raise ValueError(
            f"start must be below end (the rate grows), got start={start!r}, end={end!r}"
        )
    integer(steps, "steps", minimum=2)
    if not is_number(diverge) or not 1 < diverge < math.inf:
        raise ValueError(f"diverge must be a finite number > 1, got {diverge!r}")
    if not is_number(beta) or not 0 <= beta < 1:
        raise ValueError(f"beta must be a number in [0, 1), got {beta!r}")


def lr_range_test_trainer(trainer: Any) -> None:
    """The Trainer an ``LRRangeTest`` runs in: an optimizer, no scheduler (the test sets
    the rate itself) and each step's loss on the host when the step ends
    (``log_every=1``; ``TrainerCore`` always has it)."""
    if trainer.optim is None:
        raise ValueError("LRRangeTest needs an optimizer; the Trainer has none")
    if trainer.scheduler is not None:
        kind = type(trainer.scheduler).__name__
        raise ValueError(
            f"LRRangeTest sets the learning rate itself; build the Trainer without a "
            f"scheduler (got {kind})"
        )
    log_every = getattr(trainer, "log_every", 1)
    if log_every != 1:
        raise ValueError(
            "LRRangeTest reads each step's loss when the step ends; build the Trainer "
            f"with log_every=1 (got log_every={log_every})"
        )


def normalisation(mean: Any, std: Any) -> None:
    """``Normalize``: ``mean`` and ``std`` sequences of finite numbers of one length >= 1,
    each ``std`` > 0; else ValueError naming them."""
    values = {"mean": mean, "std": std}
    for name, value in values.items():
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"{name} must be a sequence of numbers, got {value!r}")
        if not value or not all(is_number(v) and math.isfinite(v) for v in value):
            raise ValueError(
                f"{name} must be a non-empty sequence of finite numbers, got {value!r}"
            )
    if len(mean) != len(std) or not all(v > 0 for v in std):
        raise ValueError(
            "mean and std must have one entry per channel and std > 0, "
            f"got mean={mean!r}, std={std!r}"
        )


def slide_arguments(size: Any, seed: Any, regions: Any) -> None:
    """``synthetic_slide``: a size of at least 96 and at most 2048 pixels, a seed >= 0 and
    at least one tumour region; else ValueError naming the value."""
    if not is_int(size) or not 96 <= size <= 2048:
        raise ValueError(f"size must be an int in 96..2048, got {size!r}")
    integer(seed, "seed", minimum=0)
    integer(regions, "regions", minimum=1)


def heat_map_arguments(
    model: Any, slide: Any, window: Any, stride: Any, batch_size: Any
) -> None:
    """``tumour_heat_map``: an ``nn.Module``, a (3, H, W) float slide at least ``window``
    high and wide, and ints window, stride, batch_size >= 1; else ValueError."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    for name, value in (
        ("window", window),
        ("stride", stride),
        ("batch_size", batch_size),
    ):
        integer(value, name)
    if not isinstance(slide, torch.Tensor) or not slide.is_floating_point():
        raise ValueError("slide must be a floating (3, H, W) tensor in [0, 1]")
    if slide.dim() != 3 or slide.shape[0] != 3 or min(slide.shape[1:]) < window:
        raise ValueError(
            f"slide must be (3, H >= {window}, W >= {window}), got {tuple(slide.shape)}"
        )
