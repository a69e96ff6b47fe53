"""train(config) -> RunResult: a plain training loop, evaluation, checkpoints and the run folder.

A run folder `OUT_DIR/runs/<run-id>/` holds config.json, metrics.csv (a row per epoch),
best.pt (best validation accuracy, written atomically, loadable alone), predictions.json
and final.json (status and summary; "running" until the run ends).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from . import allocator
from . import data as data_mod
from .config import NewslabError, RunConfig
from .data import Dataset, EncodedSplit, iterate_batches
from .metrics import accuracy, macro_f1
from .model import TextClassifier
from .step import TrainStep, amp_dtype, autocast, grad_norm, wants_compile  # noqa: F401 (grad_norm: API)

METRIC_COLUMNS = ["epoch", "train_loss", "val_loss", "val_accuracy", "val_macro_f1", "lr", "grad_norm",
                  "samples_per_s", "tokens_per_s", "epoch_time_s"]


CHECK_EVERY = 32  # steps between NaN/inf checks of the loss (each check is one host sync)


class TrainingDiverged(NewslabError):
    pass


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
    status: str  # completed | failed | interrupted
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


# --------------------------------------------------------------------------- helpers
def select_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    if not available[name]:
        raise NewslabError(f"--device {name}: not available on this machine")
    return torch.device(name)


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, payload: dict) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2) + "\n"))


def make_optimizer(model: TextClassifier, config: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only; frozen parameters left out."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = device.type in ("cuda", "cpu")  # fused AdamW kernels exist for both since torch 2.4
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), fused=fused)


def lr_lambda(total_steps: int, warmup: float) -> Callable[[int], float]:
    warm = max(1, round(warmup * total_steps)) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))
    return factor


# ------------------------------------------------------------------------ evaluation
@torch.inference_mode()
def evaluate(model: TextClassifier, split: EncodedSplit, num_classes: int, device: torch.device,
             batch_size: int = 256, max_len: int = 128, precision: str = "auto") -> EvalResult:
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
    return EvalResult(torch.stack(losses).cpu().double().sum().item() / len(split), accuracy(predictions, split.labels),
                      macro_f1(predictions, split.labels, num_classes), predictions, probs)


# ------------------------------------------------------------------------ checkpoints
def save_checkpoint(path: Path, model: TextClassifier, config: RunConfig, dataset: Dataset, epoch: int,
                    val: EvalResult) -> None:
    payload = {"model": model.state_dict(), "config": config.to_dict(), "tokenizer": dataset.tokenizer.to_str(),
               "class_names": dataset.class_names, "vocab_size": dataset.vocab_size, "epoch": epoch,
               "val_accuracy": val.accuracy, "val_loss": val.loss}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


@dataclass
class LoadedRun:
    model: TextClassifier
    config: RunConfig
    tokenizer: object
    class_names: list[str]
    checkpoint: dict


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the model, config and tokenizer of a run from its best.pt alone."""
    from tokenizers import Tokenizer

    path = Path(run_dir) / "best.pt"
    if not path.is_file():
        raise NewslabError(f"{path}: no checkpoint (did the run finish an epoch?)")
    ckpt = torch.load(path, map_location=device, weights_only=False)
    config = RunConfig.from_dict(ckpt["config"], source=str(path))
    model = TextClassifier.from_config(config, ckpt["vocab_size"], len(ckpt["class_names"]))
    model.load_state_dict(ckpt["model"])
    return LoadedRun(model.to(device).eval(), config, Tokenizer.from_str(ckpt["tokenizer"]), ckpt["class_names"], ckpt)


# ---------------------------------------------------------------------------- run dir
def new_run_dir(config: RunConfig) -> Path:
    name = config.run_name or "{}-e{}h{}-{}-s{}-{}".format(
        time.strftime("%Y%m%d-%H%M%S"), config.embed_dim, config.num_heads, config.ablation or "base",
        config.seed, uuid.uuid4().hex[:6])
    run_dir = Path(config.out_dir) / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def epoch_line(epoch: int, epochs: int, row: dict) -> str:
    # "Val loss: X, Acc: Y%" comes last: old scripts split the line on "," and read part 2 as "Acc: Y%".
    return (f"Epoch {epoch}/{epochs} | train loss {row['train_loss']:.4f} | lr {row['lr']:.2e} | "
            f"grad norm {row['grad_norm']:.3f} | {row['samples_per_s']:.0f} samples/s | "
            f"Val loss: {row['val_loss']:.4f}, Acc: {100 * row['val_accuracy']:.2f}%")


