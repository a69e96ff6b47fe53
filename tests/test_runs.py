"""The run folder's owner: exclusive creation, the status life cycle on every exit, safe loading."""

from __future__ import annotations

import csv
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import load, tiny_flags
from newslab.config import RunConfig
from newslab.errors import ConfigError, NewslabError
from newslab.runs import METRIC_COLUMNS, RunFolder, RunRecorder, evaluate_run, load_run, predict
from newslab.train import train


def quiet(config: RunConfig, **kwargs):
    return train(config, log=None, progress=False, **kwargs)


def test_status_is_written_on_every_exit(tiny_config: RunConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_config.replace(run_name="broken")
    with RunRecorder(config) as run:
        assert run.folder.status() == "created"
        run.start(params={})
        assert run.folder.status() == "running"
        run.finish("completed")
    assert RunFolder(run.folder.path).status() == "completed"

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(
        importlib.import_module("newslab.train"), "load_dataset", explode
    )  # an error before the first epoch
    with pytest.raises(RuntimeError):
        quiet(tiny_config.replace(run_name="setup-error"))
    final = RunFolder(Path(tiny_config.execution.out_dir) / "runs" / "setup-error").final()
    assert final["status"] == "failed" and final["reason"] == "RuntimeError: disk on fire"


def test_an_existing_run_is_never_overwritten_silently(tiny_config: RunConfig) -> None:
    config = tiny_config.replace(run_name="taken")
    first = quiet(config)
    weights = (first.run_dir / "model.safetensors").read_bytes()
    with pytest.raises(NewslabError, match=r"taken: a run folder already exists \(status completed\)"):
        quiet(config.replace(lr=1e-2))
    assert (first.run_dir / "model.safetensors").read_bytes() == weights  # nothing changed
    assert RunFolder(first.run_dir).config() == config
    second = quiet(config.replace(lr=1e-2, epochs=1), overwrite=True)
    assert RunFolder(second.run_dir).config().optim.lr == 1e-2
    assert len(RunFolder(second.run_dir).metrics()) == 1  # the old run's rows are gone with it


def test_a_folder_in_use_cannot_be_taken(tiny_config: RunConfig) -> None:
    config = tiny_config.replace(run_name="busy")
    with RunRecorder(config):
        with pytest.raises(NewslabError, match="in use by another newslab process"):
            RunRecorder(config, overwrite=True).__enter__()


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/b", "..", ""])
def test_run_names_stay_inside_the_output_folder(tiny_config: RunConfig, name: str) -> None:
    with pytest.raises(ConfigError, match="--run-name .* must be one folder name"):
        quiet(tiny_config.replace(run_name=name))
    assert not (Path(tiny_config.execution.out_dir).parent / "escape").exists()


def test_sigterm_mid_run_leaves_an_interrupted_consistent_folder(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "newslab",
        "train",
        *tiny_flags(data_dir, out),
        "--epochs",
        "200",
        "--run-name",
        "term",
    ]
    env = {**os.environ, "NEWSLAB_ALLOCATOR": "system"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    folder = RunFolder(out / "runs" / "term")
    deadline = time.time() + 120
    while time.time() < deadline and not (folder.metrics_file.is_file() and len(folder.metrics()) >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "newslab: terminated"
    final = folder.final()
    assert final["status"] == "interrupted" and "SIGTERM" in final["reason"]
    assert final["epochs_completed"] == len(folder.metrics()) >= 2
    assert load_run(folder.path).checkpoint["epoch"] == final["best_epoch"]


def test_a_damaged_checkpoint_is_one_error_naming_the_file(tiny_config: RunConfig) -> None:
    result = quiet(tiny_config)
    weights = result.run_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(NewslabError, match=r"model.safetensors: damaged checkpoint"):
        load_run(result.run_dir)


def legacy_run(result_dir: Path, tiny_config: RunConfig, payload: object) -> Path:
    """A newslab 0.1 run folder: flat config.json and a pickled best.pt."""
    legacy = result_dir.parent / "legacy"
    legacy.mkdir()
    flat = {k: v for k, v in tiny_config.flat().items()}
    flat["ablation"] = None
    (legacy / "config.json").write_text(json.dumps(flat))
    torch.save(payload, legacy / "best.pt")
    return legacy


def test_old_run_folders_load_safely(tiny_config: RunConfig, tmp_path: Path) -> None:
    config = tiny_config.replace(pos_encoding="learned", epochs=3)
    result = quiet(config)
    run = load_run(result.run_dir)
    state = run.model.state_dict()
    old_state = {k.replace("positions.embedding.weight", "pos_emb.weight"): v for k, v in state.items()}
    payload = {
        "model": old_state,
        "config": config.flat(),
        "tokenizer": run.tokenizer.hf.to_str(),
        "class_names": run.class_names,
        "vocab_size": run.checkpoint["vocab_size"],
        "epoch": 2,
        "val_accuracy": 0.5,
        "val_loss": 1.0,
    }
    legacy = legacy_run(result.run_dir, config, payload)
    old = load_run(legacy)
    texts = ["striker league coach season", "profit shares merger earnings"]
    torch.testing.assert_close(predict(old, texts), predict(run, texts))
    assert evaluate_run(legacy).accuracy == evaluate_run(result.run_dir).accuracy


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/newslab-test-pwned-marker")


def test_a_malicious_checkpoint_never_runs_code(tiny_config: RunConfig) -> None:
    MARKER.unlink(missing_ok=True)
    result = quiet(tiny_config)
    legacy = legacy_run(result.run_dir, tiny_config, {"model": Exploit()})
    with pytest.raises(NewslabError, match=r"best.pt: cannot be loaded safely.*--overwrite"):
        load_run(legacy)
    assert not MARKER.exists()


def test_dataset_of_a_run_is_the_one_it_trained_on(tiny_config: RunConfig) -> None:
    result = quiet(tiny_config)
    run = load_run(result.run_dir)
    ds = load(tiny_config)
    assert run.tokenizer.to_json() == ds.tokenizer.to_json()
    assert RunFolder(result.run_dir).predictions()["test_labels"] == ds.test.labels.tolist()


def test_an_interrupt_while_writing_the_final_status_still_leaves_one(
    tiny_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs_mod = importlib.import_module("newslab.runs.recorder")
    real, armed = runs_mod.atomic_write, [True]

    def interrupted_once(path, write):
        if path.name == "final.json" and armed[0]:
            armed[0] = False
            raise KeyboardInterrupt
        return real(path, write)

    with pytest.raises(KeyboardInterrupt):
        with RunRecorder(tiny_config.replace(run_name="late")) as run:
            run.start(params={})
            monkeypatch.setattr(runs_mod, "atomic_write", interrupted_once)
            run.finish("completed")  # the signal lands inside this write
    assert run.folder.status() == "interrupted"  # never left at "running"


def test_a_failure_while_creating_the_folder_leaves_no_half_run(
    tiny_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs_mod = importlib.import_module("newslab.runs.recorder")

    def full(path, payload):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(runs_mod, "write_json", full)
    with pytest.raises(OSError):
        quiet(tiny_config.replace(run_name="half"))
    assert not (Path(tiny_config.execution.out_dir) / "runs" / "half").exists()
    monkeypatch.undo()
    assert quiet(tiny_config.replace(run_name="half")).status == "completed"  # the name is free


def test_old_run_names_still_load(tiny_config: RunConfig) -> None:
    result = quiet(tiny_config)
    flat = {**tiny_config.flat(), "ablation": None, "run_name": "exp 1 (old)"}  # 0.1 accepted any name
    (result.run_dir / "config.json").write_text(json.dumps(flat))
    assert load_run(result.run_dir).config.execution.run_name == "exp 1 (old)"


def test_the_checkpoint_epoch_is_the_weights_own(tiny_config: RunConfig) -> None:
    """checkpoint.json is a copy; the weights file carries its epoch, so a stale copy cannot mislabel it."""
    result = quiet(tiny_config.replace(epochs=3))
    meta_file = result.run_dir / "checkpoint.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "epoch": 99, "val_accuracy": 0.0}))
    run = load_run(result.run_dir)
    assert run.checkpoint["epoch"] == meta["epoch"] == RunFolder(result.run_dir).final()["best_epoch"]
    meta_file.write_text(json.dumps({"epoch": 1}))
    with pytest.raises(NewslabError, match="checkpoint.json: malformed"):
        load_run(result.run_dir)


def test_metrics_of_runs_before_the_unsmoothed_loss_still_read(tiny_config: RunConfig) -> None:
    result = quiet(tiny_config)
    with open(result.run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    old_columns = [c for c in METRIC_COLUMNS if c != "train_loss_unsmoothed"]
    with open(result.run_dir / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=old_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    history = RunFolder(result.run_dir).result().history
    assert [list(r) for r in history] == [old_columns] * 2
    assert [r["val_accuracy"] for r in history] == [r["val_accuracy"] for r in result.history]
