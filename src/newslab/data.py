"""AG News-layout data: read and validate, download, normalize, encode, cache, batch.

A data folder holds `train.csv`, `test.csv` (CSV "class","title","description", no header,
classes 1..K) and `classes.txt` (K names, one per line). Any Zhang et al. (2015) dataset in
this layout works; the class count comes from classes.txt.
"""

from __future__ import annotations

import csv
import hashlib
import html
import http.client
import io
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import DataConfig
from .errors import NewslabError
from .files import atomic_write, exclusive_lock, remove_stale_temporaries
from .tokenization import PAD_ID, SPECIAL_TOKENS, Tokenizer, encode_chunks, load_tokenizer, train_tokenizer

DATA_FILES = ("train.csv", "test.csv", "classes.txt")
# Where torchtext's AG_NEWS loader downloads from, with its checksums.
AG_NEWS_BASE_URL = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"
AG_NEWS_MD5 = {"train.csv": "b1a00f826fdfbd249f79597b59e1dc12", "test.csv": "d52ea96a97a2d943681189a97654912d"}
AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
CACHE_VERSION = 3  # 2: safetensors + JSON manifest with checksums; 3: checked classes, exact --train-limit subsets


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


def _read_error(path: Path, exc: OSError) -> DataError:
    """`PATH: cannot read (Permission denied)`: an OSError as one line naming the path."""
    reason = " ".join(str(exc.strerror or exc or type(exc).__name__).split())
    return DataError(f"{path}: cannot read ({reason})")


def _exists(path: Path) -> bool:
    """Whether anything (a file, a folder, a dangling link) is at `path`; an unreadable folder is an error."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise _read_error(path, exc) from None
    return True


def ensure_data(data_dir: Path, base_url: str | None = None, progress: bool = True) -> Path:
    """Return data_dir once it holds the three files, downloading official AG News into it if it holds none.

    Only a folder with none of the files (or no folder) is the official data's place: newslab never
    completes a folder that holds some of them with AG News files, it refuses it untouched.
    """
    if _exists(data_dir) and not data_dir.is_dir():
        raise DataError(
            f"{data_dir}: not a folder; --data-dir / NEWSLAB_DATA_DIR must name one with {', '.join(DATA_FILES)}"
        )
    present = [name for name in DATA_FILES if _exists(data_dir / name)]
    missing = [name for name in DATA_FILES if name not in present]
    if present and missing:
        raise DataError(
            f"{data_dir}: missing {', '.join(missing)} (it has {', '.join(present)}); add "
            f"{'it' if len(missing) == 1 else 'them'}: newslab downloads AG News only into a folder "
            f"that holds none of {', '.join(DATA_FILES)}"
        )
    if missing:
        _download_ag_news(data_dir, base_url or os.environ.get("NEWSLAB_DOWNLOAD_URL") or AG_NEWS_BASE_URL, progress)
    return data_dir


def _download_ag_news(data_dir: Path, base_url: str, progress: bool) -> None:
    """The official train.csv and test.csv, and AG News' classes.txt, into data_dir (which holds none of them).

    The files are fetched into a staging folder inside data_dir and moved in together once all
    are complete, so a failed download leaves no partial dataset behind (which would be refused).
    """
    created = not _exists(data_dir)
    staging: Path | None = None
    done = False
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=data_dir, prefix=".newslab-download."))
        for name in ("train.csv", "test.csv"):
            md5 = AG_NEWS_MD5[name] if base_url == AG_NEWS_BASE_URL else None
            download(base_url + name, staging / name, md5, progress)
        # the download location has no classes.txt; its classes are AG News'
        (staging / "classes.txt").write_text("\n".join(AG_NEWS_CLASSES) + "\n", encoding="utf-8")
        for name in DATA_FILES:
            os.replace(staging / name, data_dir / name)
        done = True
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"{data_dir}: missing {', '.join(DATA_FILES)} and the download from {base_url} failed ({reason}); "
            f"put the AG News files there, or point --data-dir / NEWSLAB_DATA_DIR at a folder that has them"
        ) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if created and not done:
            try:
                data_dir.rmdir()  # only when empty: the folder this call made
            except OSError:
                pass


def file_digests(path: Path) -> dict[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                md5.update(chunk)
                sha.update(chunk)
    except OSError as exc:
        raise _read_error(path, exc) from None
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def _existing(path: Path, flag: str) -> Path:
    if not path.is_file():
        raise DataError(f"{flag} {path}: no such file")
    return path


def _decode(path: Path) -> str:
    """The file's text; a leading byte order mark (as Excel and Notepad write UTF-8) is not part of it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _read_error(path, exc) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: bytes that are not UTF-8 ({exc.reason})") from None
    return text.removeprefix("\ufeff")


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
            digits = label.strip()  # ASCII digits only: str.isdigit() also accepts '²', which int() refuses
            if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= num_classes:
                raise DataError(f"{where}: class {label!r} is not an integer in 1..{num_classes}")
            text = f"{title.strip()} . {description.strip()}" if description.strip() else title.strip()
            if normalize:
                text = normalize_text(text)
            if not text.strip(" ."):
                raise DataError(f"{where}: empty text (title and description are blank)")
            texts.append(text)
            labels.append(int(digits) - 1)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    if not texts:
        raise DataError(f"{path}: no rows")
    return Split(texts, labels)


