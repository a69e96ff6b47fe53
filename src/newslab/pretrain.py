"""Masked-language-model pretraining of the classifier's encoder, and its loading for fine-tuning.

`pretrain(config, settings, folder)` trains TextClassifier's encoder (token embedding, positions, blocks,
final norm) to predict hidden tokens of unlabelled texts — the training split's texts of the run's data
settings, and optionally extra text files — and writes into `folder`:

  encoder.safetensors   the encoder's weights under TextClassifier's names (no classifier head)
  encoder.json          the model settings, the vocabulary size, what the texts were and how many
  tokenizer.json        the tokenizer it was trained with (fine-tuning encodes with it: --tokenizer-file)
  metrics.csv           per epoch: training loss, held-out loss and accuracy on the hidden tokens
  final.json            status (running | completed), best epoch, wall time
  resume.safetensors    the last finished epoch's whole state (weights, optimizer, random generators, and its
                        counters in the metadata): a killed pretraining resumes at the next epoch
  settings.json         what it was started with: a second call with other settings is refused

Validation and test texts never enter pretraining: the texts are the training split of the run's own split
seed, and an extra line equal to a validation or test text is dropped (counted in encoder.json). 5% of the
texts are held out, with masks drawn once, to keep the best epoch.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ModelConfig, PretrainConfig, RunConfig
from .data import (
    EncodedSplit,
    Split,
    cache_dir,
    file_digests,
    iterate_batches,
    load_dataset,
    normalize_text,
    split_rows,
)
from .errors import ConfigError, NewslabError
from .files import atomic_write, exclusive_lock, write_json
from .model import TextClassifier
from .runs import select_device
from .step import amp_dtype, autocast, lr_lambda

ARCHITECTURE = ("embed_dim", "num_heads", "num_layers", "ffn_dim", "ffn", "pos_encoding", "max_len")
HELD_OUT = 0.05  # of the pretraining texts: the held-out loss that keeps the best epoch
WARMUP = 0.05
Log = Callable[[str], None]


class MaskedLanguageModel(nn.Module):
    """The classifier's encoder with a [MASK] embedding and a prediction head tied to the token embedding."""

    def __init__(self, encoder: TextClassifier):
        super().__init__()
        vocab, width = encoder.tok_emb.weight.shape
        self.encoder = encoder
        self.mask_vector = nn.Parameter(torch.randn(width))  # [MASK], at the scale of a scaled token embedding
        self.transform = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width))
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor, masked: torch.Tensor, chosen: torch.Tensor):
        """Logits (N, vocab) at the N `chosen` positions; `masked` ones (B, T) see [MASK] instead of their token."""
        x = self.encoder.embed(ids)  # (B, T, C)
        x = torch.where(masked[..., None], self.mask_vector.to(x.dtype), x)
        h, _ = self.encoder.encode(x, pad_mask)  # (B, T, C)
        return F.linear(self.transform(h[chosen]), self.encoder.tok_emb.weight, self.bias)  # (N, vocab)


def corrupt(ids: torch.Tensor, pad_mask: torch.Tensor, prob: float, vocab_size: int, generator: torch.Generator):
    """BERT's corruption: each real token is chosen with `prob` (one at least per batch); a chosen token is
    masked (80%), replaced by a random word (10%) or kept (10%). Returns (inputs, masked, chosen)."""
    real = ~pad_mask
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & real
    if not chosen.any():
        chosen[real.nonzero()[0].unbind()] = True
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(2, vocab_size, ids.shape, generator=generator)  # never [PAD] or [UNK]
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, ids)
    return inputs, chosen & (u < 0.8), chosen


def pretraining_texts(config: RunConfig, settings: PretrainConfig) -> tuple[list[str], dict]:
    """The training split's texts and the extra files' lines, without any validation or test text."""
    parts = split_rows(config.data.resolved_dir, config.data)
    sealed = set(parts.val.texts) | set(parts.test.texts)
    texts, dropped = list(parts.train.texts), 0
    for name in settings.text_files:
        try:
            lines = Path(name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise NewslabError(f"--text {name}: {exc}") from None
        extra = [normalize_text(line) if config.data.normalize else line.strip() for line in lines if line.strip()]
        dropped += sum(t in sealed for t in extra)
        texts += [t for t in extra if t not in sealed]
    counts = {"training_rows": len(parts.train.texts), "extra_lines": len(texts) - len(parts.train.texts)}
    return texts, {**counts, "dropped_validation_or_test": dropped}


def _split(texts: list[str], seed: int) -> tuple[list[str], list[str]]:
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed)).tolist()
    held = max(1, round(HELD_OUT * len(texts)))
    return [texts[i] for i in order[held:]], [texts[i] for i in order[:held]]


