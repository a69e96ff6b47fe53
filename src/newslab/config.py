"""Run settings: a RunConfig composed of four parts whose roles are their types, and the ablations.

- ModelConfig: the architecture; stored beside the weights and enough to rebuild the model.
- DataConfig: what the data is and how it is encoded; its settings (not its location) key the data cache.
- OptimConfig: how the model is trained: schedule, regularisation, seed, arithmetic.
- ExecutionConfig: where and how a run executes; changing it never changes what a run computes.

Every field is also a `newslab train` flag (`embed_dim` -> `--embed-dim`) and a field of spec
and config files under the same flat name; help text and choices live beside the default, so
the CLI, the files and the docs never drift. Each part validates itself (errors name the flag).

An ablation is a named override of plain fields (ABLATIONS). It is recorded in the config, and
a setting that contradicts it is an error naming both (`--ablation single_head --num-heads 4`).
Ablations combine when they set different fields; two that set one field differently are refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError, NewslabError
from .positions import POSITIONAL_ENCODINGS
from .tokenization import TOKENIZERS

__all__ = [
    "ABLATIONS",
    "Ablation",
    "ConfigError",
    "DataConfig",
    "ExecutionConfig",
    "ModelConfig",
    "NewslabError",
    "OptimConfig",
    "RunConfig",
    "flag",
    "load_config_file",
]

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_DATA_DIR = "data/ag_news"
DATA_DIR_ENV = "NEWSLAB_DATA_DIR"  # the data folder of configs that name none
CONFIG_VERSION = 2  # config.json: 1 = one flat mapping (newslab 0.1), 2 = the four parts
# named recipes of `newslab train --preset NAME`: YAML files of flat settings shipped with the package
TRAIN_PRESETS = {path.stem: path for path in sorted((Path(__file__).parent / "presets").glob("*.yaml"))}


@dataclass(frozen=True)
class Ablation:
    """A named change to plain config fields, with its names for people (English, Chinese)."""

    overrides: dict[str, Any]
    label: str
    label_zh: str


# The original manual's six ablations: the one registry the CLI, the study presets and the report read.
ABLATIONS: dict[str, Ablation] = {
    "no_pe": Ablation({"pos_encoding": "none"}, "no positional encoding", "无位置编码"),
    "single_head": Ablation({"num_heads": 1}, "single head", "单头注意力"),
    "no_ffn": Ablation({"ffn": False}, "no FFN", "无前馈网络"),
    "freeze_emb": Ablation({"freeze_embedding": True}, "frozen embedding", "冻结词嵌入"),
    "no_dropout": Ablation({"dropout": 0.0}, "no dropout", "无丢弃"),
    "clip_grad": Ablation({"clip_grad": True}, "gradient clipping", "梯度裁剪"),
}
BASELINE = "none"  # the ablation value that names the unmodified model in specs and on the command line


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _positive(part: object, *names: str) -> None:
    for name in names:
        value = getattr(part, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ConfigError(f"{flag(name)} must be a positive integer, got {value!r}")


def _fraction(part: object, *names: str) -> None:
    for name in names:
        if not 0.0 <= getattr(part, name) < 1.0:
            raise ConfigError(f"{flag(name)} must be in [0, 1), got {getattr(part, name)!r}")


def _choices(part: object) -> None:
    for f in fields(part):  # type: ignore[arg-type]
        choices = f.metadata.get("choices")
        value = getattr(part, f.name)
        if choices and value is not None and value not in choices:
            raise ConfigError(f"{flag(f.name)} {value!r} is not one of: {' | '.join(choices)}")


@dataclass(frozen=True)
class ModelConfig:
    embed_dim: int = _f(128, "token embedding / model width")
    num_heads: int = _f(4, "attention heads per layer (must divide --embed-dim)")
    num_layers: int = _f(2, "Transformer encoder blocks")
    ffn_dim: int | None = _f(None, "FFN hidden size", shown="4 x embed_dim")
    ffn: bool = _f(True, "use the FFN sub-layer (off = ablation no_ffn: no module, no residual)")
    dropout: float = _f(0.1, "dropout on embeddings, attention weights, residual branches and the head")
    pos_encoding: str = _f(
        "sinusoidal", "positional encoding: " + " | ".join(POSITIONAL_ENCODINGS), choices=tuple(POSITIONAL_ENCODINGS)
    )
    max_len: int = _f(128, "truncate token sequences to this length (and the longest position encoded)")
    freeze_embedding: bool = _f(False, "keep the token embedding at its initial values (ablation freeze_emb)")
    token_dropout: float = _f(
        0.0, "word dropout: while training, each real token is left out of attention and pooling with this probability"
    )

    def __post_init__(self) -> None:
        _choices(self)
        _positive(self, "embed_dim", "num_heads", "num_layers", "ffn_dim", "max_len")
        _fraction(self, "dropout", "token_dropout")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"--embed-dim {self.embed_dim} is not divisible by --num-heads {self.num_heads}")
        encoding = POSITIONAL_ENCODINGS[self.pos_encoding]
        problem = encoding.check(self.embed_dim, self.num_heads) if encoding is not None else None
        if problem:
            raise ConfigError(problem)

    @property
    def ffn_hidden(self) -> int | None:
        """The FFN's hidden width; None when the model has no FFN sub-layer."""
        return (self.ffn_dim or 4 * self.embed_dim) if self.ffn else None


