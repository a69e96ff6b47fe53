"""The run folder's layout and its readers: where a run lives and what it recorded."""

from __future__ import annotations

import csv
import json
import re
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError, NewslabError

METRIC_COLUMNS = [
    "epoch",
    "train_loss",  # the objective, label-smoothed
    "train_loss_unsmoothed",  # plain cross-entropy, comparable with val_loss (absent from older runs' files)
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
        """One row per epoch, holding the columns the file has (older runs lack the newer ones)."""
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
