"""The distillation teacher of `--distill`: TF-IDF + logistic-regression class probabilities of the training rows.

Each training row's probabilities come from a model fitted on the other folds, never on the row itself: a
teacher scored on its own training rows is near-certain and teaches nothing but the label. Only the
training split is fitted or scored; validation and test rows never reach the teacher. The probabilities
are cached in the data cache folder (safetensors, never pickled), keyed by the training texts, labels and
the teacher's settings; a damaged entry is said in one line and refitted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .data import EncodedSplit
from .errors import ConfigError
from .files import atomic_write, exclusive_lock

# word 1–2-grams, log-scaled counts (a word said five times is not five times the evidence); min_df 1: on
# the stand-in min_df 2 costs the SVM ~0.5 pts of test accuracy and saves ~1 s. Also the classical baselines'.
VECTORIZER = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1}
FOLDS = 5  # fewer when a class has fewer training rows
C = 10.0  # multinomial logistic regression; its out-of-fold accuracy on the stand-in: 86.4-87.1% (6 splits)
CACHE_VERSION = 1


def out_of_fold_probabilities(texts: list[str], labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, num_classes) class probabilities, row i's from a model fitted on the folds without row i."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels)
    folds = min(FOLDS, int(counts[counts > 0].min()))  # stratified: every fold holds some rows of every class
    if folds < 2:
        raise ConfigError("--distill: a class has a single training row, so no teacher can be fitted without it")
    probs = np.zeros((len(texts), num_classes))
    for fitted, held in StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, labels):
        vectorizer = TfidfVectorizer(**VECTORIZER)  # vocabulary and idf of the fitted folds only
        x = vectorizer.fit_transform([texts[i] for i in fitted])
        model = LogisticRegression(C=C, max_iter=2000).fit(x, labels[fitted])
        probs[np.ix_(held, model.classes_)] = model.predict_proba(vectorizer.transform([texts[i] for i in held]))
    return probs


def cache_key(split: EncodedSplit, num_classes: int) -> str:
    import sklearn

    settings = [CACHE_VERSION, VECTORIZER, FOLDS, C, num_classes, sklearn.__version__]
    digest = hashlib.sha256(json.dumps(settings).encode())
    digest.update(split.labels.numpy().tobytes())
    for text in split.texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


def teacher_probabilities(
    split: EncodedSplit, num_classes: int, cache: Path | None, log: Callable[[str], None]
) -> torch.Tensor:
    """The training split's out-of-fold teacher probabilities (N, num_classes), float32, from the cache when there."""
    from safetensors import SafetensorError
    from safetensors.torch import save

    if cache is None:
        return _fit(split, num_classes, log)
    path = cache / f"teacher-{cache_key(split, num_classes)}.safetensors"
    with exclusive_lock(path.with_suffix(".lock")):  # study workers starting together fit it once
        try:
            cached = _read(path, (len(split.labels), num_classes))
            if cached is not None:
                return cached
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            log(f"newslab: teacher cache {path} is damaged ({type(exc).__name__}: {exc}); refitting it")
        probs = _fit(split, num_classes, log)
        blob = save({"probs": probs.contiguous()})
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))
    return probs


def _fit(split: EncodedSplit, num_classes: int, log: Callable[[str], None]) -> torch.Tensor:
    log(f"Fitting the distillation teacher ({FOLDS} folds of TF-IDF + logistic regression) ...")
    probs = out_of_fold_probabilities(split.texts, split.labels.numpy(), num_classes)
    return torch.tensor(probs, dtype=torch.float32)


def _read(path: Path, shape: tuple[int, int]) -> torch.Tensor | None:
    """The cached probabilities; None when there is no file; ValueError when it holds anything else."""
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    probs = load_file(path)["probs"]
    if probs.dtype != torch.float32 or tuple(probs.shape) != shape:
        raise ValueError(f"{probs.dtype} probabilities of shape {tuple(probs.shape)}, not float32 {shape}")
    if not bool((probs >= 0).all()) or not torch.allclose(probs.sum(1), torch.ones(len(probs))):
        raise ValueError("rows that are not probability distributions")
    return probs
