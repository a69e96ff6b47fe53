"""train(config) -> RunResult: the training loop, read top to bottom.

Data, model, optimizer and schedule are set up; each epoch trains, evaluates on the validation
split and keeps the best checkpoint (or, with --stop-epoch, that epoch's); --patience ends the loop
when validation accuracy stalls. The kept checkpoint is then evaluated once on the test split.
Every file of the run folder is written through runs.RunRecorder, which also writes the final
status however the loop ends (a diverged loss, an exception, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import torch

from . import allocator
from .config import OptimConfig, RunConfig
from .data import Batch, Dataset, cache_dir, iterate_batches, load_dataset
from .errors import ConfigError, NewslabError
from .model import TextClassifier
from .pretrain import load_encoder, pretrained_encoder
from .runs import RunRecorder, RunResult, evaluate, select_device
from .step import StepResult, TrainStep, amp_dtype, lr_lambda, wants_compile
from .teacher import teacher_probabilities

CHECK_EVERY = 32  # steps between NaN/inf checks of the loss (each check is one host sync)
PROGRESS_EVERY_S = 30.0  # off a terminal: seconds between progress lines


class TrainingDiverged(NewslabError):
    pass


def layer_depths(model: TextClassifier) -> dict[str, int]:
    """Each parameter's depth from the top: 0 for the head and final norm, i for the i-th block from the top,
    and the embeddings (token, positions) below the lowest block."""
    blocks = len(model.blocks)
    depth = {}
    for name, _ in model.named_parameters():
        if name.startswith("blocks."):
            depth[name] = blocks - int(name.split(".")[1])
        elif name.startswith(("tok_emb.", "positions.")):
            depth[name] = blocks + 1
        else:  # head, ln_f, and a relative bias shared by every layer (the encoder's, as the top block's)
            depth[name] = 1 if name.startswith("attention_positions.") else 0
    return depth


def set_finetuning(model: TextClassifier, mode: str) -> None:
    """--finetune partial: token embedding and positional parameters (learned, relative) frozen; frozen: only the
    classifier head trains."""
    for name, p in model.named_parameters():
        if mode == "frozen" and not name.startswith("head."):
            p.requires_grad_(False)
        elif mode == "partial" and name.startswith(("tok_emb.", "positions.", "attention_positions.")):
            p.requires_grad_(False)


def make_optimizer(model: TextClassifier, config: OptimConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only; frozen parameters left out; with
    --layer-lr-decay d, a parameter k layers below the top trains at lr * d^k."""
    depth = layer_depths(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = []
    for k in sorted({depth[n] for n, _ in named}):
        scale = config.layer_lr_decay**k
        for decayed in (True, False):
            params = [p for n, p in named if depth[n] == k and (p.dim() >= 2) == decayed]
            if params:
                wd = config.weight_decay if decayed else 0.0
                groups.append({"params": params, "weight_decay": wd, "lr": config.lr * scale})
    fused = device.type in ("cuda", "cpu")  # fused AdamW kernels exist for both since torch 2.4
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), fused=fused)


def epoch_line(epoch: int, epochs: int, row: dict) -> str:
    # "Val loss: X, Acc: Y%" comes last and holds the line's only comma: old scripts split the line on ","
    # and read part 2 as "Acc: Y%".
    return (
        f"Epoch {epoch}/{epochs} | train loss {row['train_loss']:.4f} "
        f"(smoothed; plain {row['train_loss_unsmoothed']:.4f}) | mean lr {row['lr']:.2e} | "
        f"grad norm {row['grad_norm']:.3f} | {row['samples_per_s']:.0f} samples/s | "
        f"Val loss: {row['val_loss']:.4f}, Acc: {100 * row['val_accuracy']:.2f}%"
    )


class ProgressLines:
    """Off a terminal (pipes, nohup, notebooks), one line every PROGRESS_EVERY_S seconds, so a long epoch
    is seen to be alive: where the run is, its loss and speed, and the training time it has left."""

    def __init__(self, epochs: int, steps_per_epoch: int, batch_size: int, write: Callable[[str], None]):
        self.epochs, self.steps, self.batch_size, self.write = epochs, steps_per_epoch, batch_size, write
        self.started = self.last = time.perf_counter()
        self.done = 0

    def __call__(self, epoch: int, step: int, loss: torch.Tensor) -> None:
        self.done += 1
        now = time.perf_counter()
        if now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        rate = self.done / (now - self.started)  # steps/s over the run so far
        left = int((self.epochs * self.steps - self.done) / rate)
        self.write(
            f"Epoch {epoch}/{self.epochs} | step {step}/{self.steps} | train loss {float(loss):.4f} | "
            f"{rate * self.batch_size:.0f} samples/s | training left ~{left // 60}:{left % 60:02d}"
        )


