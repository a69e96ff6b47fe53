"""AG News-layout data: read and validate, download, normalize, tokenize, cache, batch.

A data folder holds `train.csv`, `test.csv` (CSV "class","title","description", no header,
classes 1..K) and `classes.txt` (K names, one per line). Any Zhang et al. (2015) dataset in
this layout works; the class count comes from classes.txt.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from .config import NewslabError, RunConfig

DATA_FILES = ("train.csv", "test.csv", "classes.txt")
# Where torchtext's AG_NEWS loader downloads from, with its checksums.
AG_NEWS_BASE_URL = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"
AG_NEWS_MD5 = {"train.csv": "b1a00f826fdfbd249f79597b59e1dc12", "test.csv": "d52ea96a97a2d943681189a97654912d"}
AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
PAD_ID, UNK_ID = 0, 1
SPECIAL_TOKENS = ["[PAD]", "[UNK]"]
CACHE_VERSION = 1


class DataError(NewslabError):
    pass


# ----------------------------------------------------------------------------- files
def missing_files(data_dir: Path) -> list[str]:
    return [name for name in DATA_FILES if not (data_dir / name).is_file()]


def download(url: str, dest: Path, md5: str | None, progress: bool = True) -> None:
    """Fetch url to dest atomically, with a progress bar; a checksum mismatch deletes it and fails."""
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    tmp = Path(tmp_name)
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress,
                      file=sys.stderr) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if md5 and digest.hexdigest() != md5:
            raise DataError(f"{url}: md5 {digest.hexdigest()} does not match the expected {md5}; download deleted")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_data(data_dir: Path, base_url: str | None = None, progress: bool = True) -> Path:
    """Return data_dir once it holds the three files, downloading official AG News if absent."""
    missing = missing_files(data_dir)
    if not missing:
        return data_dir
    base_url = base_url or os.environ.get("NEWSLAB_DOWNLOAD_URL") or AG_NEWS_BASE_URL
    try:
        for name in (n for n in missing if n != "classes.txt"):
            download(base_url + name, data_dir / name, AG_NEWS_MD5.get(name) if base_url == AG_NEWS_BASE_URL else None,
                     progress)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"{data_dir}: missing {', '.join(missing)} and the download from {base_url} failed ({reason}); "
            f"put the AG News files there, or point --data-dir / NEWSLAB_DATA_DIR at a folder that has them"
        ) from None
    if "classes.txt" in missing:  # the download location has no classes.txt; its classes are AG News'
        (data_dir / "classes.txt").write_text("\n".join(AG_NEWS_CLASSES) + "\n", encoding="utf-8")
    return data_dir


def file_digests(path: Path) -> dict[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            md5.update(chunk)
            sha.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: bytes that are not UTF-8 ({exc.reason})") from None


def read_classes(path: Path) -> list[str]:
    names = [line.strip() for line in _decode(path).splitlines() if line.strip()]
    if len(names) < 2:
        raise DataError(f"{path}: expected at least 2 class names, one per line; found {len(names)}")
    return names


_ENTITY = re.compile(r" ?#(\d+);")
_NAMED = {" quot;": '"', " amp;": "&", " lt;": "<", " gt;": ">"}
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _entity(match: re.Match) -> str:
    code = int(match.group(1))
    return bytes([code]).decode("cp1252", "ignore") if code < 256 else chr(code)  # #151; is cp1252 em dash


def normalize_text(text: str) -> str:
    """Undo AG News' escaping: ' #39;' -> "'", ' #36;' -> '$', ' quot;', '\\' breaks, HTML tags."""
    text = text.replace("\\$", "$").replace("\\", " ")
    text = _ENTITY.sub(_entity, text)
    for escaped, char in _NAMED.items():
        text = text.replace(escaped, char)
    text = _TAG.sub(" ", html.unescape(text))
    return _SPACE.sub(" ", text).strip()


@dataclass
class Split:
    texts: list[str]
    labels: list[int]  # 0-based


def read_split(path: Path, num_classes: int, normalize: bool = True) -> Split:
    """Strictly parse one CSV: every error names the file and line; nothing is dropped."""
    reader = csv.reader(io.StringIO(_decode(path), newline=""), strict=True)
    texts, labels = [], []
    try:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if len(row) != 3:
                raise DataError(f"{where}: expected 3 fields (class, title, description), found {len(row)}")
            label, title, description = row
            if not label.strip().isdigit() or not 1 <= int(label) <= num_classes:
                raise DataError(f"{where}: class {label!r} is not an integer in 1..{num_classes}")
            text = f"{title.strip()} . {description.strip()}" if description.strip() else title.strip()
            if normalize:
                text = normalize_text(text)
            if not text.strip(" ."):
                raise DataError(f"{where}: empty text (title and description are blank)")
            texts.append(text)
            labels.append(int(label) - 1)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    if not texts:
        raise DataError(f"{path}: no rows")
    return Split(texts, labels)


