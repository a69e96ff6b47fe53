"""The run folder: its layout, its status life cycle, and what a finished run is good for
(loading it, evaluating it, predicting with it). Every other module reads and writes runs here.

    OUT_DIR/runs/<name>/
      config.json        the RunConfig (its four parts and the ablations)
      final.json         status and summary: created -> running -> completed | failed | interrupted
      metrics.csv        one row per epoch
      model.safetensors  the weights of the best validation epoch (no pickle: loading runs no code)
      checkpoint.json    beside the weights: the model config, vocabulary size, classes, epoch, metrics
      tokenizer.json     the tokenizer the weights were trained with
      predictions.json   validation and test predictions of the best checkpoint, with the labels

The status is written on every exit of `RunRecorder`: a finished loop, a diverged loss, an
exception, Ctrl-C and SIGTERM (which is turned into `Terminated`, a KeyboardInterrupt).
Run folders of newslab 0.1 (a pickled best.pt) are loaded with torch's weights-only unpickler.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import re
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import data as data_mod
from .config import ModelConfig, RunConfig
from .data import Dataset, EncodedSplit, iterate_batches
from .errors import ConfigError, NewslabError
from .files import atomic_write, write_json
from .metrics import accuracy, macro_f1
from .model import TextClassifier
from .step import amp_dtype, autocast
from .tokenization import Tokenizer, load_tokenizer

METRIC_COLUMNS = [
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
    "lr",
    "grad_norm",
    "samples_per_s",
    "tokens_per_s",
    "epoch_time_s",
]
FINAL_STATUSES = ("completed", "failed", "interrupted")
LEGACY_CHECKPOINT = "best.pt"
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
FINAL_RESERVE = 8192  # bytes kept by final.json for its last, in-place write
MAX_REASON = 2000  # characters of a failure's reason kept in final.json (so the status always fits)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled like Ctrl-C, so the run ends `interrupted` and its folder stays consistent."""


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    macro_f1: float
    predictions: torch.Tensor  # (N,) in the split's row order
    probabilities: torch.Tensor  # (N, K)


@dataclass
class RunResult:
    run_dir: Path
    status: str  # created | running | completed | failed | interrupted
    reason: str | None = None
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_macro_f1: float | None = None
    params: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    samples_per_s: float = 0.0
    tokens_per_s: float = 0.0


# ------------------------------------------------------------------------ the folder
def run_path(config: RunConfig) -> Path:
    """OUT_DIR/runs/<--run-name, or time stamp + settings + a random suffix>."""
    name = config.execution.run_name
    if name is None:
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.label}-{uuid.uuid4().hex[:6]}"
    elif not FOLDER_NAME.fullmatch(name):  # never a path out of OUT_DIR (checked here, where it becomes one)
        raise ConfigError(f"--run-name {name!r} must be one folder name (letters, digits, '.', '_', '+', '-')")
    return Path(config.execution.out_dir) / "runs" / name


class RunFolder:
    """Paths and readers of one run folder; it does not need to exist (the readers then raise)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    config_file = property(lambda self: self.path / "config.json")
    final_file = property(lambda self: self.path / "final.json")
    metrics_file = property(lambda self: self.path / "metrics.csv")
    weights_file = property(lambda self: self.path / "model.safetensors")
    checkpoint_file = property(lambda self: self.path / "checkpoint.json")
    tokenizer_file = property(lambda self: self.path / "tokenizer.json")
    predictions_file = property(lambda self: self.path / "predictions.json")

    def _json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NewslabError(f"{path}: not found (is {self.path} a newslab run folder on this machine?)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise NewslabError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None

    def exists(self) -> bool:
        return self.config_file.is_file()

    def config(self) -> RunConfig:
        return RunConfig.from_dict(self._json(self.config_file), source=str(self.config_file))

    def final(self) -> dict:
        return self._json(self.final_file)

    def status(self) -> str | None:
        return self.final().get("status") if self.final_file.is_file() else None

    def metrics(self) -> list[dict[str, float]]:
        with open(self.metrics_file, newline="", encoding="utf-8") as fh:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]

    def predictions(self) -> dict[str, list[int]]:
        """{"val", "val_labels", "test", "test_labels"}: per-row predicted and true classes."""
        return self._json(self.predictions_file)

    def has_predictions(self) -> bool:
        return self.predictions_file.is_file()

    def result(self) -> RunResult:
        """The run's summary as train() returned it, read back from final.json and metrics.csv."""
        final = self.final()
        values = {
            f.name: final[f.name] for f in fields(RunResult) if f.name in final and f.name not in ("run_dir", "history")
        }
        history = self.metrics() if self.metrics_file.is_file() else []
        return RunResult(run_dir=self.path, **{"status": "created", **values}, history=history)


