from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import torch

from conftest import load, make_data_dir, write_rows
from newslab import data
from newslab.config import RunConfig
from newslab.data import DataError
from newslab.tokenization import UNK_ID, encode_chunks, load_tokenizer, train_tokenizer


# ----------------------------------------------------------------------- strict CSV
@pytest.mark.parametrize(
    "content, message",
    [
        ('"1","a","b"\n"2","c"\n', ":2: expected 3 fields"),
        ('"1","a","b"\n"1","c","d"\n"5","e","f"\n', ":3: class '5' is not an integer in 1..4"),
        ('"x","a","b"\n', ":1: class 'x'"),
        ('"1","a","b"\n"2"," "," "\n', ":2: empty text"),
        ('"1","a","b"\n"2","a\n', ":2: malformed CSV"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "train.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        data.read_split(path, num_classes=4)
    assert str(path) in str(err.value) and message in str(err.value)


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_bytes(b'"1","ok","fine"\n"2","bad \xff byte","x"\n')
    with pytest.raises(DataError, match=r"test\.csv:2: bytes that are not UTF-8"):
        data.read_split(path, num_classes=4)


def test_every_row_is_kept(data_dir: Path) -> None:
    split = data.read_split(data_dir / "train.csv", 4)
    assert len(split.texts) == sum(1 for _ in open(data_dir / "train.csv")) == 240
    assert sorted(set(split.labels)) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("Sprint #39;s deal", "Sprint's deal"),
        ("costs  #36;34 million", "costs $34 million"),
        ("a \\$500,000 prize", "a $500,000 prize"),
        ("line one\\line two", "line one line two"),
        ("he said  quot;no quot;", 'he said "no"'),
        ('Medtronic &lt;A HREF="http://x"&gt;MDT.N&lt;/A&gt; rose', "Medtronic MDT.N rose"),
        ("photo &lt;i&gt;gallery&lt;/i&gt;", "photo gallery"),
        ("AT amp;T", "AT&T"),
        ("war  #151; again", "war \u2014 again"),
    ],
)
def test_normalization(raw: str, clean: str) -> None:
    assert data.normalize_text(raw) == clean


def test_normalization_can_be_switched_off(tmp_path: Path) -> None:
    write_rows(tmp_path / "t.csv", [(1, "Sprint #39;s", "deal")])
    assert "#39;" in data.read_split(tmp_path / "t.csv", 4, normalize=False).texts[0]
    assert "#39;" not in data.read_split(tmp_path / "t.csv", 4, normalize=True).texts[0]


# ----------------------------------------------------------------------- splits
def test_validation_split_is_stratified_and_seeded() -> None:
    labels = [i % 4 for i in range(400)]
    rest, held = data.stratified_indices(labels, 0.05, seed=3)
    assert sorted(rest + held) == list(range(400))
    assert [sum(labels[i] == c for i in held) for c in range(4)] == [5, 5, 5, 5]
    assert data.stratified_indices(labels, 0.05, seed=3) == (rest, held)
    assert data.stratified_indices(labels, 0.05, seed=4)[1] != held


# ----------------------------------------------------------------------- tokenizer
def test_tokenizer_sees_only_the_training_split(tiny_config: RunConfig, data_dir: Path) -> None:
    rows = [(1, "zebraword", "only in test")]  # a word nowhere in train.csv
    write_rows(data_dir / "test.csv", rows + [(2, "striker", "league")])
    ds = load(tiny_config.replace(tokenizer="word"))
    vocab = {ds.tokenizer.id_to_token(i) for i in range(ds.tokenizer.vocab_size)}
    assert "zebraword" not in vocab and "striker" in vocab
    assert ds.test.row(0, 128)[0].item() == UNK_ID
    held_out = set(" ".join(ds.val.texts).lower().split()) - set(" ".join(ds.train.texts).lower().split())
    assert not (held_out & set(vocab))  # validation-only words are unknown too


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "word"])
def test_every_tokenizer_round_trips_known_words(kind: str) -> None:
    texts = ["the striker scored for the league!", "profit, and shares rose"] * 20
    tok = train_tokenizer(texts, kind, vocab_size=300, min_freq=1)
    ids = tok.encode_batch(["The striker, profit!"])[0]
    assert UNK_ID not in ids and tok.hf.decode(ids).replace(" ##", "").startswith("the striker")
    assert load_tokenizer(tok.to_json()).encode_batch(["The striker, profit!"])[0] == ids


