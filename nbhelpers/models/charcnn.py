"""The character-level CNNs of chapter 07 (gender of Spanish given names).

``CharCNN``: one width of n-gram detectors (the lecture notebook's network, its pooling fixed).
``TextCNN``: several widths side by side (Kim 2014). Both check their sizes when built and
their token ids on every call (``checks.positive_ints``, ``checks.token_ids``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from nbhelpers import checks
from nbhelpers.data.tokens import CHARS, MAX_LEN


class CharCNN(nn.Module):
    """Embed each character, convolve over windows of ``context`` characters, max-pool over time.

    Input ``(B, max_len + 1)`` int64 token ids (a leading "." then ``max_len`` characters padded
    with ".", as ``nbhelpers.data.tokens.encode`` writes them); output ``(B, 2)`` logits. The
    defaults ``vocab_size=len(CHARS)`` (31) and ``max_len=MAX_LEN`` (22) come from that vocabulary.
    The embeddings of a name are laid end to end in one channel of length
    ``(max_len + 1) * embedding_dim``; a ``Conv1d`` whose kernel spans ``context * embedding_dim``
    values with stride ``embedding_dim`` then sees exactly one window of ``context`` whole
    characters per output position, i.e. a learned n-gram detector.
    With the defaults: 19,448 parameters.

    Pooling over time takes the maximum over *every* window position. The lecture notebook used
    ``MaxPool1d(kernel_size=MAX_LEN - context + 1)`` while its input holds ``MAX_LEN + 1`` tokens,
    so the convolution yields ``MAX_LEN - context + 2`` positions (21 for context 3) and the pool,
    one position short, silently dropped the last window, which starts at character
    ``MAX_LEN + 1 - context`` of the name. That window holds letters of every name of 20 or
    more characters (context 3; 19 or more for context 4), and it is the only all-padding
    window of a name of exactly 19 characters (context 3; 18 for context 4): for all these
    names the detectors' responses to it were never seen. Shorter names have at least two
    all-padding windows and lose nothing. Here the pool kernel is the full convolution output
    length.

    Raises (constructor): TypeError for a size that is not an int, ValueError for one below 1 or a
    ``context`` longer than the input. Raises (forward): TypeError for anything but an int64 tensor,
    ValueError for another shape, a token id outside ``[0, vocab_size)`` (checked on the CPU) or
    token ids on another device than the model; each message names the offending value.
    """

    def __init__(
        self,
        vocab_size: int = len(CHARS),
        max_len: int = MAX_LEN,
        context: int = 3,
        embedding_dim: int = 10,
        conv_width: int = 64,
        fc_width: int = 256,
    ) -> None:
        super().__init__()
        checks.positive_ints(
            vocab_size=vocab_size,
            max_len=max_len,
            context=context,
            embedding_dim=embedding_dim,
            conv_width=conv_width,
            fc_width=fc_width,
        )
        self.vocab_size = vocab_size
        self.seq_len = max_len + 1
        if context > self.seq_len:
            raise ValueError(
                f"context={context} is longer than the input of max_len + 1 = {self.seq_len} tokens"
            )
        self.context = context
        self.embedding_dim = embedding_dim
        self.conv_width = conv_width
        self.conv_output_length = self.seq_len - context + 1

        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.conv = nn.Conv1d(
            1, conv_width, kernel_size=context * embedding_dim, stride=embedding_dim
        )
        self.relu = nn.ReLU()
        self.pool_over_time = nn.MaxPool1d(kernel_size=self.conv_output_length)
        self.fc = nn.Sequential(
            nn.Linear(conv_width, fc_width),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(fc_width, 2),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled n-gram features. x: (B, max_len + 1) int64 -> (B, conv_width)."""
        checks.token_ids(x, self.seq_len, self.vocab_size, self.embedding.weight.device)
        batch = x.shape[0]
        # Sizes spelled out, not -1: an empty batch (B = 0) keeps its shape too.
        embedded = self.embedding(x).reshape(
            batch, 1, self.seq_len * self.embedding_dim
        )
        # (B, conv_width, conv_output_length)
        activations = self.relu(self.conv(embedded))
        return self.pool_over_time(activations).reshape(batch, self.conv_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, max_len + 1) int64 token ids -> (B, 2) logits."""
        return self.fc(self.features(x))


class TextCNN(nn.Module):
    """Kim's textCNN over characters: n-gram detectors of several widths side by side.

    One ``Conv1d`` per width c in ``contexts``, each max-pooled over all of its window
    positions; the pooled features of all widths are concatenated and classified. Kim (2014)
    uses widths 3, 4 and 5 over words. The embedding dimensions are the input channels and the
    kernel spans c characters: the same detectors as ``CharCNN``'s (whose single-channel kernel
    of ``c * embedding_dim`` values with stride ``embedding_dim`` also reads c whole
    characters), in the usual layout, which runs faster.

    Shapes with the defaults (contexts 2, 3, 4, 5 with 32 detectors each; 38,456 parameters):

    ===========  ====================================================  =============
    step         layer                                                 output
    ===========  ====================================================  =============
    input        token ids                                             (B, 23)
    embed        Embedding(31, 10), channels first                     (B, 10, 23)
    width c      Conv1d(10, 32, kernel_size=c), ReLU                   (B, 32, 24-c)
    pool         max over the 24 - c positions of each width           (B, 32)
    concatenate  the 4 widths                                          (B, 128)
    classify     Linear(128, 256), ReLU, Dropout(0.5), Linear(256, 2)  (B, 2)
    ===========  ====================================================  =============
    """

    def __init__(
        self,
        contexts: Sequence[int] = (2, 3, 4, 5),
        conv_width: int = 32,
        vocab_size: int = len(CHARS),
        max_len: int = MAX_LEN,
        embedding_dim: int = 10,
        fc_width: int = 256,
    ) -> None:
        super().__init__()
        checks.positive_ints(
            conv_width=conv_width,
            vocab_size=vocab_size,
            max_len=max_len,
            embedding_dim=embedding_dim,
            fc_width=fc_width,
        )
        self.seq_len = max_len + 1
        self.contexts = _checked_contexts(contexts, self.seq_len)
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.convs = nn.ModuleList(
            nn.Conv1d(embedding_dim, conv_width, kernel_size=c) for c in self.contexts
        )
        self.relu = nn.ReLU()
        self.fc = nn.Sequential(
            nn.Linear(conv_width * len(self.contexts), fc_width),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(fc_width, 2),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, max_len + 1) int64 -> (B, conv_width * len(contexts)) features."""
        checks.token_ids(x, self.seq_len, self.vocab_size, self.embedding.weight.device)
        embedded = self.embedding(x).transpose(1, 2)  # (B, embedding_dim, max_len + 1)
        # per width: (B, conv_width, positions) -> max over positions -> (B, conv_width)
        pooled = [self.relu(conv(embedded)).amax(dim=-1) for conv in self.convs]
        return torch.cat(pooled, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, max_len + 1) int64 token ids -> (B, 2) logits."""
        return self.fc(self.features(x))


def _checked_contexts(contexts: object, seq_len: int) -> tuple[int, ...]:
    """``contexts`` as a tuple of distinct widths, each an int in [1, seq_len]."""
    if isinstance(contexts, (str, bytes)) or not isinstance(contexts, Sequence):
        raise TypeError(f"contexts must be a sequence of ints, got {contexts!r}")
    if not contexts or len(set(contexts)) != len(contexts):
        raise ValueError(
            f"contexts must be distinct widths, at least one, got {contexts!r}"
        )
    for context in contexts:
        checks.positive_ints(context=context)
        if context > seq_len:
            raise ValueError(
                f"context={context} is longer than the input of max_len + 1 = {seq_len} tokens"
            )
    return tuple(contexts)