def stratified_indices(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split row indices into (rest, held) with `fraction` of every class held, seeded."""
    gen = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    rest, held = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        order = torch.randperm(len(idx), generator=gen).tolist()
        k = max(1, round(fraction * len(idx)))
        held += [idx[j] for j in order[:k]]
        rest += [idx[j] for j in order[k:]]
    return sorted(rest), sorted(held)


def subset(split: Split, indices: list[int]) -> Split:
    return Split([split.texts[i] for i in indices], [split.labels[i] for i in indices])


# ------------------------------------------------------------------------- tokenizer
def train_tokenizer(texts: list[str], kind: str, vocab_size: int, min_freq: int):
    """A Hugging Face tokenizer fitted on `texts` (the training split only)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_freq,
                                            special_tokens=SPECIAL_TOKENS, show_progress=False)
        tok.decoder = decoders.WordPiece()
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_freq, special_tokens=SPECIAL_TOKENS,
                                      continuing_subword_prefix="##", show_progress=False)
        tok.decoder = decoders.WordPiece()
    else:
        tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_freq,
                                            special_tokens=SPECIAL_TOKENS, show_progress=False)
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    assert tok.token_to_id("[PAD]") == PAD_ID and tok.token_to_id("[UNK]") == UNK_ID
    return tok


ENCODE_CHUNK = 4096  # texts per encode_batch: HF Encoding objects (offsets, strings) cost ~200 bytes a token


def encode_chunks(tokenizer, texts: list[str]) -> Iterator[list[list[int]]]:
    """Token ids per text, a chunk of texts at a time (so the Encoding objects of a 120k-row split
    never live at once); a text that normalizes to nothing becomes [UNK] (never an empty row)."""
    for start in range(0, len(texts), ENCODE_CHUNK):
        yield [enc.ids or [UNK_ID] for enc in tokenizer.encode_batch(texts[start:start + ENCODE_CHUNK],
                                                                     add_special_tokens=False)]


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    return [row for chunk in encode_chunks(tokenizer, texts) for row in chunk]


@dataclass
class EncodedSplit:
    """Untruncated token ids of every row, flat, with offsets; plus labels and the texts."""

    ids: torch.Tensor  # (total_tokens,) int32
    offsets: torch.Tensor  # (N + 1,) int64
    labels: torch.Tensor  # (N,) int64
    texts: list[str]

    @classmethod
    def build(cls, tokenizer, split: Split) -> "EncodedSplit":
        ids, lengths = [], []
        for rows in encode_chunks(tokenizer, split.texts):
            lengths.append(torch.tensor([len(r) for r in rows], dtype=torch.int64))
            ids.append(torch.tensor([t for r in rows for t in r], dtype=torch.int32))
        lengths_all = torch.cat(lengths) if lengths else torch.zeros(0, dtype=torch.int64)
        offsets = torch.zeros(len(lengths_all) + 1, dtype=torch.int64)
        torch.cumsum(lengths_all, 0, out=offsets[1:])
        return cls(torch.cat(ids) if ids else torch.zeros(0, dtype=torch.int32), offsets,
                   torch.tensor(split.labels, dtype=torch.int64), split.texts)

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self, max_len: int) -> torch.Tensor:
        return (self.offsets[1:] - self.offsets[:-1]).clamp(max=max_len)

    def row(self, i: int, max_len: int) -> torch.Tensor:
        start = int(self.offsets[i])
        return self.ids[start:min(start + max_len, int(self.offsets[i + 1]))]


@dataclass
class Dataset:
    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit
    tokenizer: object
    class_names: list[str]
    info: dict  # files (rows, md5, sha256), tokenizer settings, vocabulary size, cache key

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()


def cache_dir(config: RunConfig) -> Path:
    return Path(os.environ.get("NEWSLAB_CACHE_DIR") or Path(config.out_dir) / "cache")


