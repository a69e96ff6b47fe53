"""Positional encodings, one small module each, in one registry.

A new encoding is one class here plus one line in POSITIONAL_ENCODINGS (and its tests in
tests/test_model.py and tests/test_positions.py, which run over every entry). `None` means no
positional information: the model then has no module at all, not an identity.

Two kinds, by where position enters the model:
- AddedPositions map the token embeddings (B, T, C) to the same shape with positions added
  (sinusoidal, learned), once, below the first block;
- AttentionPositions act inside every attention layer on the queries and keys (B, nh, T, hs),
  rotating them (RoPE) or returning a bias (nh, T, T) added to the scores (ALiBi, learned
  relative bias): the scores then depend on the offset j - i, not on absolute positions.
Each may refuse a width it cannot work with (`check`), which ModelConfig calls to name the flag.
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
    """Position information for a model of width `embed_dim`, `num_heads` heads, up to `max_len` tokens."""

    def __init__(self, embed_dim: int, max_len: int, num_heads: int):
        super().__init__()

    @staticmethod
    def check(embed_dim: int, num_heads: int) -> str | None:
        """Why this encoding cannot work at this shape (a sentence naming the flags), or None."""
        return None


class AddedPositions(PositionalEncoding):
    """Adds position information to token embeddings: (B, T, C) -> (B, T, C)."""


class AttentionPositions(PositionalEncoding):
    """Acts in every attention layer: (q, k) -> (q, k, bias), q and k (B, nh, T, hs), bias (nh, T, T)
    added to the scaled scores before the softmax, or None."""


class SinusoidalPositions(AddedPositions):
    """Vaswani et al.'s fixed sinusoid table, added to the (scaled) token embeddings."""

    def __init__(self, embed_dim: int, max_len: int, num_heads: int):
        super().__init__(embed_dim, max_len, num_heads)
        self.table: torch.Tensor
        self.register_buffer("table", sinusoidal_table(max_len, embed_dim), persistent=False)

    @staticmethod
    def check(embed_dim: int, num_heads: int) -> str | None:
        return None if embed_dim % 2 == 0 else f"--embed-dim {embed_dim} must be even for sinusoidal --pos-encoding"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.size(1)]  # (B, T, C)


class LearnedPositions(AddedPositions):
    """One trained vector per position (BERT-style), starting at the scale of what it is added to."""

    def __init__(self, embed_dim: int, max_len: int, num_heads: int):
        super().__init__(embed_dim, max_len, num_heads)
        self.embedding = nn.Embedding(max_len, embed_dim)
        # std 1: the scale of the scaled token embedding (std 1) and of the sinusoid table (RMS 0.71), not 1/sqrt(C)
        nn.init.normal_(self.embedding.weight, std=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.embedding.weight[: x.size(1)]  # (B, T, C)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension: a 90° turn of each pair (x1ᵢ, x2ᵢ)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryPositions(AttentionPositions):
    """RoPE (Su et al., 2021): each pair of a head's query and key dimensions is turned by an angle
    proportional to the position, so q_i · k_j depends on the positions only through j - i."""

    def __init__(self, embed_dim: int, max_len: int, num_heads: int, base: float = 10000.0):
        super().__init__(embed_dim, max_len, num_heads)
        head_size = embed_dim // num_heads
        inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)  # (hs/2,)
        angles = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq  # (max_len, hs/2)
        angles = torch.cat((angles, angles), dim=-1)  # (max_len, hs): pair i is dims i and i + hs/2
        self.cos: torch.Tensor
        self.sin: torch.Tensor
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    @staticmethod
    def check(embed_dim: int, num_heads: int) -> str | None:
        if (embed_dim // num_heads) % 2 == 0:
            return None
        return f"--embed-dim {embed_dim} / --num-heads {num_heads} must be an even head size for rope --pos-encoding"

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        T = q.size(-2)
        cos, sin = self.cos[:T].to(q.dtype), self.sin[:T].to(q.dtype)  # (T, hs), in bf16 under autocast
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin, None  # (B, nh, T, hs)


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes (Press et al., 2022): the geometric sequence 2^(-8/n), 2^(-16/n), … for n
    heads when n is a power of two; otherwise those of the next lower power of two, then every other
    slope of the next higher one."""

    def geometric(n: int) -> list[float]:
        return [2 ** (-8 * (i + 1) / n) for i in range(n)]

    lower = 2 ** math.floor(math.log2(num_heads))
    slopes = geometric(lower) + geometric(2 * lower)[0::2][: num_heads - lower]
    return torch.tensor(slopes)


def offsets(length: int) -> torch.Tensor:
    """(T, T): j - i, the key's position minus the query's."""
    position = torch.arange(length)
    return position[None, :] - position[:, None]


class AlibiPositions(AttentionPositions):
    """ALiBi without its causal mask: head h adds -m_h |j - i| to the scores, a linear penalty on distance
    with a different slope per head (from local to nearly global); no parameters."""

    def __init__(self, embed_dim: int, max_len: int, num_heads: int):
        super().__init__(embed_dim, max_len, num_heads)
        self.bias: torch.Tensor
        distance = offsets(max_len).abs().float()  # (max_len, max_len)
        self.register_buffer("bias", -alibi_slopes(num_heads)[:, None, None] * distance, persistent=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        T = q.size(-2)
        return q, k, self.bias[:, :T, :T]  # (nh, T, T)


class RelativeBiasPositions(AttentionPositions):
    """A learned bias per head and offset j - i (Shaw et al., 2018; T5 without buckets): one scalar for each
    of the 2 max_len - 1 offsets, starting at 0 (no positional preference) and shared by every layer."""

    def __init__(self, embed_dim: int, max_len: int, num_heads: int):
        super().__init__(embed_dim, max_len, num_heads)
        self.max_len = max_len
        self.table = nn.Parameter(torch.zeros(num_heads, 2 * max_len - 1))  # (nh, offsets)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        T = q.size(-2)
        index = offsets(T).to(q.device) + self.max_len - 1  # (T, T) in [0, 2 max_len - 2]
        return q, k, self.table[:, index]  # (nh, T, T)


POSITIONAL_ENCODINGS: dict[str, type[PositionalEncoding] | None] = {
    "sinusoidal": SinusoidalPositions,
    "learned": LearnedPositions,
    "rope": RotaryPositions,
    "alibi": AlibiPositions,
    "relative": RelativeBiasPositions,
    "none": None,
}
