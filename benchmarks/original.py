"""A faithful re-implementation of the original manual's training pipeline, the baseline to beat.

Our reading of the manual (issue 2 names the first four points; the rest is what such a
script plausibly did, chosen so as not to make the baseline slower than it has to be):
- whitespace vocabulary (`text.lower().split()`), min_freq=1, built on the training rows,
  <pad>=0, <unk>=1; title and description joined as newslab does, no normalization;
- every sequence padded (or truncated) to 256 tokens, encoded once up front, batches from
  a shuffled `DataLoader(batch_size=64)` with the default collate;
- `nn.Embedding` + the PyTorch tutorial's sinusoidal `PositionalEncoding` (x * sqrt(C) + PE,
  dropout 0.1) + `nn.TransformerEncoder` of post-norm (default) `nn.TransformerEncoderLayer`s
  (batch_first, ReLU, dropout 0.1) given `src_key_padding_mask`, mean over all 256 positions,
  `nn.Linear` head;
- `torch.optim.AdamW(model.parameters(), lr)` with its CPU defaults (unfused, for-loop),
  `nn.CrossEntropyLoss`, fp32, and per step `loss.item()` and the batch accuracy read back.
"""

from __future__ import annotations

import math
from collections import Counter

import torch
from torch import nn

PAD_LEN = 256


def build_vocab(texts: list[str], min_freq: int = 1) -> dict[str, int]:
    counts = Counter(w for t in texts for w in t.lower().split())
    vocab = {"<pad>": 0, "<unk>": 1}
    for word, n in counts.most_common():
        if n >= min_freq:
            vocab[word] = len(vocab)
    return vocab


def encode(texts: list[str], vocab: dict[str, int], pad_len: int = PAD_LEN) -> torch.Tensor:
    out = torch.zeros(len(texts), pad_len, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = [vocab.get(w, 1) for w in t.lower().split()][:pad_len]
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out  # (N, 256)


class PositionalEncoding(nn.Module):  # the PyTorch tutorial's, batch first
    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(1, max_len, d_model)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[:, : x.size(1)])


class OriginalClassifier(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 128,
        num_heads: int = 4,
        num_layers: int = 3,
        ffn_dim: int = 512,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.pos = PositionalEncoding(embed_dim, dropout)
        layer = nn.TransformerEncoderLayer(embed_dim, num_heads, ffn_dim, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.fc = nn.Linear(embed_dim, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad_mask = ids == 0  # (B, 256)
        x = self.pos(self.embedding(ids) * math.sqrt(self.embed_dim))
        x = self.encoder(x, src_key_padding_mask=pad_mask)
        return self.fc(x.mean(dim=1))


def make_step(model: OriginalClassifier, lr: float = 1e-3):
    """The manual's inner loop body, one batch; returns the loss as a float (read back, as it did)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    model.train()

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        ids, labels = batch
        optimizer.zero_grad()
        logits = model(ids)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
        step.correct += (logits.argmax(1) == labels).sum().item()
        return loss.item()

    step.correct = 0
    return step


def loader(ids: torch.Tensor, labels: torch.Tensor, batch_size: int = 64, seed: int = 0):
    """Endless shuffled batches from a DataLoader, yielding (batch, samples, real tokens)."""
    dataset = torch.utils.data.TensorDataset(ids, labels)
    gen = torch.Generator().manual_seed(seed)
    while True:
        for x, y in torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=gen):
            yield (x, y), len(y), int((x != 0).sum())
