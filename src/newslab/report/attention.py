"""What the trained model attends to: one validation sample in detail, and every head summarised
over many validation samples, with its spread and against uniform attention.

Weights come from the model's explicit attention path (post-softmax, (B, nh, T, T) per layer).
Samples are run in padded batches, as in evaluation, and padding is cut away afterwards: keys
at padded positions were masked before the softmax (so each real query's row still sums to 1
over the real tokens) and padded queries are dropped.

A head is read against uniform attention over the same row of L tokens. Per query i it has three
measures, each averaged over the row's queries:

- self share: the weight on its own position, wᵢᵢ (uniform: 1 / L);
- entropy of the whole row of weights (uniform: log L);
- distance: the mean |i − j| over the other tokens, with the weights renormalised over keys j ≠ i
  (uniform: (L + 1) / 3, the mean of |i − j| over every pair i ≠ j). Attending to itself is measured
  by the self share only, never as nearness: a query may pick its own token by content alone, since
  its query and key come from the same embedding. A query with no weight off itself has no preference
  among the others and counts as uniform.

Entropy and distance are divided by uniform's, so 1 means "as uniform attention" whatever the row's
length. A head's kind (HEAD_KINDS) is the first rule of KIND_RULES its means over the rows meet:

- self: self share > SELF_SHARE;
- positional: distance / uniform ≤ POSITIONAL_DISTANCE;
- broad: entropy / uniform ≥ BROAD_ENTROPY;
- focused: entropy / uniform ≤ FOCUSED_ENTROPY (few tokens, chosen by content);
- mixed: none of these.
"""

from __future__ import annotations

import operator
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import BASELINE, DataConfig, RunConfig
from ..data import Dataset, EncodedSplit, Split, cache_dir, collate, load_dataset
from ..errors import ConfigError, NewslabError
from ..model import TextClassifier
from ..runs import load_run
from ..study.results import StudyResult
from ..tokenization import UNK_ID
from .effects import Selected, is_ablation_study
from .i18n import Reason

SAMPLE_TOKENS = (12, 28)  # a sample of this many tokens gives a readable token x token heatmap
HEAD_ROWS = 256  # validation rows per head summary: a stable mean and sd (its standard error sd / 16), seconds on a CPU

# Head kinds, on the mean over rows of a head's measures (see the docstring).
SELF_SHARE = 0.5  # more than half on its own token: it outweighs all the other tokens together
POSITIONAL_DISTANCE = 0.6  # the others within 60% of uniform's distance: content at random positions gives ≈ 1
BROAD_ENTROPY = 0.9  # spread over ≥ L^0.9 tokens' worth (e^entropy): nearly as even as uniform
FOCUSED_ENTROPY = 0.5  # spread over ≤ √L tokens' worth: a few tokens take the mass
# kind -> (measure, its WORDS label, comparison, threshold), checked in this order; none met: "mixed"
KIND_RULES: dict[str, tuple[str, str, float]] = {
    "self": ("self_share", ">", SELF_SHARE),
    "positional": ("distance_rel", "≤", POSITIONAL_DISTANCE),
    "broad": ("entropy_rel", "≥", BROAD_ENTROPY),
    "focused": ("entropy_rel", "≤", FOCUSED_ENTROPY),
}
HEAD_KINDS = (*KIND_RULES, "mixed")
_COMPARISONS = {">": operator.gt, "≤": operator.le, "≥": operator.ge}

COMPARED_ABLATION = "no_pe"  # the variant whose heads are set beside the selected model's


class SampleChoiceError(ConfigError):
    """An --attention-sample or --attention-class naming no usable row: the command fails (one line)
    instead of the report quietly showing another sample."""