# ------------------------------------------------------------------------- training
def train_epoch(step: TrainStep, scheduler, batches, device: torch.device,
                epoch: int) -> tuple[float, float, int, int, float]:
    """One pass; returns (mean loss, mean unclipped grad norm, samples, real tokens, seconds).

    Losses and norms stay on the device; every CHECK_EVERY steps one host sync checks that
    the loss is finite (TrainingDiverged names the first bad step).
    """
    t0, losses, norms, samples, tokens, checked = time.perf_counter(), [], [], 0, 0, 0
    for batch in batches:
        tokens += int(batch.pad_mask.numel() - batch.pad_mask.sum())  # on the host, before the copy
        samples += len(batch.labels)
        batch = batch.to(device)
        loss, norm = step(batch.ids, batch.pad_mask, batch.labels)
        scheduler.step()
        losses.append(loss)
        norms.append(norm)
        if len(losses) - checked >= CHECK_EVERY:
            checked = _check_finite(losses, checked, epoch)
    _check_finite(losses, checked, epoch)
    loss_mean, norm_mean = (torch.stack(v).cpu().double().mean().item() for v in (losses, norms))
    return loss_mean, norm_mean, samples, tokens, time.perf_counter() - t0


def _check_finite(losses: list[torch.Tensor], start: int, epoch: int) -> int:
    window = torch.stack(losses[start:])
    bad = (~torch.isfinite(window)).nonzero()
    if len(bad):
        i = int(bad[0, 0])
        raise TrainingDiverged(f"loss became {window[i].item()} at epoch {epoch}, step {start + i + 1}")
    return len(losses)