class EpochStats(NamedTuple):
    """One training pass: its means and counts."""

    loss: float  # mean training objective (label-smoothed)
    loss_unsmoothed: float  # mean plain cross-entropy, comparable with the validation loss
    grad_norm: float  # mean unclipped gradient norm
    lr: float  # mean lr over the epoch's steps
    samples: int
    tokens: int  # real (non-padding) tokens
    seconds: float


def train_epoch(
    step: Callable[..., StepResult],
    scheduler,
    batches: Iterable[Batch],
    device: torch.device,
    epoch: int,
    on_step: Callable[[int, int, torch.Tensor], None] | None = None,
    teacher: torch.Tensor | None = None,
) -> EpochStats:
    """One pass of `step` (a TrainStep) over the batches; returns the epoch's means and counts.
    `teacher`: (training rows, classes) probabilities on the device, looked up by each batch's row numbers.

    Losses and norms stay on the device; every CHECK_EVERY steps one host sync checks that
    the loss is finite (TrainingDiverged names the first bad step). `on_step(epoch, step, loss)`
    follows every step (ProgressLines reads the loss, a sync, only when it prints).
    """
    t0, losses, plain, norms, samples, tokens, checked = time.perf_counter(), [], [], [], 0, 0, 0
    lr_sum = 0.0  # the lr each step used: its mean is the epoch's (the first step's would hide a decay)
    for batch in batches:
        tokens += int(batch.pad_mask.numel() - batch.pad_mask.sum())  # on the host, before the copy
        samples += len(batch.labels)
        batch = batch.to(device)
        taught = teacher[batch.index.to(device)] if teacher is not None else None
        loss, loss_unsmoothed, norm = step(batch.ids, batch.pad_mask, batch.labels, taught)
        lr_sum += scheduler.get_last_lr()[0]
        scheduler.step()
        losses.append(loss)
        plain.append(loss_unsmoothed)
        norms.append(norm)
        if on_step:
            on_step(epoch, len(losses), loss)
        if len(losses) - checked >= CHECK_EVERY:
            checked = _check_finite(losses, checked, epoch)
    _check_finite(losses, checked, epoch)
    loss_mean, plain_mean, norm_mean = (torch.stack(v).cpu().double().mean().item() for v in (losses, plain, norms))
    return EpochStats(loss_mean, plain_mean, norm_mean, lr_sum / len(losses), samples, tokens, time.perf_counter() - t0)


def _check_finite(losses: list[torch.Tensor], start: int, epoch: int) -> int:
    if start == len(losses):  # nothing new since the last check (steps a multiple of CHECK_EVERY)
        return start
    window = torch.stack(losses[start:])
    bad = (~torch.isfinite(window)).nonzero()
    if len(bad):
        i = int(bad[0, 0])
        raise TrainingDiverged(f"loss became {window[i].item()} at epoch {epoch}, step {start + i + 1}")
    return len(losses)


