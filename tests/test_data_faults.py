"""Faults in the user's data folder and data flags (issue "Trust").

Every fault ends in one `NewslabError` line naming the file (and line) or the flag, the CLI prints
it as `newslab: error: ...` and exits 2, and nothing in the data folder is written or changed.
"""

from __future__ import annotations

import builtins
import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from conftest import CLASSES, load, make_data_dir, write_rows
from newslab import data
from newslab.cli import main
from newslab.config import DataConfig, RunConfig
from newslab.data import DataError
from newslab.errors import ConfigError, NewslabError
from newslab.tokenization import SPECIAL_TOKENS

BOM = b"\xef\xbb\xbf"


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under folder (hidden ones too): its bytes (None for a folder) and modification time."""
    if not folder.exists():
        return {}
    entries = {}
    for path in sorted(folder.rglob("*")):
        content = None if path.is_dir() else path.read_bytes()
        entries[str(path.relative_to(folder))] = (content, path.stat().st_mtime_ns)
    return entries


def config_for(folder: Path, tmp_path: Path, **settings_) -> RunConfig:
    flat = dict(vocab_size=200, min_freq=1, val_fraction=0.2, data_dir=str(folder), out_dir=str(tmp_path / "out"))
    return RunConfig.create(**{**flat, **settings_})


def one_line_error(call, kind: type[NewslabError] = DataError) -> str:
    with pytest.raises(NewslabError) as err:
        call()
    assert type(err.value) is kind
    message = str(err.value)
    assert message and "\n" not in message and "\r" not in message
    return message


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test of a user's folder must never reach the network: any download fails the test."""

    def refuse(url: str, *args, **kwargs) -> None:
        raise AssertionError(f"unexpected download of {url}")

    monkeypatch.setattr(data, "download", refuse)


@contextmanager
def denied_reading(denied: Path) -> Iterator[None]:
    """Reading `denied` fails as `chmod 000` makes it fail for a non-root user (tests run as root)."""
    real_open, real_read_bytes = builtins.open, Path.read_bytes

    def check(path) -> None:
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            check(file)
        return real_open(file, *args, **kwargs)

    def guarded_read_bytes(self: Path) -> bytes:
        check(self)
        return real_read_bytes(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", guarded_open)
        patch.setattr(Path, "read_bytes", guarded_read_bytes)
        yield


# ------------------------------------------------------------------ 1. unreadable files
@pytest.mark.parametrize("name", data.DATA_FILES)
def test_an_unreadable_data_file_is_one_line(name: str, data_dir: Path, tmp_path: Path, no_download) -> None:
    before = snapshot(data_dir)
    with denied_reading(data_dir / name):
        message = one_line_error(lambda: load(config_for(data_dir, tmp_path)))
    assert message == f"{data_dir / name}: cannot read (Permission denied)"
    assert snapshot(data_dir) == before


def test_an_unreadable_csv_is_one_line_when_read_alone(data_dir: Path) -> None:
    """`newslab evaluate --csv FILE` reads a CSV with read_split only."""
    with denied_reading(data_dir / "test.csv"):
        message = one_line_error(lambda: data.read_split(data_dir / "test.csv", 4))
    assert message == f"{data_dir / 'test.csv'}: cannot read (Permission denied)"


@pytest.mark.parametrize("name", data.DATA_FILES)
def test_a_data_path_that_is_a_folder_is_one_line(name: str, data_dir: Path, tmp_path: Path, no_download) -> None:
    (data_dir / name).unlink()
    (data_dir / name).mkdir()
    before = snapshot(data_dir)
    message = one_line_error(lambda: load(config_for(data_dir, tmp_path)))
    assert message == f"{data_dir / name}: cannot read (Is a directory)"
    assert snapshot(data_dir) == before


def test_a_dangling_link_is_one_line(data_dir: Path, tmp_path: Path, no_download) -> None:
    (data_dir / "test.csv").unlink()
    (data_dir / "test.csv").symlink_to(tmp_path / "gone.csv")
    message = one_line_error(lambda: load(config_for(data_dir, tmp_path)))
    assert message == f"{data_dir / 'test.csv'}: cannot read (No such file or directory)"


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path, no_download) -> None:
    path = tmp_path / "data.csv"
    path.write_text('"1","a","b"\n')
    message = one_line_error(lambda: load(config_for(path, tmp_path)))
    assert message.startswith(f"{path}: not a folder; --data-dir / NEWSLAB_DATA_DIR must name one with train.csv")
    assert path.read_text() == '"1","a","b"\n'