def load_dataset(config: RunConfig, progress: bool = True) -> Dataset:
    """Read, split, tokenize and encode the data for `config`, through an on-disk cache.

    The cache key covers the three files' contents and every setting that changes the
    encoding, so a changed file or setting re-tokenizes and an unchanged one never does.
    """
    from tokenizers import Tokenizer

    data_dir = ensure_data(config.resolved_data_dir, progress=progress)
    digests = {name: file_digests(data_dir / name) for name in DATA_FILES}
    settings = {k: getattr(config, k) for k in ("tokenizer", "vocab_size", "min_freq", "normalize",
                                                 "val_fraction", "split_seed", "train_limit")}
    key = hashlib.sha256(json.dumps([CACHE_VERSION, digests, settings], sort_keys=True).encode()).hexdigest()[:20]
    path = cache_dir(config) / f"dataset-{key}.pt"
    if path.is_file():
        blob = torch.load(path, weights_only=False)
    else:
        blob = _build_dataset(data_dir, config, digests, settings, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        torch.save(blob, tmp)
        os.replace(tmp, path)  # atomic: concurrent workers never read a half-written cache
    return Dataset(blob["train"], blob["val"], blob["test"], Tokenizer.from_str(blob["tokenizer"]),
                   blob["class_names"], {**blob["info"], "data_dir": str(data_dir), "cache_file": str(path)})


def _build_dataset(data_dir: Path, config: RunConfig, digests: dict, settings: dict, key: str) -> dict:
    class_names = read_classes(data_dir / "classes.txt")
    full = read_split(data_dir / "train.csv", len(class_names), config.normalize)
    test = read_split(data_dir / "test.csv", len(class_names), config.normalize)
    train_idx, val_idx = stratified_indices(full.labels, config.val_fraction, config.split_seed)
    if config.train_limit is not None and config.train_limit < len(train_idx):
        train_labels = [full.labels[i] for i in train_idx]
        keep, _ = stratified_indices(train_labels, 1 - config.train_limit / len(train_idx), config.split_seed)
        train_idx = [train_idx[i] for i in keep]
    train, val = subset(full, train_idx), subset(full, val_idx)
    tokenizer = train_tokenizer(train.texts, config.tokenizer, config.vocab_size, config.min_freq)
    splits = {name: EncodedSplit.build(tokenizer, s) for name, s in (("train", train), ("val", val), ("test", test))}
    info = {
        "files": {name: {**digests[name], "rows": rows} for name, rows in
                  (("train.csv", len(full.labels)), ("test.csv", len(test.labels)), ("classes.txt", len(class_names)))},
        "rows": {name: len(s) for name, s in splits.items()},
        "tokenizer": {**settings, "vocab_size_actual": tokenizer.get_vocab_size()},
        "cache_key": key,
    }
    return {**splits, "tokenizer": tokenizer.to_str(), "class_names": class_names, "info": info}


# -------------------------------------------------------------------------- batching
@dataclass
class Batch:
    ids: torch.Tensor  # (B, T) int64
    pad_mask: torch.Tensor  # (B, T) bool, True = padding
    labels: torch.Tensor  # (B,)
    index: torch.Tensor  # (B,) row numbers in the split

    def to(self, device: torch.device) -> "Batch":
        if device.type == "cpu":
            return self
        nb = device.type == "cuda"  # pinned host memory: the copy overlaps the previous step's kernels
        move = (lambda t: t.pin_memory().to(device, non_blocking=True)) if nb else (lambda t: t.to(device))
        return Batch(move(self.ids), move(self.pad_mask), move(self.labels), self.index)


def collate(split: EncodedSplit, index: torch.Tensor, max_len: int) -> Batch:
    """Pad the rows `index` to their longest (truncated) length: dynamic padding."""
    starts = split.offsets[index]
    lengths = (split.offsets[index + 1] - starts).clamp(max=max_len)
    width = int(lengths.max())
    positions = torch.arange(width)
    pad_mask = positions[None, :] >= lengths[:, None]  # (B, T)
    gather = (starts[:, None] + positions[None, :]).masked_fill(pad_mask, 0)
    ids = split.ids[gather].long().masked_fill_(pad_mask, PAD_ID)
    return Batch(ids, pad_mask, split.labels[index], index)


def batch_indices(split: EncodedSplit, batch_size: int, max_len: int, generator: torch.Generator | None = None,
                  pool_batches: int = 64) -> list[torch.Tensor]:
    """Length-bucketed batches of row numbers.

    Training (a generator given): shuffle, sort by length inside pools of `pool_batches`
    batches (random tie order), cut into batches, shuffle the batches. Evaluation (no
    generator): all rows sorted by length, for the least padding.
    """
    lengths = split.lengths(max_len)
    if generator is None:
        order = torch.argsort(lengths, stable=True)
        return list(order.split(batch_size))
    perm = torch.randperm(len(split), generator=generator)
    batches: list[torch.Tensor] = []
    for pool in perm.split(batch_size * pool_batches):
        pool = pool[torch.argsort(lengths[pool], stable=True)]
        batches += list(pool.split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def iterate_batches(split: EncodedSplit, batch_size: int, max_len: int,
                    generator: torch.Generator | None = None) -> Iterator[Batch]:
    for index in batch_indices(split, batch_size, max_len, generator):
        yield collate(split, index, max_len)


def padding_ratio(split: EncodedSplit, batch_size: int, max_len: int, generator: torch.Generator | None) -> float:
    """Share of padding tokens over all positions of one pass of batches."""
    lengths = split.lengths(max_len)
    padded = real = 0
    for index in batch_indices(split, batch_size, max_len, generator):
        lens = lengths[index]
        padded += int(lens.max()) * len(index)
        real += int(lens.sum())
    return 1 - real / padded