@dataclass(frozen=True)
class SampleChoice:
    """Which validation row the attention maps show: a row number, or the first suitable row of a
    true class; neither: the first suitable row (pick_sample)."""

    index: int | None = None  # --attention-sample
    class_name: str | None = None  # --attention-class

    def __post_init__(self) -> None:
        if self.index is not None and self.class_name is not None:
            raise SampleChoiceError("--attention-sample and --attention-class exclude each other: give one")
        if self.index is not None and self.index < 0:
            raise SampleChoiceError(
                f"--attention-sample {self.index} is not a validation row: rows are numbered from 0"
            )

    def flags(self) -> str:
        """The command-line flags that make this choice (" --attention-sample 7"; "" for the default)."""
        if self.index is not None:
            return f" --attention-sample {self.index}"
        return f" --attention-class {shlex.quote(self.class_name)}" if self.class_name is not None else ""


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
    """Per validation row (of at least 2 tokens: a single token has nothing to choose) and head:
    the mean over the row's real queries of the attention's entropy, distance to the other tokens
    and share on the query's own token, and what uniform attention over the same row gives."""

    entropy: torch.Tensor  # (rows, layers, heads), nats
    distance: torch.Tensor  # (rows, layers, heads), tokens, over keys j ≠ i
    self_share: torch.Tensor  # (rows, layers, heads), the weight wᵢᵢ
    uniform_entropy: torch.Tensor  # (rows,): log L
    uniform_distance: torch.Tensor  # (rows,): (L + 1) / 3
    uniform_self: torch.Tensor  # (rows,): 1 / L
    unknown_share: float  # the share of [UNK] among the rows' tokens
    run_dir: Path | None = None
    data: DataConfig | None = None  # the data settings of the validation split the rows come from

    @property
    def samples(self) -> int:
        return self.entropy.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return self.entropy.shape[1], self.entropy.shape[2]

    @property
    def entropy_ratio(self) -> torch.Tensor:
        """(rows, layers, heads): 1 spreads as evenly as uniform attention, 0 takes one token."""
        return self.entropy / self.uniform_entropy[:, None, None]

    @property
    def distance_ratio(self) -> torch.Tensor:
        """(rows, layers, heads): 1 as far off as uniform attention, 1 / ((L + 1) / 3) on the neighbours."""
        return self.distance / self.uniform_distance[:, None, None]

    def kinds(self) -> list[list[str]]:
        """[layer][head] -> one of HEAD_KINDS (see the module docstring)."""
        means = (mean_sd(values)[0] for values in (self.entropy_ratio, self.distance_ratio, self.self_share))
        return [[head_kind(*map(float, head)) for head in zip(*layer)] for layer in zip(*means)]


def head_kind(entropy_ratio: float, distance_ratio: float, self_share: float) -> str:
    """The first of KIND_RULES these means meet, else "mixed"."""
    measured = {"entropy_rel": entropy_ratio, "distance_rel": distance_ratio, "self_share": self_share}
    for kind, (measure, comparison, threshold) in KIND_RULES.items():
        if _COMPARISONS[comparison](measured[measure], threshold):
            return kind
    return "mixed"


