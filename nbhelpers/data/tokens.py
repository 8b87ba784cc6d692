"""The token vocabulary of chapter 07: names as fixed-length sequences of character ids.

Kept apart from ``names`` (which reads the data with pandas) so that the model ``CharCNN`` can
take its defaults from ``CHARS`` and ``MAX_LEN`` without importing a data loader.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# "." pads, then the sorted characters of the preprocessed real data (checked by a test).
CHARS: list[str] = ["."] + sorted("'_abcdefghijklmnopqrstuvwxyzçñ")
MAX_LEN = 22


def preprocess(name: str) -> str:
    """"." + the name's characters in ``CHARS`` (at most ``MAX_LEN``) + "." padding: MAX_LEN + 1 chars."""
    kept = "".join(char for char in name if char in _CHAR_SET)[:MAX_LEN]
    return "." + kept + "." * (MAX_LEN - len(kept))


def encode(name: str) -> list[int]:
    """The MAX_LEN + 1 token ids of ``preprocess(name)``."""
    return [_CHAR_TO_INT[char] for char in preprocess(name)]


def decode(tokens: torch.Tensor | Sequence[int]) -> str:
    """Token ids (any length, e.g. (MAX_LEN + 1,)) back to characters, padding dots included."""
    ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
    for token in ids:
        if not 0 <= token < len(CHARS):
            raise ValueError(f"token {token} is outside 0..{len(CHARS) - 1}")
    return "".join(CHARS[token] for token in ids)


_CHAR_SET = frozenset(CHARS)
_CHAR_TO_INT = {char: index for index, char in enumerate(CHARS)}
