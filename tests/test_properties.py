"""Property-based tests over the sizes that shape a run: rows, batch size, bucketing pool, step counts."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from newslab.data import EncodedSplit, Split, batch_indices, collate, iterate_batches
from newslab.train import CHECK_EVERY, TrainingDiverged, train_epoch


class WordIds:
    """A tokenizer stand-in: one id per whitespace word (ids >= 2), enough to build splits."""

    vocab_size = 1000

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [[2 + int(w[1:]) % 998 for w in t.split()] for t in texts]


def split_of(lengths: list[int]) -> EncodedSplit:
    texts = [" ".join(f"w{j}" for j in range(n)) for n in lengths]
    return EncodedSplit.build(WordIds(), Split(texts, [i % 4 for i in range(len(lengths))]))


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=300),
    batch_size=st.integers(1, 70),
    pool=st.integers(1, 8),
    max_len=st.integers(1, 48),
    seed=st.integers(0, 2**16),
    train=st.booleans(),
)
def test_batches_cover_every_row_once(lengths, batch_size, pool, max_len, seed, train) -> None:
    split = split_of(lengths)
    generator = torch.Generator().manual_seed(seed) if train else None
    batches = batch_indices(split, batch_size, max_len, generator, pool_batches=pool)
    rows = torch.cat(batches).tolist()
    assert sorted(rows) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    if not train:
        assert len(batches) == math.ceil(len(lengths) / batch_size)
    for index in batches[:3]:
        batch = collate(split, index, max_len)
        real = (~batch.pad_mask).sum(1)
        assert torch.equal(real, split.lengths(max_len)[index])  # an empty text counts one [UNK]
        assert batch.ids.size(1) == int(real.max()) <= max_len


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=120),
    batch_size=st.integers(1, 20),
    seed=st.integers(0, 2**16),
)
def test_each_batch_gets_its_own_rows_teacher_probabilities(lengths: list[int], batch_size: int, seed: int) -> None:
    """--distill: in shuffled, length-bucketed batches, the teacher rows a step receives are its batch's rows."""
    split = split_of(lengths)
    teacher = torch.eye(len(lengths))  # row i's "probabilities" point at class i
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def step(ids, pad_mask, labels, taught):
        seen.append((labels, taught))
        return torch.tensor(0.5), torch.tensor(0.5), torch.tensor(1.0)

    class Scheduler:
        def step(self) -> None:
            pass

        def get_last_lr(self) -> list[float]:
            return [1e-3]

    batches = iterate_batches(split, batch_size, 16, torch.Generator().manual_seed(seed))
    train_epoch(step, Scheduler(), batches, torch.device("cpu"), epoch=1, teacher=teacher)
    rows = torch.cat([taught.argmax(-1) for _, taught in seen])
    assert sorted(rows.tolist()) == list(range(len(lengths)))  # every row once
    for labels, taught in seen:  # and with its own label: split_of labels row i with i % 4
        assert torch.equal(labels, taught.argmax(-1) % 4)


@settings(max_examples=40, deadline=None)
@given(steps=st.integers(1, 4 * CHECK_EVERY + 1), bad_step=st.one_of(st.none(), st.integers(1, 4 * CHECK_EVERY + 1)))
def test_the_finiteness_check_at_any_step_count(steps: int, bad_step: int | None) -> None:
    """Epochs whose step count is a multiple of the check interval once crashed the loop."""
    split = split_of([3] * steps)
    calls = []

    def step(ids, pad_mask, labels, teacher):
        calls.append(1)
        loss = float("nan") if len(calls) == bad_step else 0.5
        return torch.tensor(loss), torch.tensor(loss / 2), torch.tensor(1.0)

    class Scheduler:
        def step(self) -> None:
            pass

        def get_last_lr(self) -> list[float]:
            return [1e-3]

    batches = (collate(split, index, 8) for index in batch_indices(split, 1, 8))
    if bad_step is not None and bad_step <= steps:
        with pytest.raises(TrainingDiverged, match=f"step {bad_step}$"):
            train_epoch(step, Scheduler(), batches, torch.device("cpu"), epoch=1)
    else:
        stats = train_epoch(step, Scheduler(), batches, torch.device("cpu"), epoch=1)
        assert (stats.loss, stats.loss_unsmoothed, stats.grad_norm) == (0.5, 0.25, 1.0)
        assert (stats.samples, stats.tokens) == (steps, 3 * steps) and stats.lr == pytest.approx(1e-3)