def mean_sd(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over rows (dim 0): the spread of rows, not an interval of the mean."""
    sd = values.std(0) if values.shape[0] > 1 else torch.zeros_like(values[0])
    return values.mean(0), sd


@dataclass
class AttentionAnalysis:
    run_dir: Path
    class_names: list[str]
    sample: SampleAttention
    heads: HeadSummary
    choice: SampleChoice = field(default_factory=SampleChoice)  # how `sample` was chosen
    compared: HeadSummary | None = None  # the COMPARED_ABLATION model's heads, on the same rows
    compared_note: str | None = None  # why `compared` is missing (a Reason), when its run was found but not analysed

    @property
    def same_rows(self) -> bool:
        """Whether `compared` was summarised on the very rows of `heads` (same data settings and count)."""
        c = self.compared
        return c is not None and c.data == self.heads.data and c.samples == self.heads.samples


def pick_sample(
    split: EncodedSplit,
    max_len: int,
    model: TextClassifier | None = None,
    tokens: tuple[int, int] = SAMPLE_TOKENS,
    rows: torch.Tensor | None = None,
) -> int:
    """A validation row worth reading, among `rows` (default: all): of a readable length, classified
    correctly by `model` (when given and any is) and with the fewest [UNK] tokens — the first such
    row; without a row of a readable length, the row closest to that range."""
    rows = torch.arange(len(split)) if rows is None else rows
    lengths = split.lengths(max_len)[rows]
    readable = rows[(lengths >= tokens[0]) & (lengths <= tokens[1])][:512]
    if not len(readable):
        return int(rows[int((lengths - sum(tokens) / 2).abs().argmin())])
    if model is not None:
        right = predictions(model, split, readable, max_len) == split.labels[readable]
        readable = readable[right] if right.any() else readable
    unknown = torch.tensor([float((split.row(int(i), max_len) == UNK_ID).float().mean()) for i in readable])
    return int(readable[int(unknown.argmin())])  # argmin returns the first of equal minima


def choose_sample(
    split: EncodedSplit, class_names: list[str], max_len: int, model: TextClassifier, choice: SampleChoice
) -> int:
    """The row `choice` names (ConfigError naming the flag and what is valid), else pick_sample's."""
    if choice.index is not None:
        if choice.index >= len(split):
            raise SampleChoiceError(
                f"--attention-sample {choice.index} is not a validation row: choose 0..{len(split) - 1}"
            )
        return choice.index
    if choice.class_name is None:
        return pick_sample(split, max_len, model)
    folded = [name.casefold() for name in class_names]
    if choice.class_name.casefold() not in folded:
        raise SampleChoiceError(
            f"--attention-class {choice.class_name!r} is not a class: choose one of {' | '.join(class_names)}"
        )
    rows = (split.labels == folded.index(choice.class_name.casefold())).nonzero().flatten()
    if not len(rows):
        raise SampleChoiceError(
            f"--attention-class {choice.class_name!r}: the validation split has no row of this class"
        )
    return pick_sample(split, max_len, model, rows=rows)


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


def row_statistics(attention: list[torch.Tensor], pad_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per row of a padded batch: entropy, distance to the other tokens and self share (B, layers, heads),
    each the mean over the row's real queries, then uniform attention's three (B,) — HeadSummary's fields
    in order. `attention`: per layer (B, nh, T, T), rows summing to 1 over real keys (padded keys hold 0);
    padded queries are ignored."""
    real = ~pad_mask  # (B, T)
    T = pad_mask.shape[1]
    gap = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).abs().float()  # (T, T): |i - j|
    others = 1.0 - torch.eye(T)  # (T, T): 0 on the diagonal, keys j ≠ i
    keys = real[:, None, None, :].float()  # (B, 1, 1, T)
    uniform = keys / keys.sum(-1, keepdim=True)  # each real key 1 / L
    uniform_others = keys * others / (keys * others).sum(-1, keepdim=True).clamp_min(1)  # 1 / (L − 1); none at L = 1

    def per_query_mean(weights: torch.Tensor) -> tuple[torch.Tensor, ...]:  # (B, h, T, T) -> 3 x (B, h)
        w = weights.float()
        entropy = torch.special.entr(w).sum(-1)  # (B, h, T); entr(0) = 0: masked keys add nothing
        off = w * others
        mass = off.sum(-1, keepdim=True)  # 1 − wᵢᵢ
        off = torch.where(mass > 0, off / mass.clamp_min(torch.finfo(w.dtype).tiny), uniform_others)
        distance = (off * gap).sum(-1)
        self_share = w.diagonal(dim1=-2, dim2=-1)
        queries = real[:, None, :]  # where(), not a product: a padded query's junk may be inf or nan
        return tuple(torch.where(queries, x, 0.0).sum(-1) / queries.sum(-1) for x in (entropy, distance, self_share))

    per_layer = [per_query_mean(weights) for weights in attention]
    uniforms = per_query_mean(uniform.expand(-1, 1, T, -1))
    return (*(torch.stack(measure, 1) for measure in zip(*per_layer)), *(u[:, 0] for u in uniforms))


@torch.inference_mode()
def head_summary(
    model: TextClassifier, split: EncodedSplit, max_len: int, samples: int = HEAD_ROWS, batch_size: int = 64
) -> HeadSummary:
    """Every head over the first `samples` rows of at least 2 tokens (row_statistics per row),
    run in length-sorted batches so that little is padded."""
    model.eval()
    lengths = split.lengths(max_len)
    rows = (lengths >= 2).nonzero().flatten()[:samples]
    if not len(rows):
        raise NewslabError("no validation row has 2 tokens or more: attention has nothing to choose among")
    rows = rows[torch.argsort(lengths[rows], stable=True)]
    parts, unknown = [], 0
    for chunk in rows.split(batch_size):
        batch = collate(split, chunk, max_len)
        _, attention = model(batch.ids, batch.pad_mask, need_weights=True)
        parts.append(row_statistics(attention, batch.pad_mask))
        unknown += int(((batch.ids == UNK_ID) & ~batch.pad_mask).sum())
    entropy, distance, self_share, uniform_entropy, uniform_distance, uniform_self = (
        torch.cat(column) for column in zip(*parts)
    )
    return HeadSummary(
        entropy, distance, self_share, uniform_entropy, uniform_distance, uniform_self,
        unknown_share=unknown / int(lengths[rows].sum()),
    )  # fmt: skip


def _validation(run, dataset: Dataset) -> EncodedSplit:
    # Encode with the checkpoint's own tokenizer: the ids must be the ones the model was trained on.
    val = EncodedSplit.build(run.tokenizer, Split(dataset.val.texts, dataset.val.labels.tolist()))
    if len(val) == 0:
        raise NewslabError("the validation split is empty")
    return val


def _config(run, data_dir: str | Path | None) -> RunConfig:
    return run.config.replace(data_dir=str(data_dir)) if data_dir else run.config


def summarise_run(
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    samples: int = HEAD_ROWS,
    known: tuple[DataConfig, Dataset] | None = None,
) -> HeadSummary:
    """head_summary of a run's best checkpoint on its own validation split: `known`'s dataset when it
    was loaded with the same data settings (then the rows are the same), else the run's own."""
    run = load_run(run_dir)
    config = _config(run, data_dir)
    same = known is not None and known[0] == config.data
    dataset = (
        known[1]
        if known is not None and same
        else load_dataset(config.data, cache_dir(config.execution.out_dir), progress=False)
    )
    summary = head_summary(run.model, _validation(run, dataset), config.model.max_len, samples)
    summary.run_dir, summary.data = Path(run_dir), config.data
    return summary


def analyse_run(
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    samples: int = HEAD_ROWS,
    dataset: Dataset | None = None,
    choice: SampleChoice | None = None,
    compared_run: str | Path | None = None,
) -> AttentionAnalysis:
    """Load a run's best checkpoint and its validation split (or take `dataset`, already loaded
    for this run); analyse the sample `choice` names (SampleChoiceError when it names none) and every
    head; and, given `compared_run` (see compared_run), that model's heads beside them."""
    run = load_run(run_dir)
    config = _config(run, data_dir)
    dataset = dataset or load_dataset(config.data, cache_dir(config.execution.out_dir), progress=False)
    val, max_len, choice = _validation(run, dataset), config.model.max_len, choice or SampleChoice()
    index = choose_sample(val, run.class_names, max_len, run.model, choice)  # a bad flag fails before the work
    sample = sample_attention(run.model, val, index, max_len, run.tokenizer)
    heads = head_summary(run.model, val, max_len, samples)
    heads.run_dir, heads.data = Path(run_dir), config.data
    analysis = AttentionAnalysis(Path(run_dir), run.class_names, sample, heads, choice)
    if compared_run is not None:
        try:
            analysis.compared = summarise_run(compared_run, data_dir, samples, known=(config.data, dataset))
        except NewslabError as exc:  # the selected model's analysis stands without the comparison
            analysis.compared_note = Reason("compared_unreadable", run=compared_run, why=exc)
    return analysis


def compared_run(results: list[StudyResult], ablation: str = COMPARED_ABLATION) -> Path | None:
    """The run of `ablation` in the first ablation study that ran it: like the selected model's,
    its confirmation run of the lowest seed (its selection run of the lowest seed when unconfirmed)."""
    for result in results:
        if not is_ablation_study(result) or ablation == BASELINE:
            continue
        point = next((s for s in result.points() if s.point.get("ablation") == ablation), None)
        if point is None:
            continue
        trial = min(Selected(point, result.confirmation(point)).estimate.trials, key=lambda t: t.seed)
        if trial.run_dir:
            return Path(trial.run_dir)
    return None
