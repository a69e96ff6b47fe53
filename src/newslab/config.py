"""Run settings: one dataclass of plain serializable values, and the named ablations.

Every field is also a `newslab train` flag (`embed_dim` -> `--embed-dim`); the help text
lives here, next to the default, so the CLI and the docs never drift from the config.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class NewslabError(Exception):
    """An expected failure (bad input, missing data): reported in one line, no traceback."""


class ConfigError(NewslabError, ValueError):
    pass


# The seed manual's six ablations, each a change to plain config fields (timm-style
# variants are constructor flags; here they are config values the model reads).
ABLATIONS: dict[str, dict[str, Any]] = {
    "no_pe": {"pos_encoding": "none"},
    "single_head": {"num_heads": 1},
    "no_ffn": {"ffn": False},
    "freeze_emb": {"freeze_embedding": True},
    "no_dropout": {"dropout": 0.0},
    "clip_grad": {"clip_grad": True},
}
POS_ENCODINGS = ("sinusoidal", "learned", "none")
TOKENIZERS = ("wordpiece", "bpe", "word")
DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_DATA_DIR = "data/ag_news"


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class RunConfig:
    # -- optimisation ------------------------------------------------------------------
    epochs: int = _f(5, "passes over the training split (5: as accurate as 10 on the stand-in in half the time, README)")
    batch_size: int = _f(64, "training batch size (sequences)")
    lr: float = _f(1e-3, "peak AdamW learning rate")
    weight_decay: float = _f(0.1, "AdamW decoupled weight decay (matrices and embeddings only)")
    warmup: float = _f(0.1, "linear warm-up, as a fraction of all training steps; then linear decay to 0")
    label_smoothing: float = _f(0.1, "label smoothing of the cross-entropy loss")
    clip_grad: bool = _f(False, "clip the global gradient norm at --max-grad-norm (ablation clip_grad)")
    max_grad_norm: float = _f(1.0, "max global gradient norm when --clip-grad is on")
    # -- model -------------------------------------------------------------------------
    embed_dim: int = _f(128, "token embedding / model width")
    num_heads: int = _f(4, "attention heads per layer (must divide --embed-dim)")
    num_layers: int = _f(2, "Transformer encoder blocks")
    ffn_dim: int | None = _f(None, "FFN hidden size", shown="4 x embed_dim")
    ffn: bool = _f(True, "use the FFN sub-layer (off = ablation no_ffn: no module, no residual)")
    dropout: float = _f(0.1, "dropout on embeddings, attention weights, residual branches and the head")
    pos_encoding: str = _f("sinusoidal", "positional encoding: sinusoidal | learned | none", choices=POS_ENCODINGS)
    freeze_embedding: bool = _f(False, "keep the token embedding at its initial values (ablation freeze_emb)")
    ablation: str | None = _f(None, "named ablation: none | " + " | ".join(ABLATIONS), choices=("none", *ABLATIONS),
                              shown="none")
    # -- data --------------------------------------------------------------------------
    data_dir: str | None = _f(None, "folder with train.csv, test.csv, classes.txt",
                              shown=f"$NEWSLAB_DATA_DIR, else {DEFAULT_DATA_DIR}")
    max_len: int = _f(128, "truncate token sequences to this length")
    # word: as accurate as WordPiece on the stand-in and the only deterministic trainer (README)
    tokenizer: str = _f("word", "tokenizer model: word | wordpiece | bpe", choices=TOKENIZERS)
    vocab_size: int = _f(16000, "tokenizer vocabulary size (an upper bound: min_freq may cut it)")
    min_freq: int = _f(2, "minimum training-split frequency for a vocabulary entry")
    normalize: bool = _f(True, "undo AG News artefacts (' #39;', ' quot;', '\\' breaks, HTML tags)")
    val_fraction: float = _f(0.05, "fraction of train.csv held out (stratified) for validation")
    split_seed: int = _f(0, "seed of the validation split (fixed across run seeds on purpose)")
    train_limit: int | None = _f(None, "use only this many training rows (stratified subset; for quick runs)",
                                 shown="all rows")
    # -- execution ---------------------------------------------------------------------
    seed: int = _f(0, "seed for initialisation, dropout and batch order")
    device: str = _f("auto", "auto | cpu | cuda | mps", choices=DEVICES)
    threads: int | None = _f(None, "torch CPU threads", shown="torch's default, one per core")
    eval_batch_size: int = _f(256, "batch size for validation / test passes")
    precision: str = _f("auto", "autocast precision: auto (bf16 on CUDA and on CPUs with native bf16, "
                        "i.e. AVX512-BF16 or AMX; fp32 elsewhere) | bf16 | fp32", choices=("auto", "bf16", "fp32"))
    compile: str = _f("auto", "torch.compile the model for training: auto (CUDA runs of >= 100,000 training samples, "
                      "epochs x rows; never on CPU, where it measured no faster) | on | off", choices=("auto", "on", "off"))
    out_dir: str = _f("outputs", "output root; runs go to OUT_DIR/runs/<run-id>")
    run_name: str | None = _f(None, "run folder name", shown="time stamp + settings")

    def __post_init__(self) -> None:
        if self.ablation in ("", "none"):
            self.ablation = None  # "none" names the baseline in specs and on the command line
        if self.ablation is not None:
            if self.ablation not in ABLATIONS:
                raise ConfigError(f"--ablation {self.ablation!r} is unknown; choose one of: {', '.join(ABLATIONS)}")
            for name, value in ABLATIONS[self.ablation].items():
                setattr(self, name, value)
        self._validate()

    def _validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value is not None and value not in choices:
                raise ConfigError(f"{flag(f.name)} {value!r} is not one of: {' | '.join(choices)}")
        positive = ["epochs", "batch_size", "embed_dim", "num_heads", "num_layers", "max_len",
                    "vocab_size", "min_freq", "eval_batch_size", "ffn_dim", "threads", "train_limit"]
        for name in positive:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ConfigError(f"{flag(name)} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr!r}")
        if self.max_grad_norm <= 0:
            raise ConfigError(f"--max-grad-norm must be > 0, got {self.max_grad_norm!r}")
        for name in ("dropout", "warmup", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{flag(name)} must be in [0, 1), got {getattr(self, name)!r}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"--val-fraction must be in (0, 0.5), got {self.val_fraction!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight-decay must be >= 0, got {self.weight_decay!r}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"--embed-dim {self.embed_dim} is not divisible by --num-heads {self.num_heads}")
        if self.pos_encoding == "sinusoidal" and self.embed_dim % 2:
            raise ConfigError(f"--embed-dim {self.embed_dim} must be even for sinusoidal --pos-encoding")

    # -- derived values ----------------------------------------------------------------
    @property
    def ffn_hidden(self) -> int:
        return self.ffn_dim or 4 * self.embed_dim

    @property
    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir or os.environ.get("NEWSLAB_DATA_DIR") or DEFAULT_DATA_DIR)

    # -- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}")
        for f in fields(cls):
            if f.name in values:
                values = {**values, f.name: coerce(f, values[f.name], source)}
        return cls(**values)

    def replace(self, **changes: Any) -> "RunConfig":
        return type(self).from_dict({**self.to_dict(), **changes})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_type(f: dataclasses.Field) -> type:
    """The plain type behind an annotation such as 'int | None'."""
    text = str(f.type)
    for name, typ in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if text.startswith(name):
            return typ
    raise TypeError(f"unsupported config annotation {text}")


def coerce(f: dataclasses.Field, value: Any, source: str) -> Any:
    """Check a value read from a file or flag against the field's type (ints widen to float)."""
    typ = field_type(f)
    if value is None:
        if "None" in str(f.type):
            return None
        raise ConfigError(f"{source}: {f.name} may not be null")
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads '1e-3' as a string
        except ValueError:
            pass
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {f.name} must be {typ.__name__}, got {value!r}")
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file of RunConfig fields (validated by RunConfig.from_dict)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read ({exc.strerror})") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config {path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})".replace("\n", " ")) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path}: expected a mapping of field: value")
    return {k.replace("-", "_"): v for k, v in values.items()}
