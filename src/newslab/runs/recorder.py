"""RunRecorder: creates a run folder and owns every write to it, final status included."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..data import Dataset
from ..errors import NewslabError
from ..files import atomic_write, write_json
from ..model import TextClassifier
from .folder import FINAL_STATUSES, METRIC_COLUMNS, RunFolder, RunResult, run_path
from .inference import EvalResult

FINAL_RESERVE = 8192  # bytes kept by final.json for its last, in-place write
MAX_REASON = 2000  # characters of a failure's reason kept in final.json (so the status always fits)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled like Ctrl-C, so the run ends `interrupted` and its folder stays consistent."""


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