def train(
    config: RunConfig,
    *,
    dataset: Dataset | None = None,
    run_dir: str | Path | None = None,
    overwrite: bool = False,
    on_epoch: Callable[[int, dict], bool | None] | None = None,
    log: Callable[[str], None] | None = print,
    progress: bool | None = None,
) -> RunResult:
    """Train one model; write its run folder; return the summary.

    The checkpoint kept is the best validation epoch's, or with --stop-epoch that epoch's; --patience
    ends training early, --epochs being the maximum and the lr schedule's length either way.
    A non-finite loss ends the run with status "failed" (the checkpoint kept so far is evaluated);
    Ctrl-C and SIGTERM end it "interrupted" and re-raise; any other exception ends it "failed" and is
    re-raised. `on_epoch(epoch, metrics_row)` is called after every epoch; a true return ends training there
    (a search's pruner), the best checkpoint so far kept and tested.
    """
    quiet = log is None
    log = log or (lambda _msg: None)
    progress = sys.stderr.isatty() if progress is None else progress
    # the data's absolute location (the flag, $NEWSLAB_DATA_DIR or the default) is recorded, so the run
    # finds its data from any working directory
    config = config.replace(data_dir=str(config.data.resolved_dir.resolve()))
    model_cfg, optim, execution = config.model, config.optim, config.execution
    if execution.threads:
        torch.set_num_threads(execution.threads)
    device = select_device(execution.device)

    encoder = None
    if optim.init_from is not None:  # pretrained first (once, cached) when asked; encoded with its tokenizer
        if dataset is not None:
            raise ConfigError("--init-from encodes the data with the encoder's tokenizer: pass no dataset to train()")
        encoder = pretrained_encoder(config, log)
        config = config.replace(
            init_from=str(encoder.resolve()), tokenizer_file=str((encoder / "tokenizer.json").resolve())
        )

    with RunRecorder(config, run_dir, overwrite) as run:
        dataset = dataset or load_dataset(config.data, cache_dir(execution.out_dir), progress=progress)
        torch.manual_seed(optim.seed)
        generator = torch.Generator().manual_seed(optim.seed)
        model = TextClassifier.from_config(model_cfg, dataset.vocab_size, dataset.num_classes)
        if encoder is not None:
            load_encoder(model, encoder, model_cfg)
            set_finetuning(model, optim.finetune)
        model = model.to(device)
        optimizer = make_optimizer(model, optim, device)
        steps_per_epoch = math.ceil(len(dataset.train) / optim.batch_size)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(optim.epochs * steps_per_epoch, optim.warmup)
        )
        amp = amp_dtype(optim.precision, device)
        compile = wants_compile(config, device, len(dataset.train))
        step = TrainStep(model, optimizer, optim, amp, compile, log, execution.micro_batch_size)
        teacher = None
        if optim.distill > 0:
            cache = cache_dir(execution.out_dir)
            teacher = teacher_probabilities(dataset.train, dataset.num_classes, cache, log).to(device)
        run.start(
            device=str(device),
            torch=torch.__version__,
            allocator=allocator.current(),
            params=model.parameter_counts(),
            data={k: dataset.info[k] for k in ("rows", "cache_key", "tokenizer")},
            data_dir=dataset.info["data_dir"],
            precision=str(amp or torch.float32).replace("torch.", ""),
            compiled=step.compiled,
        )
        evaluate_split = lambda split: evaluate(
            model, split, dataset.num_classes, device, execution.eval_batch_size, model_cfg.max_len, optim.precision
        )

        last = optim.last_epoch  # the schedule above still spans --epochs: --stop-epoch only ends it sooner
        lines = None if progress or quiet else ProgressLines(last, steps_per_epoch, optim.batch_size, log)
        best_state, diverged, stale = None, None, 0  # stale: epochs since validation accuracy last improved
        try:
            for epoch in range(1, last + 1):
                model.train()
                batches: Iterable[Batch] = iterate_batches(
                    dataset.train, optim.batch_size, model_cfg.max_len, generator
                )
                if progress:  # on a terminal, a live bar; off it, ProgressLines
                    from tqdm.auto import tqdm  # a widget bar in Jupyter, text on a terminal

                    batches = tqdm(batches, total=steps_per_epoch, desc=f"Epoch {epoch}/{last}", leave=False)
                stats = train_epoch(step, scheduler, batches, device, epoch, lines, teacher)
                val = evaluate_split(dataset.val)
                row = {
                    "epoch": epoch,
                    "train_loss": stats.loss,
                    "train_loss_unsmoothed": stats.loss_unsmoothed,
                    "val_loss": val.loss,
                    "val_accuracy": val.accuracy,
                    "val_macro_f1": val.macro_f1,
                    "lr": stats.lr,
                    "grad_norm": stats.grad_norm,
                    "samples_per_s": stats.samples / stats.seconds,
                    "tokens_per_s": stats.tokens / stats.seconds,
                    "epoch_time_s": stats.seconds,
                }
                run.log_epoch(row, stats.samples, stats.tokens)
                improved = run.is_best(val.accuracy)
                stale = 0 if improved else stale + 1
                # --stop-epoch keeps that epoch's model whatever its accuracy; otherwise the best so far
                keep = epoch == optim.stop_epoch if optim.stop_epoch is not None else improved
                if keep:
                    run.save_checkpoint(model, dataset, epoch, val)
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                log(epoch_line(epoch, last, row))
                if on_epoch and on_epoch(epoch, row):
                    log(
                        f"Stopped after epoch {epoch} by its caller (a study's pruner); best epoch {run.result.best_epoch}"
                    )
                    break
                if optim.patience is not None and stale >= optim.patience and epoch < last:
                    log(
                        f"Early stop after epoch {epoch}: validation accuracy has not improved for "
                        f"{stale} epochs (--patience {optim.patience}; best epoch {run.result.best_epoch})"
                    )
                    break
        except TrainingDiverged as exc:
            diverged = str(exc)
            log(f"newslab: run failed: {exc}; best checkpoint so far kept in {run.folder.path}")

        if best_state is not None:  # the test split is evaluated once, on the selected checkpoint
            model.load_state_dict(best_state)
            run.save_predictions(evaluate_split(dataset.val), evaluate_split(dataset.test), dataset)
        result = run.finish("failed" if diverged else "completed", diverged)

    if result.status == "completed" and result.test_accuracy is not None:
        kept = "Stop" if optim.stop_epoch is not None else "Best"
        log(
            f"{kept} epoch {result.best_epoch}: val acc {100 * (result.best_val_accuracy or 0):.2f}% | "
            f"test acc {100 * result.test_accuracy:.2f}%, macro-F1 {result.test_macro_f1:.4f} | {result.run_dir}"
        )
    return result
