"""The checks of values where they enter the package: numbers, flags, choices, environment.

Public entry points (the Trainer, the recipes, the loaders, the CLI) call these once, when a
value comes in; code further along trusts what it is given. Every error names the value and
what was expected, e.g. ``epochs must be an int >= 1, got 1.5``.

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