def test_an_unreadable_data_dir_is_one_line(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):
        if Path(path).parent == data_dir:
            raise PermissionError(13, "Permission denied", str(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    message = one_line_error(lambda: data.ensure_data(data_dir, progress=False))
    assert message == f"{data_dir / 'train.csv'}: cannot read (Permission denied)"


# ------------------------------------------------------- 2. partial folders are never completed
@pytest.mark.parametrize(
    "present",
    [("train.csv", "test.csv"), ("train.csv",), ("test.csv", "classes.txt"), ("classes.txt",)],
)
def test_a_partial_folder_is_refused_and_left_untouched(
    present: tuple[str, ...], data_dir: Path, tmp_path: Path, no_download
) -> None:
    missing = [name for name in data.DATA_FILES if name not in present]
    for name in missing:
        (data_dir / name).unlink()
    before = snapshot(data_dir)
    message = one_line_error(lambda: load(config_for(data_dir, tmp_path)))
    assert message == (
        f"{data_dir}: missing {', '.join(missing)} (it has {', '.join(present)}); "
        f"add {'it' if len(missing) == 1 else 'them'}: newslab downloads AG News only into a folder "
        f"that holds none of train.csv, test.csv, classes.txt"
    )
    assert snapshot(data_dir) == before
    assert not (data_dir / "classes.txt").exists() or "classes.txt" in present  # no AG News names written


def test_an_empty_folder_gets_the_download_with_its_classes(tmp_path: Path) -> None:
    mirror = make_data_dir(tmp_path / "mirror")
    (mirror / "classes.txt").unlink()
    target = tmp_path / "empty"
    target.mkdir()
    data.ensure_data(target, base_url=mirror.as_uri() + "/", progress=False)
    assert sorted(p.name for p in target.iterdir()) == sorted(data.DATA_FILES)  # no staging folder left
    assert (target / "test.csv").read_bytes() == (mirror / "test.csv").read_bytes()
    assert data.read_classes(target / "classes.txt") == list(data.AG_NEWS_CLASSES)


@pytest.mark.parametrize("exists", [True, False])
def test_a_failed_download_leaves_nothing(tmp_path: Path, exists: bool) -> None:
    """train.csv arrives, test.csv fails: no partial dataset (it would be refused from then on)."""
    mirror = make_data_dir(tmp_path / "mirror")
    (mirror / "test.csv").unlink()
    target = tmp_path / "target"
    if exists:
        target.mkdir()
    message = one_line_error(lambda: data.ensure_data(target, base_url=mirror.as_uri() + "/", progress=False))
    assert message.startswith(f"{target}: missing train.csv, test.csv, classes.txt and the download from")
    assert snapshot(target) == {} and target.exists() == exists


# ------------------------------------------------------------------ 3. classes
def test_single_class_training_data_is_refused(data_dir: Path, tmp_path: Path, no_download) -> None:
    write_rows(data_dir / "train.csv", [(2, "striker", "league season")] * 20)
    before = snapshot(data_dir)
    message = one_line_error(lambda: load(config_for(data_dir, tmp_path)))
    assert message == f"{data_dir / 'train.csv'}: every row is class 2 (Sports); a classifier needs at least 2 classes"
    assert snapshot(data_dir) == before


def test_classes_txt_with_one_name_is_refused(data_dir: Path, tmp_path: Path, no_download) -> None:
    (data_dir / "classes.txt").write_text("Only\n", encoding="utf-8")
    message = one_line_error(lambda: load(config_for(data_dir, tmp_path)))
    assert message == f"{data_dir / 'classes.txt'}: expected at least 2 class names, one per line; found 1"


def test_a_class_with_a_single_row_is_refused(data_dir: Path, tmp_path: Path, no_download) -> None:
    rows = [(1, "minister", "election")] * 5 + [(2, "striker", "league")] * 5 + [(4, "chip", "software")]
    write_rows(data_dir / "train.csv", rows)
    message = one_line_error(lambda: load(config_for(data_dir, tmp_path)))
    assert message == (
        f"{data_dir / 'train.csv'}: class 4 (Sci/Tech) has a single row, which the validation split would take, "
        f"leaving none to train on; every class needs at least 2 rows"
    )


def test_test_labels_beyond_the_training_classes_are_allowed(data_dir: Path, tmp_path: Path) -> None:
    """classes.txt names 4 classes, train.csv uses 1-2, test.csv 3-4: allowed (every test row is a miss)."""
    write_rows(data_dir / "train.csv", [(1, "minister", "election")] * 10 + [(2, "striker", "league")] * 10)
    write_rows(data_dir / "test.csv", [(3, "profit", "shares")] * 3 + [(4, "chip", "software")] * 3)
    ds = load(config_for(data_dir, tmp_path))
    assert ds.num_classes == 4
    assert sorted(set(ds.train.labels.tolist())) == [0, 1] and sorted(set(ds.test.labels.tolist())) == [2, 3]


def test_only_ascii_digits_are_classes(tmp_path: Path) -> None:
    """str.isdigit() accepts '²', which int() refuses: a crash before, a parse error now."""
    path = tmp_path / "train.csv"
    path.write_text('"1","a","b"\n"²","c","d"\n', encoding="utf-8")
    message = one_line_error(lambda: data.read_split(path, 4))
    assert message == f"{path}:2: class '²' is not an integer in 1..4"


# ------------------------------------------------------------------ 4. train limit, empty train split
@pytest.mark.parametrize("limit", [1, 3])
def test_a_train_limit_below_the_class_count_is_refused(
    limit: int, data_dir: Path, tmp_path: Path, no_download
) -> None:
    before = snapshot(data_dir)
    message = one_line_error(lambda: load(config_for(data_dir, tmp_path, train_limit=limit)))
    assert message == (
        f"--train-limit {limit} is fewer than the 4 classes of {data_dir / 'train.csv'}; "
        f"a stratified subset needs at least one row of each: use --train-limit 4 or more"
    )
    assert snapshot(data_dir) == before


@pytest.mark.parametrize("limit", [4, 5, 7, 101, 191, 192, 10_000])
def test_a_train_limit_is_exact_and_keeps_every_class(limit: int, data_dir: Path, tmp_path: Path) -> None:
    ds = load(config_for(data_dir, tmp_path, train_limit=limit))
    assert len(ds.val) == 48 and len(ds.train) == min(limit, 192)  # 240 rows, 20% held per class
    assert sorted(set(ds.train.labels.tolist())) == [0, 1, 2, 3]


def test_stratified_subset_keeps_proportions() -> None:
    labels = [0] * 60 + [1] * 30 + [2] * 9 + [3]
    subset = data.stratified_subset(labels, 20, seed=0)
    counts = [sum(labels[i] == c for i in subset) for c in range(4)]
    assert len(subset) == 20 and counts == [12, 6, 1, 1]  # 12, 6, 1.8, 0.2: the last class lifted to 1
    assert data.stratified_subset(labels, 20, seed=0) == subset
    assert data.stratified_subset(labels, 100, seed=0) == list(range(100))


def test_a_train_file_too_small_for_a_training_split_is_refused(data_dir: Path, tmp_path: Path, no_download) -> None:
    write_rows(data_dir / "train.csv", [(1, "minister", "election"), (2, "striker", "league")])
    message = one_line_error(lambda: load(config_for(data_dir, tmp_path)))
    assert message == (
        f"{data_dir / 'train.csv'}: classes 1 (World), 2 (Sports) have a single row, which the validation split "
        f"would take, leaving none to train on; every class needs at least 2 rows"
    )


# ------------------------------------------------------------------ 5. vocabulary
@pytest.mark.parametrize("size", [1, 2])
def test_a_vocab_size_without_room_for_a_word_is_refused(size: int) -> None:
    expected = f"--vocab-size must be at least 3 ([PAD], [UNK] and one word), got {size}"
    assert one_line_error(lambda: DataConfig(vocab_size=size), ConfigError) == expected
    assert one_line_error(lambda: RunConfig.create(vocab_size=size), ConfigError) == expected


def test_the_smallest_vocab_size_trains(data_dir: Path, tmp_path: Path) -> None:
    ds = load(config_for(data_dir, tmp_path, vocab_size=len(SPECIAL_TOKENS) + 1))
    assert ds.vocab_size == 3 and len(ds.train) == 192


def test_a_vocabulary_of_only_special_tokens_is_refused(data_dir: Path, tmp_path: Path, no_download) -> None:
    before = snapshot(data_dir)
    message = one_line_error(lambda: load(config_for(data_dir, tmp_path, min_freq=100_000)))
    assert message == (
        f"{data_dir / 'train.csv'}: no word occurs --min-freq 100000 times in the 192 training rows, so the "
        f"vocabulary (--vocab-size 200) would hold only [PAD] and [UNK]; lower --min-freq"
    )
    assert snapshot(data_dir) == before


# ------------------------------------------------------------------ 6. byte order mark
def test_a_bom_is_not_data(tmp_path: Path) -> None:
    plain, marked = make_data_dir(tmp_path / "plain"), make_data_dir(tmp_path / "marked")
    for name in data.DATA_FILES:
        (marked / name).write_bytes(BOM + (plain / name).read_bytes())
    unquoted = tmp_path / "unquoted.csv"  # the BOM right before an unquoted class
    unquoted.write_bytes(BOM + b'3,"profit","shares"\n1,"minister","election"\n')
    assert data.read_split(unquoted, 4) == data.Split(["profit . shares", "minister . election"], [2, 0])
    for name in ("train.csv", "test.csv"):
        assert data.read_split(marked / name, 4) == data.read_split(plain / name, 4)
    assert data.read_classes(marked / "classes.txt") == data.read_classes(plain / "classes.txt") == CLASSES
    a = load(config_for(plain, tmp_path))
    b = load(config_for(marked, tmp_path))
    for name in data.SPLITS:
        assert torch.equal(getattr(a, name).ids, getattr(b, name).ids)
        assert torch.equal(getattr(a, name).labels, getattr(b, name).labels)
    assert a.class_names == b.class_names and a.tokenizer.to_json() == b.tokenizer.to_json()


def test_a_bom_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(BOM + b'"1","a","b"\n"9","c","d"\n')
    assert one_line_error(lambda: data.read_split(path, 4)) == f"{path}:2: class '9' is not an integer in 1..4"


# ------------------------------------------------------------------ the CLI
@pytest.mark.parametrize(
    "fault, flags, expected",
    [
        ("unreadable", [], "train.csv: cannot read (Permission denied)"),
        ("no_classes", [], "missing classes.txt (it has train.csv, test.csv)"),
        ("single_class", [], "train.csv: every row is class 1 (World)"),
        (None, ["--train-limit", "1"], "--train-limit 1 is fewer than the 4 classes"),
        (None, ["--vocab-size", "1"], "--vocab-size must be at least 3"),
        (None, ["--min-freq", "100000"], "no word occurs --min-freq 100000 times"),
    ],
)
def test_the_cli_prints_one_line_and_exits_2(
    fault, flags, expected, data_dir: Path, tmp_path: Path, capsys, no_download
) -> None:
    if fault == "no_classes":
        (data_dir / "classes.txt").unlink()
    elif fault == "single_class":
        write_rows(data_dir / "train.csv", [(1, "minister", "election")] * 10)
    before = snapshot(data_dir)
    argv = ["train", "--data-dir", str(data_dir), "--out-dir", str(tmp_path / "out"), "--epochs", "1", *flags]
    with denied_reading(data_dir / "train.csv") if fault == "unreadable" else nullcontext():
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("newslab: error: ") and expected in err and err.count("\n") == 1
    assert snapshot(data_dir) == before


# ------------------------------------------------------------------ 7. property
@settings(max_examples=25, deadline=None)
@given(
    num_classes=st.integers(1, 5),
    # 0 and 1 row (refused: a class the validation split empties) 1 in 10 each; else 2..8 rows
    rows_per_class=st.lists(st.integers(0, 19).map(lambda n: n if n < 2 else 2 + n % 7), min_size=5, max_size=5),
    val_fraction=st.floats(0.01, 0.49),
    train_limit=st.one_of(st.none(), st.integers(1, 16)),
    seed=st.integers(0, 2**16),
)
def test_load_dataset_splits_add_up_or_refuse_in_one_line(
    num_classes: int, rows_per_class: list[int], val_fraction: float, train_limit: int | None, seed: int
) -> None:
    rng = random.Random(seed)
    counts = rows_per_class[:num_classes]
    rows = [
        (c + 1, f"{rng.choice(['alpha', 'beta', 'gamma'])} {c}", f"delta word{rng.randrange(9)}")
        for c, n in enumerate(counts)
        for _ in range(n)
    ]
    rng.shuffle(rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        write_rows(folder / "train.csv", rows)
        write_rows(folder / "test.csv", [(rng.randint(1, num_classes), "alpha", "beta") for _ in range(3)])
        (folder / "classes.txt").write_text("".join(f"class{c}\n" for c in range(num_classes)), encoding="utf-8")
        before = snapshot(folder)
        config = DataConfig(
            data_dir=str(folder), vocab_size=50, min_freq=1, val_fraction=val_fraction, train_limit=train_limit
        )
        present = {c: n for c, n in enumerate(counts) if n}
        refused = (
            num_classes < 2
            or len(present) < 2
            or min(present.values()) < 2
            or (train_limit is not None and train_limit < len(present))
        )
        try:
            ds = data.load_dataset(config, Path(tmp) / "cache", progress=False, log=lambda _msg: None)
        except NewslabError as exc:
            event("refused")
            message = str(exc)
            assert refused and message and "\n" not in message
            assert str(folder) in message or "--train-limit" in message
        else:
            event("loaded" if train_limit is None or train_limit >= len(rows) - len(ds.val) else "loaded, limited")
            assert not refused
            held = sum(max(1, round(val_fraction * n)) for n in present.values())
            assert len(ds.val) == held and len(ds.test) == 3
            rest = len(rows) - held
            assert len(ds.train) == (rest if train_limit is None else min(train_limit, rest))
            if train_limit is None or train_limit >= rest:
                assert len(ds.train) + len(ds.val) == len(rows)
            assert set(ds.train.labels.tolist()) == set(present) == set(ds.val.labels.tolist())
        assert snapshot(folder) == before