def finished_result(path: str | Path, config: RunConfig) -> RunResult | None:
    """The result of a completed run of these settings in `path`; None if the folder holds no run,
    an unfinished one, or one that computed something else (execution settings aside)."""
    folder = RunFolder(path)
    if not folder.exists() or folder.status() != "completed":
        return None
    try:
        saved = folder.config()
    except ConfigError:  # written by a version with settings this one does not know: not comparable
        return None
    return folder.result() if saved.identity() == config.identity() else None


# -------------------------------------------------------------------- the life cycle
@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated (signal handlers live in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise Terminated(f"terminated by signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


class RunRecorder:
    """Creates a run folder and owns every write to it until the run ends.

        with RunRecorder(config, path) as run:
            run.start(...); run.log_epoch(row); run.save_checkpoint(...); run.finish("completed")

    The folder is created exclusively (an existing run is refused unless `overwrite`) and held by
    an advisory lock, so two processes never write one folder. Leaving the block by an exception
    writes the final status ("interrupted" for Ctrl-C and SIGTERM, "failed" otherwise) and re-raises.
    """

    def __init__(self, config: RunConfig, path: str | Path | None = None, overwrite: bool = False):
        self.config = config
        self.folder = RunFolder(path or run_path(config))
        self.overwrite = overwrite
        self.result = RunResult(self.folder.path, "created")
        self.summary: dict[str, Any] = {}
        self._started = time.time()
        self._train = {"seconds": 0.0, "samples": 0, "tokens": 0}
        self._lock: Any = None
        self._signals = _sigterm_as_interrupt()
        self._final_written = False  # set once a final status is on disk, not merely in memory

    # -- entering and leaving ---------------------------------------------------------
    def __enter__(self) -> RunRecorder:
        path = self.folder.path
        if path.exists() and any(path.iterdir()):
            if not self.overwrite:
                status = self.folder.status() if self.folder.final_file.is_file() else "unknown"
                raise NewslabError(
                    f"{path}: a run folder already exists (status {status}); choose another "
                    "--run-name, or pass --overwrite to replace it"
                )
            guard = self._acquire(path)  # refuses a folder that another process is writing
            try:
                shutil.rmtree(path)
            finally:
                guard.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError:
            if any(path.iterdir()):
                raise NewslabError(f"{path}: another process created this run folder just now") from None
        self._lock = self._acquire(path)
        try:
            write_json(self.folder.config_file, self.config.to_dict())
            self._write_final()
        except BaseException:  # a folder without its config or status is no run: leave none behind
            shutil.rmtree(path, ignore_errors=True)
            self._lock.close()
            raise
        self._signals.__enter__()
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if exc is not None and not self._final_written:
                if isinstance(exc, KeyboardInterrupt):
                    reason = str(exc) or "interrupted by the user (Ctrl-C)"
                    self._end("interrupted", reason)
                else:
                    self._end("failed", f"{type(exc).__name__}: {exc}")
            elif not self._final_written:  # left the block without finish(): a bug
                self._end("failed", "the run ended without a final status")
        finally:
            self._signals.__exit__(kind, exc, tb)
            if self._lock is not None:
                self._lock.close()

    @staticmethod
    def _acquire(path: Path):
        handle = open(path / ".lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise NewslabError(f"{path}: in use by another newslab process") from None
        return handle

    # -- writing ----------------------------------------------------------------------
    def start(self, **summary: Any) -> None:
        """Training begins: status "running", with what the run runs on (device, params, data...)."""
        self.result.params = summary.get("params", {})
        self.summary.update(summary)
        self.result.status = "running"
        self._write_final()
        self._metrics = open(self.folder.metrics_file, "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._metrics, fieldnames=METRIC_COLUMNS)
        self._writer.writeheader()
        self._metrics.flush()

    def log_epoch(self, row: dict[str, float], samples: int, tokens: int) -> None:
        self._writer.writerow(row)
        self._metrics.flush()
        self.result.history.append(row)
        self._train["seconds"] += row["epoch_time_s"]
        self._train["samples"] += samples
        self._train["tokens"] += tokens

    def is_best(self, val_accuracy: float) -> bool:
        return self.result.best_val_accuracy is None or val_accuracy > self.result.best_val_accuracy

    def save_checkpoint(self, model: TextClassifier, dataset: Dataset, epoch: int, val: EvalResult) -> None:
        """The best epoch so far. What changes from epoch to epoch (the epoch and its validation
        metrics) travels inside the weights file, so the weights are never paired with another epoch's
        numbers; the JSON beside them (written once, or a copy) is what people and tools read."""
        from safetensors.torch import save

        if not self.folder.tokenizer_file.is_file():  # the same for every epoch of a run
            atomic_write(self.folder.tokenizer_file, lambda tmp: Path(tmp).write_text(dataset.tokenizer.to_json()))
        best = {"epoch": epoch, "val_accuracy": val.accuracy, "val_loss": val.loss}
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        blob = save(state, metadata={k: json.dumps(v) for k, v in best.items()})
        # serialized here and written by Python, so a full disk is an OSError naming the file
        atomic_write(self.folder.weights_file, lambda tmp: Path(tmp).write_bytes(blob))
        self.result.best_epoch, self.result.best_val_accuracy = epoch, val.accuracy
        meta = {
            "model": asdict(self.config.model),
            "vocab_size": dataset.vocab_size,
            "class_names": dataset.class_names,
            **best,
        }
        write_json(self.folder.checkpoint_file, meta)

    def save_predictions(self, val: EvalResult, test: EvalResult, dataset: Dataset) -> None:
        self.result.test_accuracy, self.result.test_macro_f1 = test.accuracy, test.macro_f1
        self.summary["test_loss"] = test.loss
        write_json(
            self.folder.predictions_file,
            {
                "val": val.predictions.tolist(),
                "val_labels": dataset.val.labels.tolist(),
                "test": test.predictions.tolist(),
                "test_labels": dataset.test.labels.tolist(),
            },
        )

    def finish(self, status: str, reason: str | None = None) -> RunResult:
        self._end(status, reason)
        return self.result

    def _end(self, status: str, reason: str | None) -> None:
        if getattr(self, "_metrics", None) is not None:
            self._metrics.close()
        self.result.status, self.result.reason = status, reason
        self.result.wall_time_s = time.time() - self._started
        seconds = self._train["seconds"]
        self.result.samples_per_s = self._train["samples"] / seconds if seconds else 0.0
        self.result.tokens_per_s = self._train["tokens"] / seconds if seconds else 0.0
        self._write_final()

    def _write_final(self) -> None:
        values = {k: v for k, v in asdict(self.result).items() if k not in ("run_dir", "history")}
        values["reason"] = values["reason"] and values["reason"][:MAX_REASON]
        text = json.dumps({**self.summary, **values, "epochs_completed": len(self.result.history)}, indent=2)
        # Padded to a fixed size, so that on a full disk the final status can still overwrite the
        # file's own blocks in place when writing a new file fails (JSON ignores trailing spaces).
        padded = (text + "\n").ljust(FINAL_RESERVE)
        final = self.result.status in FINAL_STATUSES
        try:
            atomic_write(self.folder.final_file, lambda tmp: Path(tmp).write_text(padded, encoding="utf-8"))
        except OSError:
            fits = (
                len(padded.encode()) <= self.folder.final_file.stat().st_size
                if self.folder.final_file.is_file()
                else False
            )
            if not final or not fits:
                raise
            with open(self.folder.final_file, "r+", encoding="utf-8") as fh:
                fh.write(padded)
        self._final_written = final


# ------------------------------------------------------------------------ evaluation
@torch.inference_mode()
def evaluate(
    model: TextClassifier,
    split: EncodedSplit,
    num_classes: int,
    device: torch.device,
    batch_size: int = 256,
    max_len: int = 128,
    precision: str = "auto",
) -> EvalResult:
    """Loss, accuracy, macro-F1 and per-row predictions over a split, in length-sorted batches."""
    model.eval()
    amp = amp_dtype(precision, device)
    probs = torch.empty(len(split), num_classes)
    losses = []  # per-batch sums, left on the device until the end
    for batch in iterate_batches(split, batch_size, max_len):
        batch = batch.to(device)
        with autocast(device, amp):
            logits = model(batch.ids, batch.pad_mask).float()
        losses.append(F.cross_entropy(logits, batch.labels, reduction="sum"))
        probs[batch.index] = logits.softmax(-1).cpu()
    predictions = probs.argmax(-1)
    return EvalResult(
        torch.stack(losses).cpu().double().sum().item() / len(split),
        accuracy(predictions, split.labels),
        macro_f1(predictions, split.labels, num_classes),
        predictions,
        probs,
    )


# ------------------------------------------------------------------- a finished run
@dataclass
class LoadedRun:
    model: TextClassifier
    config: RunConfig
    tokenizer: Tokenizer
    class_names: list[str]
    checkpoint: dict  # checkpoint.json: model config, vocab_size, class_names, epoch, val metrics


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the model, config and tokenizer of a run from its folder (weights of the best epoch)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    folder = RunFolder(run_dir)
    config = folder.config()
    if not folder.weights_file.is_file() and (folder.path / LEGACY_CHECKPOINT).is_file():
        return _load_legacy(folder, config, device)
    if not folder.weights_file.is_file():
        raise NewslabError(f"{folder.weights_file}: no checkpoint (did the run finish an epoch?)")
    meta = folder._json(folder.checkpoint_file)
    try:
        state = load_file(folder.weights_file, device=str(device))
        with safe_open(folder.weights_file, "pt") as weights:  # the epoch the weights really are
            meta.update({k: json.loads(v) for k, v in (weights.metadata() or {}).items()})
        model_config = ModelConfig(**meta["model"])
        vocab_size, class_names = int(meta["vocab_size"]), list(meta["class_names"])
    except (SafetensorError, OSError, ValueError) as exc:
        raise NewslabError(f"{folder.weights_file}: damaged checkpoint ({exc})") from None
    except (KeyError, TypeError) as exc:
        raise NewslabError(f"{folder.checkpoint_file}: malformed ({type(exc).__name__}: {exc})") from None
    tokenizer = load_tokenizer(folder.tokenizer_file.read_text(encoding="utf-8"), str(folder.tokenizer_file))
    model = _build(model_config, vocab_size, len(class_names), state, folder.weights_file, device)
    return LoadedRun(model, config, tokenizer, class_names, meta)


def _build(
    config: ModelConfig, vocab_size: int, classes: int, state: dict, source: Path, device: str | torch.device
) -> TextClassifier:
    model = TextClassifier.from_config(config, vocab_size, classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise NewslabError(
            f"{source}: weights do not fit the model in its config ({str(exc).splitlines()[0]})"
        ) from None
    return model.to(device).eval()


def _load_legacy(folder: RunFolder, config: RunConfig, device: str | torch.device) -> LoadedRun:
    """A newslab 0.1 run (pickled best.pt): read with the weights-only unpickler, which runs no code."""
    path = folder.path / LEGACY_CHECKPOINT
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # the weights-only unpickler refuses anything but tensors and plain values
        raise NewslabError(
            f"{path}: cannot be loaded safely ({type(exc).__name__}); re-create the run with "
            f"`newslab train --config {folder.config_file} --overwrite`"
        ) from None
    state = {k.replace("pos_emb.weight", "positions.embedding.weight"): v for k, v in ckpt["model"].items()}
    meta = {
        "model": asdict(config.model),
        "vocab_size": ckpt["vocab_size"],
        "class_names": ckpt["class_names"],
        "epoch": ckpt["epoch"],
        "val_accuracy": ckpt["val_accuracy"],
        "val_loss": ckpt["val_loss"],
    }
    tokenizer = load_tokenizer(ckpt["tokenizer"], str(path))
    model = _build(config.model, ckpt["vocab_size"], len(ckpt["class_names"]), state, path, device)
    return LoadedRun(model, config, tokenizer, ckpt["class_names"], meta)


def evaluate_run(
    run_dir: str | Path, csv_path: str | Path | None = None, data_dir: str | Path | None = None, device: str = "cpu"
) -> EvalResult:
    """Reload the best checkpoint and evaluate it on the run's test.csv (or any CSV in the same format)."""
    run = load_run(run_dir, device)
    if csv_path is None:
        folder = Path(data_dir) if data_dir else run.config.data.resolved_dir
        csv_path = data_mod.ensure_data(folder) / "test.csv"
    elif not Path(csv_path).is_file():
        raise NewslabError(f"--csv {csv_path}: no such file")
    rows = data_mod.read_split(Path(csv_path), len(run.class_names), run.config.data.normalize)
    return evaluate_texts(run, rows)


def evaluate_texts(run: LoadedRun, rows: data_mod.Split) -> EvalResult:
    split = EncodedSplit.build(run.tokenizer, rows)
    device = next(run.model.parameters()).device
    return evaluate(
        run.model,
        split,
        len(run.class_names),
        device,
        run.config.execution.eval_batch_size,
        run.config.model.max_len,
        run.config.optim.precision,
    )


def predict(run: LoadedRun, texts: list[str]) -> torch.Tensor:
    """Class probabilities (N, K) for raw texts, normalized as in training; an empty text is refused,
    as training refuses one."""
    if run.config.data.normalize:
        texts = [data_mod.normalize_text(t) for t in texts]
    for i, text in enumerate(texts, start=1):
        if not text.strip(" ."):
            raise NewslabError(f"text {i} is empty: there is nothing to classify")
    return evaluate_texts(run, data_mod.Split(texts, [0] * len(texts))).probabilities


def select_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    if not available[name]:
        raise NewslabError(f"--device {name}: not available on this machine")
    return torch.device(name)