@dataclass(frozen=True)
class DataConfig:
    data_dir: str | None = _f(
        None,
        "folder with train.csv, test.csv, classes.txt",
        shown=f"$NEWSLAB_DATA_DIR, else {DEFAULT_DATA_DIR}",
        location=True,
    )
    # word: as accurate as WordPiece on the stand-in and the only deterministic trainer (README)
    tokenizer: str = _f("word", "tokenizer model: " + " | ".join(TOKENIZERS), choices=tuple(TOKENIZERS))
    vocab_size: int = _f(16000, "tokenizer vocabulary size (an upper bound: min_freq may cut it)")
    min_freq: int = _f(2, "minimum training-split frequency for a vocabulary entry")
    normalize: bool = _f(True, "undo AG News artefacts (' #39;', ' quot;', '\\' breaks, HTML tags)")
    val_fraction: float = _f(0.05, "fraction of train.csv held out (stratified) for validation")
    split_seed: int = _f(0, "seed of the validation split (fixed across run seeds on purpose)")
    train_limit: int | None = _f(
        None, "use only this many training rows (stratified subset; for quick runs)", shown="all rows"
    )
    tokenizer_file: str | None = _f(
        None,
        "a tokenizer.json to encode with instead of training one (a pretrained encoder's: --init-from sets it)",
        shown="trained on the training split",
    )

    def __post_init__(self) -> None:
        _choices(self)
        _positive(self, "vocab_size", "min_freq", "train_limit")
        if self.vocab_size < 3:  # the special tokens [PAD] and [UNK], and at least one word
            raise ConfigError(f"--vocab-size must be at least 3 ([PAD], [UNK] and one word), got {self.vocab_size!r}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"--val-fraction must be in (0, 0.5), got {self.val_fraction!r}")

    @property
    def resolved_dir(self) -> Path:
        return Path(self.data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)

    def settings(self) -> dict[str, Any]:
        """What the encoded data depends on besides the files' contents: the data cache's key."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("location")}


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = _f(
        5, "passes over the training split (5: as accurate as 10 on the stand-in in half the time, README)"
    )
    batch_size: int = _f(64, "training batch size (sequences)")
    lr: float = _f(1e-3, "peak AdamW learning rate")
    weight_decay: float = _f(0.1, "AdamW decoupled weight decay (matrices and embeddings only)")
    warmup: float = _f(0.1, "linear warm-up, as a fraction of all training steps; then linear decay to 0")
    label_smoothing: float = _f(0.1, "label smoothing of the cross-entropy loss")
    clip_grad: bool = _f(False, "clip the global gradient norm at --max-grad-norm (ablation clip_grad)")
    max_grad_norm: float = _f(1.0, "max global gradient norm when --clip-grad is on")
    patience: int | None = _f(
        None,
        "stop when validation accuracy has not improved for this many consecutive epochs (the best-validation "
        "checkpoint is kept; --epochs stays the maximum and the length of the lr schedule)",
        shown="off",
    )
    stop_epoch: int | None = _f(
        None,
        "train up to this epoch of the --epochs schedule and keep that epoch's model instead of the "
        "best-validation one (confirmation runs use the epoch chosen on selection runs)",
        shown="off",
    )
    seed: int = _f(0, "seed for initialisation, dropout and batch order")
    precision: str = _f(
        "auto",
        "autocast precision: auto (bf16 on CUDA and on CPUs with native bf16, "
        "i.e. AVX512-BF16 or AMX; fp32 elsewhere) | bf16 | fp32",
        choices=("auto", "bf16", "fp32"),
    )
    init_from: str | None = _f(
        None,
        "start the encoder from a pretrained one: a folder `newslab pretrain` wrote, or 'pretrain' to pretrain "
        "with --pretrain-epochs on this run's training texts first (once: cached in OUT_DIR/pretrained)",
        shown="from scratch",
    )
    pretrain_epochs: int = _f(40, "masked-language-model epochs of --init-from pretrain")
    finetune: str = _f(
        "full",
        "with --init-from: full (train everything) | partial (token embedding and positional parameters frozen) | "
        "frozen (only the classifier head trains)",
        choices=("full", "partial", "frozen"),
    )
    layer_lr_decay: float = _f(
        1.0, "lr multiplier per layer below the top (embeddings lowest): 1 = one lr for all, < 1 = lower below"
    )
    distill: float = _f(
        0.0,
        "share of the loss taken from a TF-IDF + logistic-regression teacher's class probabilities, fitted "
        "out-of-fold on the training rows only (teacher.py); the labels keep the rest; 0 = off",
    )

    def __post_init__(self) -> None:
        _choices(self)
        _positive(self, "epochs", "batch_size", "patience", "pretrain_epochs")
        _fraction(self, "warmup", "label_smoothing", "distill")
        stop = self.stop_epoch
        if stop is not None and (not isinstance(stop, int) or isinstance(stop, bool) or not 1 <= stop <= self.epochs):
            raise ConfigError(
                f"--stop-epoch must be an epoch of the --epochs schedule (1..{self.epochs}), got {stop!r}"
            )
        if self.patience is not None and stop is not None:
            raise ConfigError(
                "--patience and --stop-epoch cannot both be set: --stop-epoch keeps a fixed epoch's model, "
                "--patience the best-validation one"
            )
        if not 0 < self.lr < math.inf:
            raise ConfigError(f"--lr must be > 0 and finite, got {self.lr!r}")
        if not self.max_grad_norm > 0:  # inf is allowed: clipping that never clips
            raise ConfigError(f"--max-grad-norm must be > 0, got {self.max_grad_norm!r}")
        if not 0 <= self.weight_decay < math.inf:
            raise ConfigError(f"--weight-decay must be >= 0 and finite, got {self.weight_decay!r}")
        if not 0 < self.layer_lr_decay <= 1:
            raise ConfigError(f"--layer-lr-decay must be in (0, 1], got {self.layer_lr_decay!r}")
        if self.init_from is None and (self.finetune != "full" or self.layer_lr_decay != 1.0):
            raise ConfigError("--finetune and --layer-lr-decay need --init-from: a model from scratch trains in full")

    @property
    def last_epoch(self) -> int:
        """The epoch training ends after unless --patience stops it sooner: --stop-epoch, else --epochs."""
        return self.stop_epoch or self.epochs


@dataclass(frozen=True)
class ExecutionConfig:
    device: str = _f("auto", "auto | cpu | cuda | mps", choices=DEVICES)
    threads: int | None = _f(None, "torch CPU threads", shown="torch's default, one per core")
    eval_batch_size: int = _f(256, "batch size for validation / test passes")
    micro_batch_size: int | None = _f(
        None,
        "rows per forward/backward pass: a --batch-size batch is split into micro-batches whose gradients add up "
        "to the whole batch's (gradient accumulation: the same optimizer steps in less memory)",
        shown="--batch-size",
    )
    compile: str = _f(
        "auto",
        "torch.compile the model for training: auto (CUDA runs of >= 100,000 training samples, "
        "epochs x rows; never on CPU, where it measured no faster) | on | off",
        choices=("auto", "on", "off"),
    )
    out_dir: str = _f("outputs", "output root; runs go to OUT_DIR/runs/<run-id>", placement=True)
    run_name: str | None = _f(None, "run folder name", shown="time stamp + settings", placement=True)

    def __post_init__(self) -> None:
        _choices(self)
        _positive(self, "threads", "eval_batch_size", "micro_batch_size")


@dataclass(frozen=True)
class PretrainConfig:
    """Masked-language-model pretraining of the encoder (`newslab pretrain`, `--init-from pretrain`): the
    model and data settings are the fine-tuning run's, these are the pretraining's own."""

    epochs: int = _f(40, "passes over the pretraining texts")
    lr: float = _f(1e-3, "peak AdamW learning rate (linear warm-up over 5% of the steps, then linear decay)")
    batch_size: int = _f(64, "sequences per step")
    mask_prob: float = _f(0.15, "share of the tokens to predict (80% masked, 10% random, 10% kept, as BERT)")
    seed: int = _f(0, "seed of the initialisation, masks and batch order")
    text_files: tuple[str, ...] = _f((), "extra unlabelled text, one text per line (validation and test texts dropped)")

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"--pretrain-epochs must be a positive integer, got {self.epochs!r}")
        _positive(self, "batch_size")
        if not 0 < self.lr < math.inf:
            raise ConfigError(f"--pretrain-lr must be > 0 and finite, got {self.lr!r}")
        if not 0 < self.mask_prob < 1:
            raise ConfigError(f"--mask-prob must be in (0, 1), got {self.mask_prob!r}")


PARTS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig, "execution": ExecutionConfig}
# flat name -> (part, field): every setting's one home
FIELDS: dict[str, tuple[str, dataclasses.Field]] = {
    f.name: (part, f) for part, cls in PARTS.items() for f in fields(cls)
}


def ablation_names(value: Any, source: str = "ablation") -> tuple[str, ...]:
    """`ablation` as written in flags, files and specs: None, "none", a name, "a+b" or a list of names."""
    if value is None:
        return ()
    items = value.split("+") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(n, str) for n in items):
        raise ConfigError(f"{source}: ablation must be a name or a list of names, got {value!r}")
    names = tuple(n for n in items if n not in ("", BASELINE))
    for name in names:
        if name not in ABLATIONS:
            raise ConfigError(f"--ablation {name!r} is unknown; choose one of: {', '.join(ABLATIONS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"--ablation {'+'.join(names)}: an ablation is named twice")
    order = list(ABLATIONS)
    return tuple(sorted(names, key=order.index))  # one spelling per combination: "b+a" is "a+b"


def _field_type(f: dataclasses.Field) -> type:
    text = str(f.type)
    for name, typ in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if text.startswith(name):
            return typ
    raise TypeError(f"unsupported config annotation {text}")


def field_type(name: str) -> type:
    """The plain type of a flat setting (int for 'int | None')."""
    return _field_type(FIELDS[name][1])


def coerce(name: str, value: Any, source: str) -> Any:
    """Check a value read from a file or flag against the field's type (ints widen to float)."""
    f = FIELDS[name][1]
    typ = _field_type(f)
    if value is None:
        if "None" in str(f.type):
            return None
        raise ConfigError(f"{source}: {name} may not be null")
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads '1e-3' as a string
        except ValueError:
            pass
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {name} must be {typ.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    ablation: tuple[str, ...] = ()  # the named ablations these settings include

    def __post_init__(self) -> None:
        for name in ablation_names(list(self.ablation), "config"):
            for setting, value in ABLATIONS[name].overrides.items():
                if self[setting] != value:
                    raise ConfigError(
                        f"--ablation {name} sets {flag(setting)} {value!r}, which "
                        f"{flag(setting)} {self[setting]!r} contradicts"
                    )

    def __getitem__(self, name: str) -> Any:
        """A setting by its flat name: config["lr"] is config.optim.lr."""
        part, _ = FIELDS[name]
        return getattr(getattr(self, part), name)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        source: str = "arguments",
        explicit: Collection[str] | None = None,
        **flat: Any,
    ) -> RunConfig:
        """A config from flat settings (flags, YAML/JSON files, study specs, keyword arguments).

        Ablations named in `ablation` set their fields. A value given for such a field must agree with
        the ablation when it is `explicit` (default: every value given); the others are base settings
        that the ablation overrides (a study's inherited settings, a config file under flags).
        """
        values = {**(values or {}), **flat}
        names = ablation_names(values.pop("ablation", None), source)
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}")
        values = {k: coerce(k, v, source) for k, v in values.items()}
        forced: dict[str, tuple[str, Any]] = {}
        for name in names:
            for setting, value in ABLATIONS[name].overrides.items():
                if setting in forced and forced[setting][1] != value:
                    raise ConfigError(
                        f"--ablation {forced[setting][0]} and --ablation {name} set "
                        f"{flag(setting)} differently: they cannot be combined"
                    )
                forced[setting] = (name, value)
        for setting, (name, value) in forced.items():
            given = values if explicit is None else {k: v for k, v in values.items() if k in explicit}
            if setting in given and given[setting] != value:
                raise ConfigError(
                    f"--ablation {name} sets {flag(setting)} {value!r}; "
                    f"{flag(setting)} {values[setting]!r} contradicts it"
                )
            values[setting] = value
        parts = {
            part: cls_(**{f.name: values[f.name] for f in fields(cls_) if f.name in values})
            for part, cls_ in PARTS.items()
        }
        return cls(**parts, ablation=names)

    def replace(self, **changes: Any) -> RunConfig:
        """The same config with flat settings changed; the ablations stay and must still hold
        (add one with `ablate`; to drop one, build the config from its base settings)."""
        if "ablation" in changes:
            raise ConfigError("replace() cannot change the ablations: use ablate(), or create() from the base settings")
        return self.create({**self.flat(), **changes}, source="replace")

    def ablate(self, *names: str) -> RunConfig:
        """These settings with more ablations applied (their fields override these settings')."""
        return self.create({**self.flat(), "ablation": [*self.ablation, *names]}, source="ablate", explicit=())

    # -- views ---------------------------------------------------------------------------
    def flat(self) -> dict[str, Any]:
        """Every setting under its flag name, and `ablation` as a list: what create() reads."""
        return {**{name: self[name] for name in FIELDS}, "ablation": list(self.ablation)}

    def identity(self) -> dict[str, Any]:
        """What a run computes from: every setting except its data's location and the execution part."""
        return {
            **dataclasses.asdict(self.model),
            **self.data.settings(),
            **dataclasses.asdict(self.optim),
            "ablation": list(self.ablation),
        }

    @property
    def label(self) -> str:
        """A short name for run folders and logs: "e128h4-no_pe-s0"."""
        return f"e{self.model.embed_dim}h{self.model.num_heads}-{'+'.join(self.ablation) or 'base'}-s{self.optim.seed}"

    # -- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": CONFIG_VERSION,
            **{part: dataclasses.asdict(getattr(self, part)) for part in PARTS},
            "ablation": list(self.ablation),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> RunConfig:
        """A config from to_dict()'s output, or from newslab 0.1's flat config.json."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: expected a mapping of settings")
        if "version" not in values:  # newslab 0.1: one flat mapping holding the ablated values
            return cls.create(values, source=source)
        if values["version"] != CONFIG_VERSION:
            raise ConfigError(
                f"{source}: config version {values['version']!r} is not one this newslab reads "
                f"({CONFIG_VERSION}); upgrade newslab"
            )
        unknown = sorted(set(values) - {"version", "ablation", *PARTS})
        flat: dict[str, Any] = {}
        for part in PARTS:
            section = values.get(part, {})
            if not isinstance(section, Mapping):
                raise ConfigError(f"{source}: {part} must be a mapping")
            unknown += [f"{part}.{k}" for k in section if k not in FIELDS or FIELDS[k][0] != part]
            flat.update(section)
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {', '.join(sorted(unknown))}")
        return cls.create({**flat, "ablation": values.get("ablation")}, source=source)


@contextlib.contextmanager
def data_dir_default(path: str | Path | None) -> Iterator[None]:
    """Within the block, configs that name no data folder (and study worker processes started in it)
    read `path`, absolute; None changes nothing. A step's data is given this way, not written into its
    configs and specs, which would change what they are (and what counts as already done)."""
    if path is None:
        yield
        return
    before = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = os.path.abspath(path)
    try:
        yield
    finally:
        if before is None:
            del os.environ[DATA_DIR_ENV]
        else:
            os.environ[DATA_DIR_ENV] = before


def settable_in_studies() -> list[str]:
    """Settings a study spec may fix or vary: all but the seed (the spec's `seeds`) and where runs go."""
    return [name for name, (_, f) in FIELDS.items() if name != "seed" and not f.metadata.get("placement")]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file of flat settings (validated by RunConfig.create)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config {path}: not UTF-8 text") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ConfigError(f"--config {path}: not valid {kind} ({exc})".replace("\n", " ")) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path}: expected a mapping of field: value")
    if "version" in values:  # a run's own config.json: its settings, to re-create or vary that run
        return RunConfig.from_dict(values, source=f"--config {path}").flat()
    return {str(k).replace("-", "_"): v for k, v in values.items()}
