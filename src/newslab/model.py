"""The Transformer-encoder text classifier, bottom-up in small modules.

Shapes: B batch, T tokens, C embed_dim, nh heads, hs head size (C // nh).
Ablations are constructor flags; an absent part is None and skipped (no identity that
still adds a residual), so `no_ffn` has no FFN module, no FFN norm and no FFN residual.
Positional encodings come from the registry in positions.py: added to the embeddings
(`positions`) or acting inside every attention layer (`attention_positions`), at most one of them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .positions import POSITIONAL_ENCODINGS, AddedPositions, AttentionPositions


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout; on CPU with a cheap mask: 16 random bits per element, cut from 64-bit draws.

    Drops an element iff its uniform 16-bit draw is below round(p * 65536), i.e. with probability
    p to within 1/65536, like F.dropout, but cheaper: with torch's per-element Bernoulli sampling
    the whole CPU training step ran at 0.88x (benchmarks/experiments.py --group step). The mask ends in
    x's dtype, so a bf16 activation stays bf16 (1/(1-p) then rounds to bf16: 1.109 for p = 0.1).
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training)  # CUDA's fused Philox kernel is already cheap
    bits = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    draws = bits.view(torch.int16)[: x.numel()].view(x.shape).float()  # exact in fp32 (not in bf16)
    # keep iff draw >= threshold, P(keep) = 1 - p: draw - threshold + 1 is >= 1 exactly then, <= 0 otherwise, so the
    # clamp gives 0 or 1 (vectorized in-place passes: cheaper than a compare and then a select to a float mask)
    threshold = round(p * 65536) - 32768
    mask = draws.sub_(threshold - 1).clamp_(0.0, 1.0).mul_(1.0 / (1.0 - p)).to(x.dtype)
    return x * mask


class Dropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


class SelfAttention(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)  # fused Q, K, V projection
        self.proj = nn.Linear(embed_dim, embed_dim)

    def forward(
        self,
        x: torch.Tensor,
        pad_mask: torch.Tensor,
        need_weights: bool = False,
        positions: AttentionPositions | None = None,
    ):
        B, T, C = x.shape
        nh, hs = self.num_heads, C // self.num_heads
        qkv = self.qkv(x).view(B, T, 3, nh, hs).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        p = self.dropout if self.training else 0.0
        explicit = need_weights or (p > 0 and x.device.type == "cpu")
        if explicit:  # one copy into head-major layout: q, k, v each a contiguous batch of B * nh matrices
            qkv = qkv.contiguous()  # only here: SDPA reads the strided views itself (inference ran slower with it)
        q, k, v = qkv  # 3 x (B, nh, T, hs)
        bias = None  # (nh, T, T) added to the scaled scores (ALiBi, relative bias)
        if positions is not None:
            q, k, bias = positions(q, k)
        if explicit:
            # Explicit path: the same maths as SDPA. It returns the post-softmax weights when asked,
            # and on CPU trains with dropout faster than SDPA, which falls back to an unfused "safe
            # softmax" and torch's Bernoulli there. No row is all padding: a plain softmax is safe.
            # The padding's -inf and the 1/sqrt(hs) scale ride in the matrix multiply (no masked copy, no scaled q).
            padding = torch.zeros(B, T, dtype=q.dtype, device=x.device).masked_fill_(pad_mask, float("-inf"))
            padding = padding.repeat_interleave(nh, dim=0)[:, None, :]  # (B * nh, 1, T), broadcast over the queries
            q, k = q.reshape(B * nh, T, hs), k.reshape(B * nh, T, hs)  # views: positions keep them contiguous
            att = torch.baddbmm(padding, q, k.transpose(1, 2), alpha=1.0 / math.sqrt(hs)).view(B, nh, T, T)
            if bias is not None:  # in fp32: a bf16 bias would round a low-slope ALiBi head's steps away
                att = att.float() + bias
            probs = att.softmax(dim=-1).to(v.dtype)  # (B, nh, T, T)
            y = dropout(probs, p, self.training) @ v  # (B, nh, T, hs)
            weights = probs if need_weights else None
        else:  # inference, training without dropout, or on a GPU: fused (flash) attention
            weights = None
            keep = ~pad_mask[:, None, None, :]  # (B, 1, 1, T): True = may be attended to
            # a float mask is added to the scores: the bias where attending is allowed, -inf on padding; SDPA takes
            # it in q's dtype (bf16 under autocast: inference only on CPU, where training uses the path above)
            mask = keep if bias is None else bias.to(q.dtype).masked_fill(~keep, float("-inf"))  # (B, nh, T, T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.proj(y), weights


class FeedForward(nn.Module):
    def __init__(self, embed_dim: int, hidden: int):
        super().__init__()
        self.up = nn.Linear(embed_dim, hidden)
        self.down = nn.Linear(hidden, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-norm encoder block: x + attn(ln(x)), then x + ffn(ln(x)) when the FFN exists."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_hidden: int | None, dropout: float):
        super().__init__()
        self.ln_attn = nn.LayerNorm(embed_dim)
        self.attn = SelfAttention(embed_dim, num_heads, dropout)
        self.ln_ffn = nn.LayerNorm(embed_dim) if ffn_hidden else None
        self.ffn = FeedForward(embed_dim, ffn_hidden) if ffn_hidden else None
        self.drop = Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        pad_mask: torch.Tensor,
        need_weights: bool = False,
        positions: AttentionPositions | None = None,
    ):
        a, weights = self.attn(self.ln_attn(x), pad_mask, need_weights, positions)
        x = x + self.drop(a)
        if self.ffn is not None and self.ln_ffn is not None:
            x = x + self.drop(self.ffn(self.ln_ffn(x)))
        return x, weights


def drop_tokens(pad_mask: torch.Tensor, p: float) -> torch.Tensor:
    """Word dropout: each real token of pad_mask (B, T) becomes padding with probability p; a row that would
    lose all its tokens keeps them (an empty row has nothing to pool). Returns the new (B, T) mask."""
    dropped = pad_mask | ((torch.rand(pad_mask.shape, device=pad_mask.device) < p) & ~pad_mask)
    return torch.where(dropped.all(1, keepdim=True), pad_mask, dropped)


class TextClassifier(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        *,
        embed_dim: int = 128,
        num_heads: int = 4,
        num_layers: int = 2,
        ffn_hidden: int | None = 512,
        dropout: float = 0.1,
        pos_encoding: str = "sinusoidal",
        max_len: int = 128,
        freeze_embedding: bool = False,
        token_dropout: float = 0.0,
        pad_id: int = 0,
    ):
        super().__init__()
        self.token_dropout = token_dropout
        self.embed_scale = math.sqrt(embed_dim)
        self.tok_emb = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.tok_emb.weight.requires_grad_(not freeze_embedding)
        encoding = POSITIONAL_ENCODINGS[pos_encoding]
        module = encoding(embed_dim, max_len, num_heads) if encoding is not None else None
        self.positions = module if isinstance(module, AddedPositions) else None
        self.attention_positions = module if isinstance(module, AttentionPositions) else None  # shared by the layers
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, ffn_hidden, dropout) for _ in range(num_layers))
        self.ln_f = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(self._init_weights)

    @classmethod
    def from_config(cls, config: ModelConfig, vocab_size: int, num_classes: int) -> TextClassifier:
        return cls(
            vocab_size,
            num_classes,
            embed_dim=config.embed_dim,
            num_heads=config.num_heads,
            num_layers=config.num_layers,
            ffn_hidden=config.ffn_hidden,
            dropout=config.dropout,
            pos_encoding=config.pos_encoding,
            max_len=config.max_len,
            freeze_embedding=config.freeze_embedding,
            token_dropout=config.token_dropout,
        )

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif module is self.tok_emb:  # std 1/sqrt(C), times embed_scale in forward: entries of std 1
            nn.init.normal_(self.tok_emb.weight, std=1.0 / self.embed_scale)
            with torch.no_grad():
                self.tok_emb.weight[self.tok_emb.padding_idx].zero_()
        # positional encodings own their initial scale (positions.py), matched to the scaled tokens

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) -> scaled token embeddings (B, T, C), before any position is added."""
        return self.tok_emb(ids) * self.embed_scale

    def encode(self, x: torch.Tensor, pad_mask: torch.Tensor, need_weights: bool = False):
        """Embeddings (B, T, C) -> the final layer's token states (B, T, C) and, if asked, each layer's
        attention weights (the masked-language-model pretraining reads the token states: pretrain.py)."""
        if self.positions is not None:
            x = self.positions(x)
        x = self.drop(x)
        attention = []
        for block in self.blocks:
            x, weights = block(x, pad_mask, need_weights, self.attention_positions)
            attention.append(weights)
        return self.ln_f(x), attention

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor, need_weights: bool = False):
        """ids, pad_mask: (B, T). Returns logits (B, classes) and, if asked, one (B, nh, T, T)
        tensor of post-softmax attention weights per layer."""
        if self.training and self.token_dropout > 0:
            pad_mask = drop_tokens(pad_mask, self.token_dropout)
        x, attention = self.encode(self.embed(ids), pad_mask, need_weights)  # (B, T, C)
        keep = (~pad_mask).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        pooled = (x * keep).sum(1) / keep.sum(1)  # masked mean over real tokens: (B, C)
        logits = self.head(self.drop(pooled))
        return (logits, attention) if need_weights else logits

    def parameter_counts(self) -> dict[str, int]:
        """Parameters split embedding / encoder / head (the sinusoidal, RoPE and ALiBi tables are buffers, not counted)."""
        embedding = sum(p.numel() for m in (self.tok_emb, self.positions) if m is not None for p in m.parameters())
        parts = (self.blocks, self.ln_f, self.attention_positions)  # a relative bias is the encoder's
        encoder = sum(p.numel() for m in parts if m is not None for p in m.parameters())
        head = sum(p.numel() for p in self.head.parameters())
        return {"embedding": embedding, "encoder": encoder, "head": head, "total": embedding + encoder + head}
