"""The token vocabulary of chapter 07: names as fixed-length sequences of character ids.

Kept apart from ``names`` (which reads the data with pandas) so that the model ``CharCNN`` can
take its defaults from ``CHARS`` and ``MAX_LEN`` without importing a data loader.

Two steps, each strict: ``normalize_name`` turns what a person types ("María José") into the
vocabulary's spelling ("maria_jose"); ``encode`` turns a normalized name into token ids and
refuses any character outside ``CHARS`` instead of dropping it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import torch

# "." pads, then the sorted characters of the preprocessed real data (checked by a test).
CHARS: list[str] = ["."] + sorted("'_abcdefghijklmnopqrstuvwxyzçñ")
MAX_LEN = 22
PAD = "."

# Letters whose mark is part of the letter in Spanish (and Catalan): kept, not stripped.
_KEPT_MARKS = frozenset("ñç")


def normalize_name(name: str) -> str:
    """A name as typed by a person, in the spelling of the vocabulary.

    Surrounding blanks removed, lower case, each run of blanks (spaces, tabs) becomes one "_",
    accents removed except those of ñ and ç: "María José" -> "maria_jose", " JUAN " -> "juan",
    "Núñez" -> "nuñez". The result holds only characters of ``CHARS`` other than the padding "."
    (it may be longer than ``MAX_LEN``; ``encode`` cuts it).

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: ``name`` is empty or blank, or holds a character that is not a letter, "'"
            or a blank (a digit, "-", "."): the message names the name and the character.
    """
    if not isinstance(name, str):
        raise TypeError(f"a name must be a str, got {type(name).__name__} {name!r}")
    words = name.split()
    if not words:
        raise ValueError(f"a name must hold at least one letter, got {name!r}")
    normalized = "_".join(_strip_marks(word.lower()) for word in words)
    for char in normalized:
        if char not in _NAME_CHARS:
            raise ValueError(
                f"name {name!r} holds the character {char!r}, which is not in the vocabulary "
                f'(letters a-z, ñ, ç, "\'" and blanks)'
            )
    return normalized


def preprocess(name: str) -> str:
    """ "." + the name (cut to its first ``MAX_LEN`` characters) + "." padding: ``MAX_LEN + 1`` characters.

    ``name`` must already be in the vocabulary's spelling (see ``normalize_name``). Names longer
    than ``MAX_LEN`` are cut, as in the lecture notebook: 13 of the 49,340 real names are.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: ``name`` is empty or holds a character outside ``CHARS`` or the padding ".";
            the message names the name and the character.
    """
    if not isinstance(name, str):
        raise TypeError(f"a name must be a str, got {type(name).__name__} {name!r}")
    if not name:
        raise ValueError("cannot encode an empty name")
    for char in name:
        if char not in _NAME_CHARS:
            hint = " (the padding character)" if char == PAD else ""
            raise ValueError(
                f"name {name!r} holds the character {char!r}{hint}, which is not in CHARS; "
                "normalize_name turns typed names into the vocabulary's spelling"
            )
    kept = name[:MAX_LEN]
    return PAD + kept + PAD * (MAX_LEN - len(kept))


def encode(name: str) -> list[int]:
    """The ``MAX_LEN + 1`` token ids of ``preprocess(name)`` (same errors)."""
    return [_CHAR_TO_INT[char] for char in preprocess(name)]


def decode(tokens: torch.Tensor | Sequence[int]) -> str:
    """Token ids (any length, e.g. (MAX_LEN + 1,)) back to characters, padding dots included."""
    ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
    for token in ids:
        if not 0 <= token < len(CHARS):
            raise ValueError(f"token {token} is outside 0..{len(CHARS) - 1}")
    return "".join(CHARS[token] for token in ids)


def _strip_marks(word: str) -> str:
    if word.isascii():
        return word
    out = []
    for char in unicodedata.normalize(
        "NFC", word
    ):  # "n" + a combining tilde is one "ñ"
        if char in _KEPT_MARKS:
            out.append(char)
        else:
            decomposed = unicodedata.normalize("NFD", char)
            out.append("".join(c for c in decomposed if not unicodedata.combining(c)))
    return "".join(out)


_NAME_CHARS = frozenset(CHARS) - {PAD}
_CHAR_TO_INT = {char: index for index, char in enumerate(CHARS)}
