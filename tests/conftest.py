"""Shared fixtures: small generated AG News-layout datasets, tiny configs, the stand-in data."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest
import torch

from newslab.config import RunConfig
from newslab.data import Dataset, cache_dir, load_dataset

CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
TOPIC_WORDS = [
    ["minister", "election", "embassy", "treaty", "rebels", "parliament", "border", "ceasefire"],
    ["striker", "league", "coach", "season", "tournament", "goalkeeper", "medal", "playoff"],
    ["profit", "shares", "merger", "quarterly", "investors", "earnings", "dividend", "stocks"],
    ["software", "chip", "internet", "satellite", "researchers", "browser", "wireless", "genome"],
]
FILLER = ["the", "a", "on", "said", "new", "after", "with", "for", "today", "report", "week", "in", "of"]


def write_rows(path: Path, rows: list[tuple[int, str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)


def synthetic_rows(n_per_class: int, seed: int) -> list[tuple[int, str, str]]:
    """Rows whose class is readable from topic words mixed into filler, of varied length."""
    rng = random.Random(seed)
    rows = []
    for label, words in enumerate(TOPIC_WORDS, start=1):
        for _ in range(n_per_class):
            n = rng.randint(4, 30)
            text = [rng.choice(words) if rng.random() < 0.4 else rng.choice(FILLER) for _ in range(n)]
            rows.append((label, " ".join(text[:3]).title(), " ".join(text[3:] or ["news"])))
    rng.shuffle(rows)
    return rows


def make_data_dir(root: Path, n_train_per_class: int = 60, n_test_per_class: int = 15, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_rows(root / "train.csv", synthetic_rows(n_train_per_class, seed))
    write_rows(root / "test.csv", synthetic_rows(n_test_per_class, seed + 1))
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    return root


def tiny_flags(data_dir: Path, out_dir: Path) -> list[str]:
    """`newslab train` flags of a seconds-long run on a generated data folder."""
    tiny = "--epochs 2 --batch-size 16 --lr 3e-3 --embed-dim 16 --num-heads 2 --num-layers 1 --vocab-size 200"
    return [
        *tiny.split(),
        "--min-freq",
        "1",
        "--val-fraction",
        "0.2",
        "--data-dir",
        str(data_dir),
        "--out-dir",
        str(out_dir),
        "--threads",
        "1",
    ]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return make_data_dir(tmp_path / "data")


@pytest.fixture
def tiny_config(tmp_path: Path, data_dir: Path) -> RunConfig:
    return RunConfig.create(
        epochs=2,
        batch_size=16,
        lr=3e-3,
        embed_dim=16,
        num_heads=2,
        num_layers=1,
        vocab_size=200,
        min_freq=1,
        val_fraction=0.2,
        data_dir=str(data_dir),
        out_dir=str(tmp_path / "out"),
        threads=1,
        warmup=0.0,
    )


def load(config: RunConfig) -> Dataset:
    """The dataset of a run config, through the cache a run of it would use."""
    return load_dataset(config.data, cache_dir(config.execution.out_dir), progress=False)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEWSLAB_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def stand_in_dir() -> Path:
    """The AG News stand-in, from NEWSLAB_DATA_DIR. Under CI a missing folder fails, never skips."""
    value = os.environ.get("NEWSLAB_DATA_DIR")
    path = Path(value) if value else None
    if path is None or not (path / "train.csv").is_file():
        message = f"real-data test needs NEWSLAB_DATA_DIR pointing at the AG News stand-in (got {value!r})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
