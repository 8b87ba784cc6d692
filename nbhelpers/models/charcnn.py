"""The character-level CNN of chapter 07 (gender of Spanish given names)."""

from __future__ import annotations

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
    ``MAX_LEN + 1 - context`` of the name: whatever a name of 20 or more characters (context 3;
    19 or more for context 4) holds there was never seen. Here the pool kernel is the full
    convolution output length.

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
        self._check_tokens(x)
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

    def _check_tokens(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a tensor of token ids, got {type(x).__name__}")
        if x.dtype != torch.int64:
            raise TypeError(f"expected int64 token ids, got dtype {x.dtype}")
        if x.dim() != 2 or x.shape[1] != self.seq_len:
            raise ValueError(
                f"expected token ids of shape (B, {self.seq_len}) (max_len + 1), got {tuple(x.shape)}"
            )
        weight_device = self.embedding.weight.device
        if x.device != weight_device:
            raise ValueError(
                f"token ids are on {x.device} but the model is on {weight_device}"
            )
        # Only on the CPU: reading values back from an accelerator would cost a sync every step
        # (there an out-of-range id trips the embedding's own device-side check instead).
        if x.device.type == "cpu" and x.numel() > 0:
            low, high = int(x.min()), int(x.max())
            if low < 0 or high >= self.vocab_size:
                bad = low if low < 0 else high
                raise ValueError(
                    f"token id {bad} is outside the vocabulary [0, {self.vocab_size})"
                )
