"""The distillation teacher (teacher.py) and --distill / --token-dropout in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import newslab.teacher as teacher_mod
from conftest import load
from newslab.config import RunConfig
from newslab.data import cache_dir
from newslab.errors import ConfigError
from newslab.teacher import out_of_fold_probabilities, teacher_probabilities
from newslab.train import train

TOPICS = (["goal", "match", "league", "coach"], ["market", "shares", "profit", "bank"], ["rocket", "chip", "software"])


def topic_rows(per_class: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(words, 6)) for words in TOPICS for _ in range(per_class)]
    return texts, np.repeat(np.arange(len(TOPICS)), per_class)


def test_a_rows_probabilities_come_from_a_teacher_that_never_saw_it() -> None:
    """A sports text labelled business, with words of its own: a teacher fitted on it learns its label from its own
    words; the out-of-fold teacher, fitted without it, calls it sports."""
    texts, labels = topic_rows(20)
    texts.append("goal match league coach zzqx zzqy zzqz")
    labels = np.append(labels, 1)
    oof = out_of_fold_probabilities(texts, labels, 3)
    assert oof[-1].argmax() == 0
    # the same features fitted on every row, this row included: it follows its (wrong) label
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(**teacher_mod.VECTORIZER)
    x = vectorizer.fit_transform(texts)
    in_fold = LogisticRegression(C=teacher_mod.C, max_iter=2000).fit(x, labels).predict_proba(x[-1])
    assert in_fold.argmax() == 1


@settings(max_examples=8, deadline=None)
@given(per_class=st.integers(2, 12), classes=st.integers(2, 3), extra=st.integers(0, 2), seed=st.integers(0, 99))
def test_probabilities_have_a_row_per_training_row_and_sum_to_one(
    per_class: int, classes: int, extra: int, seed: int
) -> None:
    """Any class sizes of two rows or more (fewer folds than 5 when a class is smaller); classes beyond the
    labels seen (num_classes > present) get probability 0."""
    texts, labels = topic_rows(per_class, seed)
    keep = labels < classes
    texts, labels = [t for t, k in zip(texts, keep) if k], labels[keep]
    probs = out_of_fold_probabilities(texts, labels, classes + extra)
    assert probs.shape == (len(texts), classes + extra)
    assert np.allclose(probs.sum(1), 1) and (probs >= 0).all()
    assert (probs[:, classes:] == 0).all()


def test_a_class_of_one_row_is_refused_naming_the_flag() -> None:
    texts, labels = topic_rows(5)
    with pytest.raises(ConfigError, match="--distill"):
        out_of_fold_probabilities(texts[:11], labels[:11], 3)  # class 2 keeps 1 row


def test_the_teacher_is_cached_and_a_damaged_cache_is_refitted(
    tiny_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split = load(tiny_config).train
    messages: list[str] = []
    first = teacher_probabilities(split, 4, tmp_path, messages.append)
    (path,) = tmp_path.glob("teacher-*.safetensors")
    monkeypatch.setattr(teacher_mod, "out_of_fold_probabilities", lambda *a: pytest.fail("refitted"))
    assert torch.equal(teacher_probabilities(split, 4, tmp_path, messages.append), first)
    path.write_bytes(b"not safetensors")
    monkeypatch.undo()
    again = teacher_probabilities(split, 4, tmp_path, messages.append)
    assert torch.equal(again, first)
    assert any(str(path) in m and "damaged" in m for m in messages)
    relabelled = type(split)(split.ids, split.offsets, split.labels.flip(0), split.texts)
    assert teacher_mod.cache_key(relabelled, 4) != teacher_mod.cache_key(split, 4)


def test_distilled_training_fits_its_teacher_on_the_training_rows_only(
    tiny_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted: list[list[str]] = []
    real = teacher_mod.out_of_fold_probabilities
    monkeypatch.setattr(teacher_mod, "out_of_fold_probabilities", lambda t, *a: fitted.append(t) or real(t, *a))
    config = tiny_config.replace(distill=0.5, token_dropout=0.25)
    result = train(config, log=None)
    dataset = load(config)
    assert result.status == "completed"
    assert fitted == [dataset.train.texts]
    assert len(list(cache_dir(config.execution.out_dir).glob("teacher-*.safetensors"))) == 1
