"""Positional encodings, one small module each, in one registry.

A new encoding is one class here plus one line in POSITIONAL_ENCODINGS (and its test in
tests/test_model.py, which runs over every entry). `None` means no positional information:
the model then has no module at all, not an identity.

Each class maps token embeddings (B, T, C) to the same shape with positions added, and may
refuse a width it cannot work with (`check`), which RunConfig calls to name the flag.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table  # (length, C)


class PositionalEncoding(nn.Module):
    """Adds position information to token embeddings: (B, T, C) -> (B, T, C)."""

    @staticmethod
    def check(embed_dim: int) -> str | None:
        """Why this encoding cannot work at this width (completing "--embed-dim N ..."), or None."""
        return None


class SinusoidalPositions(PositionalEncoding):
    """Vaswani et al.'s fixed sinusoid table, added to the (scaled) token embeddings."""

    def __init__(self, embed_dim: int, max_len: int):
        super().__init__()
        self.table: torch.Tensor
        self.register_buffer("table", sinusoidal_table(max_len, embed_dim), persistent=False)

    @staticmethod
    def check(embed_dim: int) -> str | None:
        return None if embed_dim % 2 == 0 else "must be even for sinusoidal --pos-encoding"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.size(1)]  # (B, T, C)


class LearnedPositions(PositionalEncoding):
    """One trained vector per position (BERT-style), starting at the scale of what it is added to."""

    def __init__(self, embed_dim: int, max_len: int):
        super().__init__()
        self.embedding = nn.Embedding(max_len, embed_dim)
        # std 1: the scale of the scaled token embedding (std 1) and of the sinusoid table (RMS 0.71), not 1/sqrt(C)
        nn.init.normal_(self.embedding.weight, std=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.embedding.weight[: x.size(1)]  # (B, T, C)


POSITIONAL_ENCODINGS: dict[str, type[PositionalEncoding] | None] = {
    "sinusoidal": SinusoidalPositions,
    "learned": LearnedPositions,
    "none": None,
}
