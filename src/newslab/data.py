"""AG News-layout data: read and validate, download, normalize, encode, cache, batch.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import DataConfig
from .errors import NewslabError
from .files import atomic_write
from .tokenization import PAD_ID, Tokenizer, encode_chunks, load_tokenizer, train_tokenizer

DATA_FILES = ("train.csv", "test.csv", "classes.txt")
# Where torchtext's AG_NEWS loader downloads from, with its checksums.
AG_NEWS_BASE_URL = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"
AG_NEWS_MD5 = {"train.csv": "b1a00f826fdfbd249f79597b59e1dc12", "test.csv": "d52ea96a97a2d943681189a97654912d"}
AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
CACHE_VERSION = 2  # 2: safetensors + JSON manifest with checksums


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
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress, file=sys.stderr
            ) as bar:
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
            download(
                base_url + name,
                data_dir / name,
                AG_NEWS_MD5.get(name) if base_url == AG_NEWS_BASE_URL else None,
                progress,
            )
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


# ------------------------------------------------------------------------ encoding
@dataclass
class EncodedSplit:
    """Untruncated token ids of every row, flat, with offsets; plus labels and the texts."""

    ids: torch.Tensor  # (total_tokens,) int32
    offsets: torch.Tensor  # (N + 1,) int64
    labels: torch.Tensor  # (N,) int64
    texts: list[str]

    @classmethod
    def build(cls, tokenizer: Tokenizer, split: Split) -> EncodedSplit:
        ids, lengths = [], []
        for rows in encode_chunks(tokenizer, split.texts):
            lengths.append(torch.tensor([len(r) for r in rows], dtype=torch.int64))
            ids.append(torch.tensor([t for r in rows for t in r], dtype=torch.int32))
        lengths_all = torch.cat(lengths) if lengths else torch.zeros(0, dtype=torch.int64)
        offsets = torch.zeros(len(lengths_all) + 1, dtype=torch.int64)
        torch.cumsum(lengths_all, 0, out=offsets[1:])
        return cls(
            torch.cat(ids) if ids else torch.zeros(0, dtype=torch.int32),
            offsets,
            torch.tensor(split.labels, dtype=torch.int64),
            split.texts,
        )

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self, max_len: int) -> torch.Tensor:
        return (self.offsets[1:] - self.offsets[:-1]).clamp(max=max_len)

    def row(self, i: int, max_len: int) -> torch.Tensor:
        start = int(self.offsets[i])
        return self.ids[start : min(start + max_len, int(self.offsets[i + 1]))]

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.ids": self.ids, f"{prefix}.offsets": self.offsets, f"{prefix}.labels": self.labels}


@dataclass
class Dataset:
    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit
    tokenizer: Tokenizer
    class_names: list[str]
    info: dict  # files (rows, md5, sha256), tokenizer settings, vocabulary size, cache key

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size


SPLITS = ("train", "val", "test")


def cache_dir(out_dir: str | Path) -> Path:
    return Path(os.environ.get("NEWSLAB_CACHE_DIR") or Path(out_dir) / "cache")


def load_dataset(
    config: DataConfig, cache: str | Path, progress: bool = True, log: Callable[[str], None] | None = None
) -> Dataset:
    """Read, split, tokenize and encode the data of `config`, through an on-disk cache in `cache`.

    The cache key covers the three files' contents and every setting of DataConfig except the
    folder's location, so a changed file or setting re-tokenizes and an unchanged one never does.
    A cache entry is plain tensors (safetensors) and JSON, checked against the checksums in its
    manifest; a damaged one is reported in one line and rebuilt.
    """
    data_dir = ensure_data(config.resolved_dir, progress=progress)
    digests = {name: file_digests(data_dir / name) for name in DATA_FILES}
    settings = config.settings()
    key = hashlib.sha256(json.dumps([CACHE_VERSION, digests, settings], sort_keys=True).encode()).hexdigest()[:20]
    entry = Path(cache) / f"dataset-{key}"
    dataset = _read_cache(entry, log or (lambda msg: print(msg, file=sys.stderr)))
    if dataset is None:
        dataset = _build_dataset(data_dir, config, digests, settings, key)
        _write_cache(entry, dataset)
    dataset.info.update(data_dir=str(data_dir.resolve()), cache_file=str(entry) + ".json")
    return dataset


def _payload_digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _write_cache(entry: Path, dataset: Dataset) -> None:
    """Tensors first, then the manifest that vouches for them: a reader never trusts a half-written entry."""
    from safetensors.torch import save_file

    entry.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for name in SPLITS for k, v in getattr(dataset, name).tensors(name).items()}
    tensor_path = entry.with_suffix(".safetensors")
    atomic_write(tensor_path, lambda tmp: save_file(tensors, tmp))
    payload = {
        "version": CACHE_VERSION,
        "tokenizer": dataset.tokenizer.to_json(),
        "class_names": dataset.class_names,
        "info": dataset.info,
        "texts": {name: getattr(dataset, name).texts for name in SPLITS},
    }
    manifest = {
        "payload": payload,
        "sha256": {"tensors": file_digests(tensor_path)["sha256"], "payload": _payload_digest(payload)},
    }
    atomic_write(entry.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(manifest)))


def _read_cache(entry: Path, log: Callable[[str], None]) -> Dataset | None:
    """The cached dataset, or None when absent; a damaged entry is reported, removed and rebuilt."""
    from safetensors.torch import load_file

    manifest_path, tensor_path = entry.with_suffix(".json"), entry.with_suffix(".safetensors")
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        payload, sums = manifest["payload"], manifest["sha256"]
        if _payload_digest(payload) != sums["payload"] or payload.get("version") != CACHE_VERSION:
            raise ValueError("manifest checksum mismatch")
        if file_digests(tensor_path)["sha256"] != sums["tensors"]:
            raise ValueError("tensor file checksum mismatch")
        tensors = load_file(tensor_path)
        train, val, test = (
            EncodedSplit(tensors[f"{n}.ids"], tensors[f"{n}.offsets"], tensors[f"{n}.labels"], payload["texts"][n])
            for n in SPLITS
        )
        tokenizer = load_tokenizer(payload["tokenizer"], str(manifest_path))
    except (OSError, ValueError, KeyError, TypeError, NewslabError) as exc:
        log(f"newslab: data cache {manifest_path} is damaged ({type(exc).__name__}: {exc}); rebuilding it")
        for path in (manifest_path, tensor_path):
            path.unlink(missing_ok=True)
        return None
    return Dataset(train, val, test, tokenizer, payload["class_names"], payload["info"])


def _build_dataset(data_dir: Path, config: DataConfig, digests: dict, settings: dict, key: str) -> Dataset:
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
        "files": {
            name: {**digests[name], "rows": rows}
            for name, rows in (
                ("train.csv", len(full.labels)),
                ("test.csv", len(test.labels)),
                ("classes.txt", len(class_names)),
            )
        },
        "rows": {name: len(s) for name, s in splits.items()},
        "tokenizer": {**settings, "vocab_size_actual": tokenizer.vocab_size},
        "cache_key": key,
    }
    return Dataset(splits["train"], splits["val"], splits["test"], tokenizer, class_names, info)


# -------------------------------------------------------------------------- batching
@dataclass
class Batch:
    ids: torch.Tensor  # (B, T) int64
    pad_mask: torch.Tensor  # (B, T) bool, True = padding
    labels: torch.Tensor  # (B,)
    index: torch.Tensor  # (B,) row numbers in the split

    def to(self, device: torch.device) -> Batch:
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


def batch_indices(
    split: EncodedSplit, batch_size: int, max_len: int, generator: torch.Generator | None = None, pool_batches: int = 64
) -> list[torch.Tensor]:
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


def iterate_batches(
    split: EncodedSplit, batch_size: int, max_len: int, generator: torch.Generator | None = None
) -> Iterator[Batch]:
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