def train(config: RunConfig, *, dataset: Dataset | None = None, run_dir: str | Path | None = None,
          on_epoch: Callable[[int, dict], None] | None = None, log: Callable[[str], None] | None = print,
          progress: bool | None = None) -> RunResult:
    """Train one model; write its run folder; return the summary.

    A non-finite loss ends the run with status "failed" (the best checkpoint so far is kept);
    Ctrl-C writes status "interrupted" and re-raises; any other exception is recorded as
    "failed" and re-raised. `on_epoch(epoch, metrics_row)` is called after every epoch.
    """
    log = log or (lambda _msg: None)
    progress = sys.stderr.isatty() if progress is None else progress
    if config.threads:
        torch.set_num_threads(config.threads)
    device = select_device(config.device)
    dataset = dataset or data_mod.load_dataset(config, progress=progress)
    run_dir = Path(run_dir) if run_dir else new_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", config.to_dict())
    started = time.time()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = TextClassifier.from_config(config, dataset.vocab_size, dataset.num_classes).to(device)
    result = RunResult(run_dir, "running", params=model.parameter_counts())
    summary = {"status": "running", "device": str(device), "torch": torch.__version__, "allocator": allocator.current(),
               "params": result.params,
               "data": {k: dataset.info[k] for k in ("rows", "cache_key", "tokenizer")}}
    write_json(run_dir / "final.json", summary)

    optimizer = make_optimizer(model, config, device)
    steps_per_epoch = math.ceil(len(dataset.train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.epochs * steps_per_epoch, config.warmup))
    amp = amp_dtype(config.precision, device)
    step = TrainStep(model, optimizer, config, amp, wants_compile(config, device, len(dataset.train)), log)
    summary.update(precision=str(amp or torch.float32).replace("torch.", ""), compiled=step.compiled)
    best_state, train_seconds, train_samples, train_tokens = None, 0.0, 0, 0
    with open(run_dir / "metrics.csv", "w", newline="") as metrics_file:
        writer = csv.DictWriter(metrics_file, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        try:
            for epoch in range(1, config.epochs + 1):
                model.train()
                lr_now = optimizer.param_groups[0]["lr"]
                batches = iterate_batches(dataset.train, config.batch_size, config.max_len, generator)
                if progress:
                    from tqdm import tqdm
                    batches = tqdm(batches, total=steps_per_epoch, desc=f"Epoch {epoch}/{config.epochs}", leave=False)
                loss_mean, norm_mean, samples, tokens, elapsed = train_epoch(step, scheduler, batches, device, epoch)
                train_seconds, train_samples, train_tokens = train_seconds + elapsed, train_samples + samples, train_tokens + tokens
                val = evaluate(model, dataset.val, dataset.num_classes, device, config.eval_batch_size, config.max_len,
                               config.precision)
                row = {"epoch": epoch, "train_loss": loss_mean, "val_loss": val.loss,
                       "val_accuracy": val.accuracy, "val_macro_f1": val.macro_f1, "lr": lr_now,
                       "grad_norm": norm_mean, "samples_per_s": samples / elapsed,
                       "tokens_per_s": tokens / elapsed, "epoch_time_s": elapsed}
                writer.writerow(row)
                metrics_file.flush()
                result.history.append(row)
                if result.best_val_accuracy is None or val.accuracy > result.best_val_accuracy:
                    result.best_epoch, result.best_val_accuracy = epoch, val.accuracy
                    save_checkpoint(run_dir / "best.pt", model, config, dataset, epoch, val)
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                log(epoch_line(epoch, config.epochs, row))
                if on_epoch:
                    on_epoch(epoch, row)
            result.status = "completed"
        except TrainingDiverged as exc:
            result.status, result.reason = "failed", str(exc)
            log(f"newslab: run failed: {exc}; best checkpoint so far kept in {run_dir}")
        except KeyboardInterrupt:
            result.status, result.reason = "interrupted", "interrupted by the user (Ctrl-C)"
            _finish(result, summary, started, train_seconds, train_samples, train_tokens)
            raise
        except BaseException as exc:
            result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"
            _finish(result, summary, started, train_seconds, train_samples, train_tokens)
            raise

    if best_state is not None:  # the test split is evaluated once, on the selected checkpoint
        model.load_state_dict(best_state)
        val = evaluate(model, dataset.val, dataset.num_classes, device, config.eval_batch_size, config.max_len,
                       config.precision)
        test = evaluate(model, dataset.test, dataset.num_classes, device, config.eval_batch_size, config.max_len,
                        config.precision)
        result.test_accuracy, result.test_macro_f1 = test.accuracy, test.macro_f1
        summary.update(test_loss=test.loss)
        write_json(run_dir / "predictions.json", {
            "val": val.predictions.tolist(), "val_labels": dataset.val.labels.tolist(),
            "test": test.predictions.tolist(), "test_labels": dataset.test.labels.tolist()})
    _finish(result, summary, started, train_seconds, train_samples, train_tokens)
    if result.status == "completed":
        log(f"Best epoch {result.best_epoch}: val acc {100 * result.best_val_accuracy:.2f}% | "
            f"test acc {100 * result.test_accuracy:.2f}%, macro-F1 {result.test_macro_f1:.4f} | {run_dir}")
    return result


def _finish(result: RunResult, summary: dict, started: float, seconds: float, samples: int, tokens: int) -> None:
    result.wall_time_s = time.time() - started
    result.samples_per_s = samples / seconds if seconds else 0.0
    result.tokens_per_s = tokens / seconds if seconds else 0.0
    fields = {k: v for k, v in asdict(result).items() if k not in ("run_dir", "history")}
    summary.update(fields, epochs_completed=len(result.history))
    write_json(result.run_dir / "final.json", summary)


# ------------------------------------------------------------------ reuse of a run
def evaluate_run(run_dir: str | Path, csv_path: str | Path | None = None, data_dir: str | Path | None = None,
                 device: str = "cpu") -> EvalResult:
    """Reload best.pt and evaluate it on the run's test.csv (or any CSV in the same format)."""
    run = load_run(run_dir, device)
    if csv_path is None:
        folder = Path(data_dir) if data_dir else run.config.resolved_data_dir
        csv_path = data_mod.ensure_data(folder) / "test.csv"
    rows = data_mod.read_split(Path(csv_path), len(run.class_names), run.config.normalize)
    split = EncodedSplit.build(run.tokenizer, rows)
    return evaluate(run.model, split, len(run.class_names), torch.device(device), run.config.eval_batch_size,
                    run.config.max_len, run.config.precision)


@torch.inference_mode()
def predict(run: LoadedRun, texts: list[str]) -> torch.Tensor:
    """Class probabilities (N, K) for raw texts, normalized as in training."""
    if run.config.normalize:
        texts = [data_mod.normalize_text(t) for t in texts]
    split = EncodedSplit.build(run.tokenizer, data_mod.Split(texts, [0] * len(texts)))
    device = next(run.model.parameters()).device
    return evaluate(run.model, split, len(run.class_names), device, run.config.eval_batch_size,
                    run.config.max_len, run.config.precision).probabilities
