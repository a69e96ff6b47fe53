"""What a finished run is good for: evaluating a model, loading a run, predicting with it.

Loading never unpickles: weights are safetensors and the rest JSON; newslab 0.1's pickled best.pt
goes through torch's weights-only unpickler, which refuses anything but tensors and plain values.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import data as data_mod
from ..config import ModelConfig, RunConfig
from ..data import EncodedSplit, iterate_batches
from ..errors import NewslabError
from ..metrics import accuracy, macro_f1
from ..model import TextClassifier
from ..step import amp_dtype, autocast
from ..tokenization import Tokenizer, load_tokenizer
from .folder import LEGACY_CHECKPOINT, RunFolder


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    macro_f1: float
    predictions: torch.Tensor  # (N,) in the split's row order
    probabilities: torch.Tensor  # (N, K)


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