def _encoded(tokenizer, texts: list[str]) -> EncodedSplit:
    return EncodedSplit.build(tokenizer, Split(texts, [0] * len(texts)))


@torch.inference_mode()
def held_out_loss(
    model: MaskedLanguageModel, split: EncodedSplit, settings: PretrainConfig, max_len: int, amp, device: torch.device
):
    """Loss and accuracy on the hidden tokens of the held-out texts, with the same masks every epoch."""
    model.eval()
    generator = torch.Generator().manual_seed(settings.seed + 1)
    total = right = count = 0.0
    vocab = model.bias.numel()
    for batch in iterate_batches(split, 256, max_len):
        inputs, masked, chosen = corrupt(batch.ids, batch.pad_mask, settings.mask_prob, vocab, generator)
        with autocast(device, amp):
            logits = model(*(t.to(device) for t in (inputs, batch.pad_mask, masked, chosen))).float()
        targets = batch.ids[chosen].to(device)
        total += float(F.cross_entropy(logits, targets, reduction="sum"))
        right += float((logits.argmax(-1) == targets).sum())
        count += len(targets)
    return total / count, right / count


def _save_state(folder: Path, model: nn.Module, optimizer, scheduler, generator, state: dict) -> None:
    """The whole state after an epoch, in one file written atomically: its counters ride in the metadata, so the
    weights and the epoch they belong to can never disagree."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for i, values in opt["state"].items():
        tensors.update({f"optimizer.{i}.{k}": v.detach().cpu().contiguous() for k, v in values.items()})
    tensors["generator"], tensors["torch_rng"] = generator.get_state(), torch.get_rng_state()  # masks; dropout
    if torch.cuda.is_available():
        tensors.update({f"cuda_rng.{i}": t for i, t in enumerate(torch.cuda.get_rng_state_all())})
    meta = json.dumps({**state, "param_groups": opt["param_groups"], "scheduler": scheduler.state_dict()})
    atomic_write(folder / "resume.safetensors", lambda tmp: save_file(tensors, tmp, metadata={"state": meta}))


def _load_state(folder: Path, model: nn.Module, optimizer, scheduler, generator) -> dict:
    with safe_open(folder / "resume.safetensors", framework="pt") as handle:
        state = json.loads(handle.metadata()["state"])
    tensors = load_file(folder / "resume.safetensors")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, i, name = key.split(".", 2)
            per_param.setdefault(int(i), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(tensors["generator"])
    torch.set_rng_state(tensors["torch_rng"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda_rng.")), key=lambda k: int(k[9:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return state


def _save_weights(path: Path, encoder: TextClassifier) -> None:
    weights = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items() if not k.startswith("head.")}
    atomic_write(path, lambda tmp: save_file(weights, tmp))


def pretrain(config: RunConfig, settings: PretrainConfig, folder: str | Path, log: Log | None = print) -> Path:
    """Pretrain the encoder of `config`'s model on its training texts (see the module docstring); resumes a
    folder left by a killed pretraining, returns at once when the folder holds a completed one."""
    log = log or (lambda _msg: None)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(folder.with_suffix(".lock")):  # two workers needing one encoder: one pretrains it
        wanted = _settings(config, settings)
        recorded = folder / "settings.json"
        if recorded.is_file() and json.loads(recorded.read_text()) != wanted:
            raise ConfigError(
                f"{folder} holds a pretraining with other settings (its settings.json); choose another --name"
            )
        write_json(recorded, wanted)
        final = folder / "final.json"
        if final.is_file() and json.loads(final.read_text()).get("status") == "completed":
            return folder
        return _pretrain(config, settings, folder, log)


def _settings(config: RunConfig, settings: PretrainConfig) -> dict:
    """What a pretraining depends on, as JSON: the architecture, the data settings, its own settings."""
    model = {k: getattr(config.model, k) for k in (*ARCHITECTURE, "dropout")}
    data = {k: v for k, v in config.data.settings().items() if k != "tokenizer_file"}
    return json.loads(json.dumps({"model": model, "data": data, "pretraining": asdict(settings)}, default=str))


def _pretrain(config: RunConfig, settings: PretrainConfig, folder: Path, log: Log) -> Path:
    started = time.time()
    dataset = load_dataset(config.data, cache_dir(config.execution.out_dir), progress=False)
    texts, counts = pretraining_texts(config, settings)
    train_texts, held_texts = _split(texts, settings.seed)
    train, held = _encoded(dataset.tokenizer, train_texts), _encoded(dataset.tokenizer, held_texts)
    device = select_device(config.execution.device)
    amp = amp_dtype(config.optim.precision, device)
    torch.manual_seed(settings.seed)
    model_config = config.model
    encoder = TextClassifier.from_config(model_config, dataset.vocab_size, dataset.num_classes)
    encoder.tok_emb.weight.requires_grad_(True)  # a frozen-embedding ablation still pretrains its embedding
    model = MaskedLanguageModel(encoder).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(0.9, 0.98),
    )
    steps = math.ceil(len(train) / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(settings.epochs * steps, WARMUP))
    generator = torch.Generator().manual_seed(settings.seed)
    state: dict[str, Any] = {"epoch": 0, "best_loss": math.inf, "best_epoch": None, "history": [], "seconds": 0.0}
    if (folder / "resume.safetensors").is_file():
        try:
            state = _load_state(folder, model, optimizer, scheduler, generator)
        except Exception as exc:  # a torn or foreign file: say which, never guess
            raise NewslabError(
                f"{folder / 'resume.safetensors'}: not a readable resume state ({type(exc).__name__}: {exc}); "
                "delete it to pretrain this folder from its first epoch"
            ) from None
        log(f"pretrain: resuming {folder} after epoch {state['epoch']}")
    else:
        atomic_write(folder / "tokenizer.json", lambda tmp: Path(tmp).write_text(dataset.tokenizer.to_json()))
    write_json(folder / "final.json", {"status": "running"})
    vocab = dataset.vocab_size
    for epoch in range(state["epoch"] + 1, settings.epochs + 1):
        model.train()
        t0, losses = time.time(), []
        for batch in iterate_batches(train, settings.batch_size, model_config.max_len, generator):
            inputs, masked, chosen = corrupt(batch.ids, batch.pad_mask, settings.mask_prob, vocab, generator)
            with autocast(device, amp):
                logits = model(inputs.to(device), batch.pad_mask.to(device), masked.to(device), chosen.to(device))
            loss = F.cross_entropy(logits.float(), batch.ids[chosen].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())
        train_loss = float(torch.stack(losses).mean())
        if not math.isfinite(train_loss):
            raise NewslabError(f"pretrain: the loss became {train_loss} at epoch {epoch} ({folder})")
        loss, accuracy = held_out_loss(model, held, settings, model_config.max_len, amp, device)
        row = {"epoch": epoch, "train_loss": train_loss, "held_out_loss": loss, "held_out_accuracy": accuracy}
        state["history"].append({**row, "seconds": time.time() - t0})
        state["seconds"] += time.time() - t0
        if loss < state["best_loss"]:
            state["best_loss"], state["best_epoch"] = loss, epoch
            _save_weights(folder / "encoder.safetensors", encoder)
        state["epoch"] = epoch
        _save_state(folder, model, optimizer, scheduler, generator, state)
        log(
            f"pretrain epoch {epoch}/{settings.epochs} | train loss {train_loss:.4f} | held-out loss {loss:.4f}, "
            f"accuracy {100 * accuracy:.2f}% | {time.time() - t0:.0f} s"
        )
    lines = ["epoch,train_loss,held_out_loss,held_out_accuracy,seconds"]
    lines += [
        ",".join(str(h[k]) for k in ("epoch", "train_loss", "held_out_loss", "held_out_accuracy", "seconds"))
        for h in state["history"]
    ]
    atomic_write(folder / "metrics.csv", lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    write_json(
        folder / "encoder.json",
        {
            "model": {k: getattr(model_config, k) for k in ARCHITECTURE},
            "vocab_size": vocab,
            "pretraining": asdict(settings),
            "data": config.data.settings(),
            "files": {name: dataset.info["files"][name]["sha256"] for name in ("train.csv", "test.csv")},
            "texts": {**counts, "used": len(texts), "held_out": len(held_texts), "sha256": digest},
        },
    )
    (folder / "resume.safetensors").unlink(missing_ok=True)
    summary = {"status": "completed", "best_epoch": state["best_epoch"], "best_held_out_loss": state["best_loss"]}
    write_json(
        folder / "final.json", {**summary, "train_seconds": state["seconds"], "wall_time_s": time.time() - started}
    )
    log(f"pretrain: done in {state['seconds']:.0f} s of training; best epoch {state['best_epoch']}: {folder}")
    return folder


def encoder_key(config: RunConfig, settings: PretrainConfig, cache_key: str) -> str:
    """What a pretrained encoder depends on: the architecture, the data (files and settings) and its own settings."""
    model = {k: getattr(config.model, k) for k in ARCHITECTURE}
    payload = [model, cache_key, asdict(settings), config.model.dropout, config.optim.precision]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def pretrained_encoder(config: RunConfig, log: Log | None = print) -> Path:
    """The folder of `config`'s --init-from: a given folder as it is, or for 'pretrain' the cached encoder of this
    model and data in OUT_DIR/pretrained (pretrained first when missing, once however many runs ask)."""
    source = config.optim.init_from
    assert source is not None
    if source != "pretrain":
        described = Path(source) / "encoder.json"
        if not described.is_file():
            raise ConfigError(
                f"--init-from {source}: not a pretrained encoder (no encoder.json; `newslab pretrain` writes one)"
            )
        check_same_data(_described(described), config, f"--init-from {source}")
        return Path(source)
    settings = PretrainConfig(epochs=config.optim.pretrain_epochs, seed=0)
    base = config.replace(tokenizer_file=None)  # the encoder's own tokenizer: trained on the training texts
    dataset = load_dataset(base.data, cache_dir(config.execution.out_dir), progress=False)
    folder = Path(config.execution.out_dir) / "pretrained" / encoder_key(base, settings, dataset.info["cache_key"])
    return pretrain(base, settings, folder, log)


def _described(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--init-from {path.parent}: {path.name} is unreadable ({exc})") from None
    if not isinstance(info, dict) or not isinstance(info.get("model"), dict):
        raise ConfigError(f"--init-from {path.parent}: {path.name} is not an encoder description")
    return info


def check_same_data(info: dict, config: RunConfig, where: str) -> None:
    """Refuse an encoder pretrained on other data settings or files: its texts may hold this run's validation rows
    (another split seed, validation fraction or training subset), and its tokenizer was trained on them."""
    ours = {k: v for k, v in config.data.settings().items() if k != "tokenizer_file"}
    theirs = {k: v for k, v in info.get("data", {}).items() if k != "tokenizer_file"}
    differ = sorted(k for k in ours if ours.get(k) != theirs.get(k))
    if differ:
        settings = ", ".join(f"{k} {theirs.get(k)!r} (this run {ours[k]!r})" for k in differ)
        raise ConfigError(f"{where}: the encoder was pretrained with other data settings: {settings}")
    data_dir = config.data.resolved_dir
    for name, digest in info.get("files", {}).items():
        if file_digests(data_dir / name)["sha256"] != digest:
            raise ConfigError(f"{where}: the encoder was pretrained on another {name} than {data_dir / name}")


def load_encoder(model: TextClassifier, folder: str | Path, model_config: ModelConfig) -> dict:
    """Copy a pretrained encoder's weights into `model` (its head stays as initialised); ConfigError naming the
    folder and the setting when the architectures differ. Returns the encoder's description (encoder.json)."""
    folder = Path(folder)
    described = folder / "encoder.json"
    if not described.is_file() or not (folder / "encoder.safetensors").is_file():
        raise ConfigError(f"--init-from {folder}: not a pretrained encoder (no encoder.json / encoder.safetensors)")
    info = _described(described)
    for key in ARCHITECTURE:
        if info["model"].get(key) != getattr(model_config, key):
            raise ConfigError(
                f"--init-from {folder}: the encoder has {key} {info['model'].get(key)!r}, this run "
                f"{getattr(model_config, key)!r}; they must match"
            )
    try:
        weights = load_file(folder / "encoder.safetensors")
    except Exception as exc:  # safetensors raises its own error types for a torn file
        raise ConfigError(
            f"--init-from {folder}: encoder.safetensors is unreadable ({type(exc).__name__}: {exc})"
        ) from None
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith("head.") for k in missing):
        raise ConfigError(f"--init-from {folder}: weights do not fit this model ({(unexpected or missing)[:3]})")
    return info
