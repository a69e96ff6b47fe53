"""What the trained model attends to: one validation sample in detail, and every head summarised
over many validation samples.

Weights come from the model's explicit attention path (post-softmax, (B, nh, T, T) per layer).
Samples are run in padded batches, as in evaluation, and padding is cut away afterwards: keys
at padded positions were masked before the softmax (so each real query's row still sums to 1
over the real tokens) and padded queries are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import Dataset, EncodedSplit, Split, cache_dir, collate, load_dataset
from ..errors import NewslabError
from ..model import TextClassifier
from ..runs import load_run
from ..tokenization import UNK_ID

SAMPLE_TOKENS = (12, 28)  # a sample of this many tokens gives a readable token x token heatmap


@dataclass
class SampleAttention:
    index: int  # row in the validation split
    text: str
    tokens: list[str]
    label: int
    predicted: int
    weights: list[torch.Tensor]  # per layer: (heads, L, L) over the L real tokens

    @property
    def unknown_share(self) -> float:
        """The share of [UNK] tokens: words the vocabulary lacks, which attention cannot tell apart."""
        return self.tokens.count("[UNK]") / max(1, len(self.tokens))


@dataclass
class HeadSummary:
    entropy: torch.Tensor  # (layers, heads): mean entropy of a query's attention, in nats
    uniform_entropy: float  # mean log(L) over the same queries: the entropy of attending uniformly
    distance: torch.Tensor  # (layers, heads): mean |query - key| position distance, weighted by attention
    samples: int


@dataclass
class AttentionAnalysis:
    run_dir: Path
    class_names: list[str]
    sample: SampleAttention
    heads: HeadSummary


def pick_sample(
    split: EncodedSplit, max_len: int, model: TextClassifier | None = None, tokens: tuple[int, int] = SAMPLE_TOKENS
) -> int:
    """A validation row worth reading: of a readable length, classified correctly by `model` (when
    given and any is) and with the fewest [UNK] tokens — the first such row; without a row of a
    readable length, the row closest to that range."""
    lengths = split.lengths(max_len)
    readable = ((lengths >= tokens[0]) & (lengths <= tokens[1])).nonzero().flatten()[:512]
    if not len(readable):
        return int((lengths - sum(tokens) / 2).abs().argmin())
    if model is not None:
        right = predictions(model, split, readable, max_len) == split.labels[readable]
        readable = readable[right] if right.any() else readable
    unknown = torch.tensor([float((split.row(int(i), max_len) == UNK_ID).float().mean()) for i in readable])
    return int(readable[int(unknown.argmin())])  # argmin returns the first of equal minima


@torch.inference_mode()
def predictions(model: TextClassifier, split: EncodedSplit, rows: torch.Tensor, max_len: int) -> torch.Tensor:
    model.eval()
    return torch.cat([model(*_inputs(split, chunk, max_len)).argmax(-1) for chunk in rows.split(256)])


def _inputs(split: EncodedSplit, rows: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    batch = collate(split, rows, max_len)
    return batch.ids, batch.pad_mask


@torch.inference_mode()
def sample_attention(
    model: TextClassifier, split: EncodedSplit, index: int, max_len: int, tokenizer
) -> SampleAttention:
    """Attention of every layer and head for one row, computed next to the split's longest row
    so the sample is padded (as in any batch) and the padding then excluded."""
    model.eval()
    longest = int(split.lengths(max_len).argmax())
    batch = collate(split, torch.tensor([index, longest]), max_len)
    logits, attention = model(batch.ids, batch.pad_mask, need_weights=True)
    length = int((~batch.pad_mask[0]).sum())
    ids = batch.ids[0, :length].tolist()
    return SampleAttention(
        index,
        split.texts[index],
        [tokenizer.id_to_token(i) for i in ids],
        int(split.labels[index]),
        int(logits[0].argmax()),
        [a[0, :, :length, :length].float().clone() for a in attention],
    )


@torch.inference_mode()
def head_summary(
    model: TextClassifier, split: EncodedSplit, max_len: int, samples: int = 256, batch_size: int = 64
) -> HeadSummary:
    """Per layer and head, averaged over the real query tokens of the first `samples` rows:
    the entropy of the attention distribution and the mean distance attended to."""
    model.eval()
    rows = torch.arange(min(samples, len(split)))
    entropy_sum: torch.Tensor | None = None
    distance_sum: torch.Tensor | None = None
    queries, uniform_sum = 0, 0.0
    for chunk in rows.split(batch_size):
        batch = collate(split, chunk, max_len)
        _, attention = model(batch.ids, batch.pad_mask, need_weights=True)
        real = ~batch.pad_mask  # (B, T)
        T = batch.ids.size(1)
        gap = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).abs().float()  # (T, T) |i - j|
        query_mask = real[:, None, :, None].float()  # (B, 1, T, 1): real queries only
        per_layer_entropy, per_layer_distance = [], []
        for weights in attention:  # (B, nh, T, T); padded keys hold exactly 0
            w = weights.float()
            plogp = torch.where(w > 0, w * w.log(), torch.zeros_like(w))
            per_layer_entropy.append((-plogp.sum(-1, keepdim=True) * query_mask).sum((0, 2, 3)))
            per_layer_distance.append(((w * gap).sum(-1, keepdim=True) * query_mask).sum((0, 2, 3)))
        entropy, distance = torch.stack(per_layer_entropy), torch.stack(per_layer_distance)  # (layers, nh)
        entropy_sum = entropy if entropy_sum is None else entropy_sum + entropy
        distance_sum = distance if distance_sum is None else distance_sum + distance
        lengths = real.sum(1).float()
        queries += int(lengths.sum())
        uniform_sum += float((lengths * lengths.log()).sum())  # each real query of a row of L: log L
    assert entropy_sum is not None and distance_sum is not None, "head_summary needs at least one row"
    return HeadSummary(entropy_sum / queries, uniform_sum / queries, distance_sum / queries, len(rows))


def analyse_run(
    run_dir: str | Path, data_dir: str | Path | None = None, samples: int = 256, dataset: Dataset | None = None
) -> AttentionAnalysis:
    """Load a run's best checkpoint and its validation split (or take `dataset`, already loaded
    for this run); analyse one sample and all heads."""
    run = load_run(run_dir)
    config = run.config.replace(data_dir=str(data_dir)) if data_dir else run.config
    dataset = dataset or load_dataset(config.data, cache_dir(config.execution.out_dir), progress=False)
    # Encode with the checkpoint's own tokenizer: the ids must be the ones the model was trained on.
    val = EncodedSplit.build(run.tokenizer, Split(dataset.val.texts, dataset.val.labels.tolist()))
    if len(val) == 0:
        raise NewslabError(f"{run_dir}: the validation split is empty")
    max_len = config.model.max_len
    index = pick_sample(val, max_len, run.model)
    return AttentionAnalysis(
        Path(run_dir),
        run.class_names,
        sample_attention(run.model, val, index, max_len, run.tokenizer),
        head_summary(run.model, val, max_len, samples),
    )


def relative_entropy(summary: HeadSummary) -> torch.Tensor:
    """Entropy as a share of uniform attention's: near 1 spreads evenly, near 0 focuses on one token."""
    return summary.entropy / max(summary.uniform_entropy, math.log(2))