def _stratified(labels: list[int], seed: int, held_of: Callable[[int, int], int]) -> tuple[list[int], list[int]]:
    """Split row indices into (rest, held): `held_of(class, rows of the class)` random rows of every class held."""
    gen = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    rest, held = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        order = torch.randperm(len(idx), generator=gen).tolist()
        k = held_of(y, len(idx))
        held += [idx[j] for j in order[:k]]
        rest += [idx[j] for j in order[k:]]
    return sorted(rest), sorted(held)


def stratified_indices(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split row indices into (rest, held) with `fraction` of every class held (at least one row), seeded."""
    return _stratified(labels, seed, lambda _y, n: max(1, round(fraction * n)))


def stratified_subset(labels: list[int], size: int, seed: int) -> list[int]:
    """Exactly `size` row indices (at most all), every class in proportion and with at least one row, seeded.

    Shares are the largest-remainder rounding of size x class share; a class whose share rounds to
    none gets one row, taken from the classes furthest above their share. `size` must be at least
    the number of classes.
    """
    counts = Counter(labels)
    n = len(labels)
    if size >= n:
        return list(range(n))
    if size < len(counts):
        raise ValueError(f"a subset of {size} rows cannot hold {len(counts)} classes")
    keep = {y: max(1, size * c // n) for y, c in counts.items()}
    while sum(keep.values()) > size:
        y = max((y for y in keep if keep[y] > 1), key=lambda y: (keep[y] * n - size * counts[y], -y))
        keep[y] -= 1
    while sum(keep.values()) < size:
        y = max((y for y in keep if keep[y] < counts[y]), key=lambda y: (size * counts[y] - keep[y] * n, -y))
        keep[y] += 1
    rest, _ = _stratified(labels, seed, lambda y, c: c - keep[y])
    return rest


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
    if config.tokenizer_file is not None:  # the key holds its content: the path alone could hide a change
        digests["tokenizer_file"] = file_digests(_existing(Path(config.tokenizer_file), "--tokenizer-file"))
    settings = config.settings()
    key = hashlib.sha256(json.dumps([CACHE_VERSION, digests, settings], sort_keys=True).encode()).hexdigest()[:20]
    entry = Path(cache) / f"dataset-{key}"
    with exclusive_lock(entry.with_suffix(".lock")):  # workers starting together build an entry once
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
    from safetensors.torch import save

    entry.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(entry.parent)
    tensors = {k: v.contiguous() for name in SPLITS for k, v in getattr(dataset, name).tensors(name).items()}
    tensor_path = entry.with_suffix(".safetensors")
    blob = save(tensors)  # the manifest vouches for these bytes, not for whatever the file holds later
    atomic_write(tensor_path, lambda tmp: Path(tmp).write_bytes(blob))  # a full disk: an OSError
    payload = {
        "version": CACHE_VERSION,
        "tokenizer": dataset.tokenizer.to_json(),
        "class_names": dataset.class_names,
        "info": dataset.info,
        "texts": {name: getattr(dataset, name).texts for name in SPLITS},
    }
    manifest = {
        "payload": payload,
        "sha256": {"tensors": hashlib.sha256(blob).hexdigest(), "payload": _payload_digest(payload)},
    }
    atomic_write(entry.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(manifest)))


def _check_encoded(split: EncodedSplit, num_classes: int, vocab_size: int) -> None:
    """ValueError unless the split's offsets, ids and labels fit together and in range."""
    o, n = split.offsets, len(split.labels)
    ok = len(o) == n + 1 == len(split.texts) + 1 and int(o[0]) == 0 and int(o[-1]) == len(split.ids)
    ok = ok and bool((o[1:] >= o[:-1]).all())
    ok = ok and (n == 0 or (int(split.labels.min()) >= 0 and int(split.labels.max()) < num_classes))
    ok = ok and (len(split.ids) == 0 or (int(split.ids.min()) >= 0 and int(split.ids.max()) < vocab_size))
    if not ok:
        raise ValueError("tensors inconsistent with each other or out of range")


def _read_cache(entry: Path, log: Callable[[str], None]) -> Dataset | None:
    """The cached dataset, or None when absent; a damaged entry is reported, removed and rebuilt."""
    from safetensors import SafetensorError
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
        for split in (train, val, test):  # checksums vouch for the bytes; this for what they mean
            _check_encoded(split, len(payload["class_names"]), tokenizer.vocab_size)
    except (OSError, ValueError, KeyError, TypeError, NewslabError, SafetensorError) as exc:
        log(f"newslab: data cache {manifest_path} is damaged ({type(exc).__name__}: {exc}); rebuilding it")
        for path in (manifest_path, tensor_path):
            path.unlink(missing_ok=True)
        return None
    return Dataset(train, val, test, tokenizer, payload["class_names"], payload["info"])


def _check_train_classes(path: Path, labels: list[int], class_names: list[str]) -> None:
    """Refuse training rows a classifier cannot learn from, or that the validation split would empty of a class.

    Classes of classes.txt without a training row are allowed; test.csv may hold them (every such row is a miss).
    """
    counts = Counter(labels)
    name = lambda y: f"{y + 1} ({class_names[y]})"
    if len(counts) < 2:
        raise DataError(f"{path}: every row is class {name(next(iter(counts)))}; a classifier needs at least 2 classes")
    single = sorted(y for y, n in counts.items() if n == 1)
    if single:
        which = ", ".join(name(y) for y in single)
        raise DataError(
            f"{path}: {'class ' + which + ' has' if len(single) == 1 else 'classes ' + which + ' have'} a single "
            f"row, which the validation split would take, leaving none to train on; every class needs at least 2 rows"
        )


@dataclass
class SplitRows:
    """The rows every model of a DataConfig trains on (train), chooses on (val) and is tested on (test)."""

    train: Split
    val: Split
    test: Split
    class_names: list[str]
    source_rows: int  # rows of train.csv, before the validation split and --train-limit


def split_rows(data_dir: Path, config: DataConfig) -> SplitRows:
    """train.csv split into training and validation rows (stratified by `split_seed`, `train_limit`
    applied) and test.csv's rows, texts normalized as `config` says: the Transformer's rows and the
    classical baselines' (report/classical.py) alike."""
    class_names = read_classes(data_dir / "classes.txt")
    train_path = data_dir / "train.csv"
    full = read_split(train_path, len(class_names), config.normalize)
    test = read_split(data_dir / "test.csv", len(class_names), config.normalize)
    _check_train_classes(train_path, full.labels, class_names)
    train_idx, val_idx = stratified_indices(full.labels, config.val_fraction, config.split_seed)
    if config.train_limit is not None and config.train_limit < len(train_idx):
        classes = len(set(full.labels))
        if config.train_limit < classes:
            raise DataError(
                f"--train-limit {config.train_limit} is fewer than the {classes} classes of {train_path}; "
                f"a stratified subset needs at least one row of each: use --train-limit {classes} or more"
            )
        keep = stratified_subset([full.labels[i] for i in train_idx], config.train_limit, config.split_seed)
        train_idx = [train_idx[i] for i in keep]
    return SplitRows(subset(full, train_idx), subset(full, val_idx), test, class_names, len(full.labels))


def _build_dataset(data_dir: Path, config: DataConfig, digests: dict, settings: dict, key: str) -> Dataset:
    parts = split_rows(data_dir, config)
    train, val, test, class_names = parts.train, parts.val, parts.test, parts.class_names
    train_path = data_dir / "train.csv"
    if config.tokenizer_file is not None:
        path = Path(config.tokenizer_file)
        tokenizer = load_tokenizer(_decode(path), str(path))
    else:
        tokenizer = train_tokenizer(train.texts, config.tokenizer, config.vocab_size, config.min_freq)
    if tokenizer.vocab_size <= len(SPECIAL_TOKENS):
        raise DataError(
            f"{train_path}: no word occurs --min-freq {config.min_freq} times in the {len(train.texts)} training "
            f"rows, so the vocabulary (--vocab-size {config.vocab_size}) would hold only "
            f"{' and '.join(SPECIAL_TOKENS)}; lower --min-freq"
        )
    splits = {name: EncodedSplit.build(tokenizer, s) for name, s in (("train", train), ("val", val), ("test", test))}
    info = {
        "files": {
            name: {**digests[name], "rows": rows}
            for name, rows in (
                ("train.csv", parts.source_rows),
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