def test_default_tokenizer_training_is_deterministic(data_dir: Path) -> None:
    """The README's reason for the word-level default: retraining gives the same ids (WordPiece's does not)."""
    texts = data.read_split(data_dir / "train.csv", 4).texts
    defaults = RunConfig().data
    kind, size, min_freq = defaults.tokenizer, defaults.vocab_size, defaults.min_freq
    trained = {train_tokenizer(texts, kind, 200, 1).to_json() for _ in range(5)}
    trained_default = {train_tokenizer(texts, kind, size, min_freq).to_json() for _ in range(5)}
    assert len(trained) == 1 and len(trained_default) == 1


def test_empty_encoding_becomes_unknown() -> None:
    tok = train_tokenizer(["alpha beta"] * 5, "word", 50, 1)
    assert next(encode_chunks(tok, ["", "alpha"])) == [[UNK_ID], [tok.hf.token_to_id("alpha")]]


# ----------------------------------------------------------------------- cache
def test_cache_is_reused_and_invalidated(tiny_config: RunConfig, data_dir: Path, monkeypatch) -> None:
    builds = []
    real_build = data._build_dataset
    monkeypatch.setattr(data, "_build_dataset", lambda *a: builds.append(1) or real_build(*a))
    first = load(tiny_config)
    second = load(tiny_config)
    assert len(builds) == 1 and torch.equal(first.train.ids, second.train.ids)
    load(tiny_config.replace(vocab_size=150))  # a tokenizer setting
    assert len(builds) == 2
    with open(data_dir / "train.csv", "a") as fh:  # a changed file
        fh.write('"1","new row","about the minister"\n')
    load(tiny_config)
    assert len(builds) == 3


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip_label", "manifest"])
def test_a_damaged_cache_is_reported_and_rebuilt(tiny_config: RunConfig, damage: str, capsys) -> None:
    first = load(tiny_config)
    manifest = Path(first.info["cache_file"])
    tensors = manifest.with_suffix(".safetensors")
    if damage == "truncate":
        tensors.write_bytes(tensors.read_bytes()[:100])
    elif damage == "garbage":
        tensors.write_bytes(b"\x80\x04 not a tensor file" * 10)
    elif damage == "flip_label":  # the same size, one label byte changed: only a checksum sees it
        raw = bytearray(tensors.read_bytes())
        raw[-1] ^= 1
        tensors.write_bytes(bytes(raw))
    else:
        manifest.write_text(manifest.read_text()[:-20])
    second = load(tiny_config)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is damaged" in err and "rebuilding it" in err
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(first, name).labels, getattr(second, name).labels)
        assert torch.equal(getattr(first, name).ids, getattr(second, name).ids)
    load(tiny_config)
    assert capsys.readouterr().err == ""  # the rebuilt entry is trusted again


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/newslab-test-cache-pwned-marker")


@pytest.mark.parametrize("forgery", ["pickle", "out_of_range"])
def test_a_forged_cache_never_runs_code_nor_feeds_training(tiny_config: RunConfig, forgery: str, capsys) -> None:
    """Whoever can write the cache can also recompute its checksums: the content itself must be safe."""
    import pickle

    from safetensors.torch import load_file, save

    MARKER.unlink(missing_ok=True)
    first = load(tiny_config)
    manifest_path = Path(first.info["cache_file"])
    tensors_path = manifest_path.with_suffix(".safetensors")
    if forgery == "pickle":
        tensors_path.write_bytes(pickle.dumps(Exploit()))
    else:  # well-formed tensors whose labels name a class that does not exist
        tensors = load_file(tensors_path)
        tensors["train.labels"] = tensors["train.labels"] + 7
        tensors_path.write_bytes(save(tensors))
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"]["tensors"] = hashlib.sha256(tensors_path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    second = load(tiny_config)
    assert not MARKER.exists()
    assert "is damaged" in capsys.readouterr().err
    assert torch.equal(first.train.labels, second.train.labels)


def test_a_killed_writers_temporary_files_are_cleared(tiny_config: RunConfig) -> None:
    cache = data.cache_dir(tiny_config.execution.out_dir)
    cache.mkdir(parents=True)
    stale, fresh = cache / "dataset-x.safetensors.abc.tmp", cache / "dataset-y.json.def.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))  # two hours old: its writer is gone
    load(tiny_config)
    assert not stale.exists() and fresh.exists()  # a write possibly still in progress is left alone


# ----------------------------------------------------------------------- batching
def test_batches_pad_to_longest_with_true_as_padding(tiny_config: RunConfig) -> None:
    ds = load(tiny_config)
    seen = []
    for batch in data.iterate_batches(ds.train, 16, 8, torch.Generator().manual_seed(0)):
        lengths = (~batch.pad_mask).sum(1)
        assert batch.ids.shape[1] == int(lengths.max()) <= 8  # dynamic padding, truncated at max_len
        assert torch.all(batch.ids[batch.pad_mask] == data.PAD_ID)
        assert torch.all(batch.ids[~batch.pad_mask] != data.PAD_ID)
        for row, i in enumerate(batch.index.tolist()):
            assert torch.equal(batch.ids[row, : lengths[row]], ds.train.row(i, 8).long())
        seen += batch.index.tolist()
    assert sorted(seen) == list(range(len(ds.train)))  # every row once per epoch


def test_training_batches_reshuffle_each_epoch(tiny_config: RunConfig) -> None:
    ds = load(tiny_config)
    gen = torch.Generator().manual_seed(0)
    first = [b.tolist() for b in data.batch_indices(ds.train, 16, 128, gen)]
    second = [b.tolist() for b in data.batch_indices(ds.train, 16, 128, gen)]
    assert first != second


@pytest.mark.realdata
def test_padding_is_at_most_5_percent_on_the_stand_in(stand_in_dir: Path, tmp_path: Path) -> None:
    config = RunConfig.create(data_dir=str(stand_in_dir), out_dir=str(tmp_path))
    ds = load(config)
    ratio = data.padding_ratio(ds.train, 64, config.model.max_len, torch.Generator().manual_seed(0))
    lengths = ds.train.lengths(config.model.max_len)
    random_batches = torch.randperm(len(ds.train)).split(64)
    unbucketed = 1 - lengths.sum().item() / sum(int(lengths[i].max()) * len(i) for i in random_batches)
    print(f"padding ratio at batch 64: bucketed {ratio:.4f}, random batches {unbucketed:.4f}")
    assert ratio <= 0.05 < unbucketed


# ----------------------------------------------------------------------- download
def test_download_checksum_mismatch_deletes_and_fails(tmp_path: Path) -> None:
    source = tmp_path / "src.csv"
    source.write_text('"1","a","b"\n')
    dest = tmp_path / "data" / "train.csv"
    with pytest.raises(DataError, match="md5 .* does not match"):
        data.download(source.as_uri(), dest, md5="0" * 32, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))
    data.download(source.as_uri(), dest, md5=hashlib.md5(source.read_bytes()).hexdigest(), progress=False)
    assert dest.read_bytes() == source.read_bytes()


def test_missing_files_are_fetched_from_the_download_location(tmp_path: Path) -> None:
    mirror = make_data_dir(tmp_path / "mirror")
    (mirror / "classes.txt").unlink()
    target = tmp_path / "fresh"
    data.ensure_data(target, base_url=mirror.as_uri() + "/", progress=False)
    assert (target / "train.csv").read_bytes() == (mirror / "train.csv").read_bytes()
    assert data.read_classes(target / "classes.txt") == list(data.AG_NEWS_CLASSES)


def test_offline_error_names_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        data.ensure_data(tmp_path / "empty", base_url="http://127.0.0.1:9/", progress=False)
    message = str(err.value)
    assert "missing train.csv, test.csv, classes.txt" in message and "--data-dir" in message
    assert "\n" not in message


def test_workers_starting_together_build_one_consistent_cache_entry(tiny_config: RunConfig, tmp_path: Path) -> None:
    """WordPiece training differs run to run: a manifest must never vouch for another process's ids."""
    import subprocess
    import sys

    config = tiny_config.replace(tokenizer="wordpiece")
    script = (
        "import sys; from newslab.config import RunConfig; from newslab.data import cache_dir, load_dataset; "
        "import json; c = RunConfig.from_dict(json.loads(sys.argv[1])); "
        "load_dataset(c.data, cache_dir(c.execution.out_dir), progress=False)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(config.to_dict())], stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert all("damaged" not in p.stderr.read() for p in procs)
    ds = load(config)
    assert len(list(data.cache_dir(config.execution.out_dir).glob("dataset-*.json"))) == 1
    for split in (ds.train, ds.val):
        encoded = [row for chunk in encode_chunks(ds.tokenizer, split.texts) for row in chunk]
        assert [split.row(i, 10_000).tolist() for i in range(len(split))] == encoded
