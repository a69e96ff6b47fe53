from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import load
from newslab.cli import build_parser, config_from_args, main
from newslab.config import ConfigError, RunConfig, settable_in_studies
from newslab.model import TextClassifier
from newslab.runs import METRIC_COLUMNS, RunFolder, evaluate_run, load_run, predict
from newslab.step import grad_norm
from newslab.train import train

train_mod = importlib.import_module("newslab.train")  # the module; `newslab.train` is also the function


def quiet(config: RunConfig, **kwargs):
    return train(config, log=None, progress=False, **kwargs)


def test_tiny_model_overfits_one_batch(tiny_config: RunConfig) -> None:
    ds = load(tiny_config)
    batch = next(iter(train_mod.iterate_batches(ds.train, 16, 64, torch.Generator().manual_seed(0))))
    model = TextClassifier.from_config(tiny_config.replace(dropout=0.0).model, ds.vocab_size, ds.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = F.cross_entropy(model(batch.ids, batch.pad_mask), batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.01
    assert torch.equal(model(batch.ids, batch.pad_mask).argmax(-1), batch.labels)


def test_run_folder_has_every_artefact(tiny_config: RunConfig) -> None:
    result = quiet(tiny_config)
    run = result.run_dir
    assert {p.name for p in run.iterdir()} == {
        "config.json",
        "metrics.csv",
        "model.safetensors",
        "checkpoint.json",
        "tokenizer.json",
        "final.json",
        "predictions.json",
        ".lock",
    }
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 2 and list(rows[0]) == METRIC_COLUMNS
    assert all(math.isfinite(float(r[c])) for r in rows for c in METRIC_COLUMNS)
    final = json.loads((run / "final.json").read_text())
    assert final["status"] == "completed" and final["best_epoch"] in (1, 2)
    assert final["best_val_accuracy"] == max(float(r["val_accuracy"]) for r in rows)
    assert set(final["params"]) == {"embedding", "encoder", "head", "total"}
    assert final["test_accuracy"] == result.test_accuracy and 0 <= final["test_macro_f1"] <= 1
    assert final["tokens_per_s"] > 0 and final["wall_time_s"] > 0
    assert RunConfig.from_dict(json.loads((run / "config.json").read_text())) == tiny_config
    assert not list(run.glob("*.tmp"))


def test_learns_the_synthetic_task(tiny_config: RunConfig) -> None:
    result = quiet(tiny_config.replace(epochs=6))  # chance is 25%; seeds 0-2 reach 83-92% val, 75-90% test
    assert result.best_val_accuracy >= 0.8 and result.test_accuracy >= 0.7


def test_same_seed_same_metrics(tiny_config: RunConfig) -> None:
    first, second = quiet(tiny_config), quiet(tiny_config)
    strip = lambda h: [{k: v for k, v in row.items() if "per_s" not in k and "time" not in k} for row in h]
    assert strip(first.history) == strip(second.history)
    assert first.test_accuracy == second.test_accuracy
    third = quiet(tiny_config.replace(seed=1))
    assert strip(third.history) != strip(first.history)


def test_checkpoint_reload_reproduces_test_metrics(tiny_config: RunConfig) -> None:
    result = quiet(tiny_config)
    final = json.loads((result.run_dir / "final.json").read_text())
    reloaded = evaluate_run(result.run_dir)
    assert reloaded.accuracy == final["test_accuracy"] and reloaded.macro_f1 == final["test_macro_f1"]
    assert reloaded.predictions.tolist() == json.loads((result.run_dir / "predictions.json").read_text())["test"]


def test_predict_from_checkpoint_alone(tiny_config: RunConfig, tmp_path: Path) -> None:
    result = quiet(tiny_config.replace(epochs=6))
    run = load_run(result.run_dir)
    probs = predict(run, ["striker league coach season", "profit shares merger earnings"])
    assert probs.shape == (2, 4) and torch.allclose(probs.sum(-1), torch.ones(2))
    assert [run.class_names[i] for i in probs.argmax(-1)] == ["Sports", "Business"]


def test_freeze_emb_keeps_embedding_bit_identical(tiny_config: RunConfig) -> None:
    result = quiet(tiny_config.ablate("freeze_emb"))
    run = load_run(result.run_dir)
    torch.manual_seed(tiny_config.optim.seed)  # the initial weights, rebuilt from the same seed
    initial = TextClassifier.from_config(run.config.model, run.checkpoint["vocab_size"], 4)
    assert torch.equal(run.model.tok_emb.weight, initial.tok_emb.weight)
    assert not torch.equal(run.model.head.weight, initial.head.weight)  # everything else did train


@pytest.mark.parametrize("clip", [False, True])
def test_clipping_is_applied_and_unclipped_norm_logged(tiny_config: RunConfig, monkeypatch, clip: bool) -> None:
    seen_norms: list[float] = []
    real = train_mod.make_optimizer

    def recording_optimizer(*args):
        opt = real(*args)
        opt.register_step_pre_hook(
            lambda o, a, k: seen_norms.append(float(grad_norm([p for g in o.param_groups for p in g["params"]])))
        )
        return opt

    monkeypatch.setattr(train_mod, "make_optimizer", recording_optimizer)
    config = tiny_config.replace(max_grad_norm=0.05).ablate("clip_grad") if clip else tiny_config
    result = quiet(config)
    logged = [row["grad_norm"] for row in result.history]
    assert min(logged) > 0.05  # the log holds the norm before clipping
    if clip:
        assert max(seen_norms) <= 0.05 * (1 + 1e-4)
    else:
        assert max(seen_norms) > 0.05


def test_nan_loss_fails_cleanly_and_keeps_best_checkpoint(tiny_config: RunConfig) -> None:
    def poison(epoch: int, row: dict) -> None:
        if epoch == 1:
            with torch.no_grad():
                model_params = poison.model.parameters()
                next(model_params).fill_(float("nan"))

    real_from_config = TextClassifier.from_config

    def capture(*args, **kwargs):
        poison.model = real_from_config(*args, **kwargs)
        return poison.model

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_mod.TextClassifier, "from_config", capture)
        result = quiet(tiny_config.replace(epochs=3), on_epoch=poison)
    final = json.loads((result.run_dir / "final.json").read_text())
    assert result.status == final["status"] == "failed"
    assert "loss became nan at epoch 2" in final["reason"]
    assert final["best_epoch"] == 1 and final["epochs_completed"] == 1
    run = load_run(result.run_dir)
    assert run.checkpoint["epoch"] == 1 and all(torch.isfinite(v).all() for v in run.model.state_dict().values())


def test_interrupt_leaves_a_consistent_folder(tiny_config: RunConfig) -> None:
    def stop(epoch: int, row: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        quiet(tiny_config.replace(epochs=3, run_name="interrupted"), on_epoch=stop)
    run = Path(tiny_config.execution.out_dir) / "runs" / "interrupted"
    final = json.loads((run / "final.json").read_text())
    assert final["status"] == "interrupted" and final["best_epoch"] == 1
    assert len(list(csv.DictReader(open(run / "metrics.csv")))) == 1
    assert load_run(run).checkpoint["epoch"] == 1


def test_epoch_line_keeps_the_old_scripts_format() -> None:
    row = {
        "train_loss": 0.41234,
        "train_loss_unsmoothed": 0.30121,
        "val_loss": 0.23449,
        "val_accuracy": 0.91234,
        "lr": 1e-3,
        "grad_norm": 0.5,
        "samples_per_s": 2400.4,
    }
    line = train_mod.epoch_line(2, 5, row)
    assert line.endswith("Val loss: 0.2345, Acc: 91.23%") and line.count(",") == 1
    assert "train loss 0.4123 (smoothed; plain 0.3012)" in line
    assert "| mean lr 1.00e-03 |" in line  # the epoch's mean (EpochStats.lr), said so: a decay must not read as a rise
    assert line.split(",")[1].strip() == "Acc: 91.23%"
    assert float(line.split(",")[1].split(":")[1].strip().rstrip("%")) == 91.23


def test_warmup_then_linear_decay() -> None:
    factor = train_mod.lr_lambda(100, 0.1)
    assert [round(factor(s), 3) for s in (0, 9, 10, 55, 99)] == [0.1, 1.0, 1.0, 0.5, 0.011]
    assert train_mod.lr_lambda(10, 0.0)(0) == 1.0


def test_off_a_terminal_progress_lines_show_a_long_epoch_is_alive(tiny_config: RunConfig, monkeypatch) -> None:
    monkeypatch.setattr(train_mod, "PROGRESS_EVERY_S", 0.0)  # every step, instead of every 30 s
    lines: list[str] = []
    train(tiny_config, log=lines.append, progress=False)
    steps = [line for line in lines if "| step " in line]
    per_epoch = math.ceil(len(load(tiny_config).train) / tiny_config.optim.batch_size)
    assert len(steps) == 2 * per_epoch  # two epochs, a line after every step
    assert steps[-1].startswith(f"Epoch 2/2 | step {per_epoch}/{per_epoch} | train loss ")
    assert steps[-1].endswith("training left ~0:00") and "samples/s" in steps[0]
    assert len([line for line in lines if "Val loss" in line]) == 2
    silent: list[str] = []
    monkeypatch.setattr(train_mod, "PROGRESS_EVERY_S", 3600.0)
    train(tiny_config, log=silent.append, progress=False)
    assert not [line for line in silent if "| step " in line]  # short runs print only their epochs


def test_the_logged_lr_is_the_epochs_mean(tiny_config: RunConfig) -> None:
    """With warm-up over the first epoch then linear decay, the logged lr rises then falls as the schedule does."""
    config = tiny_config.replace(epochs=4, warmup=0.25, lr=1e-2)
    history = quiet(config).history
    steps = math.ceil(len(load(config).train) / config.optim.batch_size)
    factor = train_mod.lr_lambda(4 * steps, 0.25)
    expected = [1e-2 * sum(factor(s) for s in range(e * steps, (e + 1) * steps)) / steps for e in range(4)]
    assert [row["lr"] for row in history] == pytest.approx(expected)
    assert history[0]["lr"] < history[1]["lr"] > history[2]["lr"] > history[3]["lr"]


def test_the_unsmoothed_training_loss_is_logged_beside_the_smoothed_one(tiny_config: RunConfig) -> None:
    lines: list[str] = []
    result = train(tiny_config, log=lines.append, progress=False)
    rows = RunFolder(result.run_dir).metrics()
    assert [r["train_loss_unsmoothed"] for r in rows] == [r["train_loss_unsmoothed"] for r in result.history]
    # label smoothing 0.1 moves the objective away from the plain cross-entropy; without it they agree
    assert all(r["train_loss_unsmoothed"] != r["train_loss"] for r in rows)
    epoch_lines = [line for line in lines if "Val loss" in line]
    assert f"(smoothed; plain {rows[-1]['train_loss_unsmoothed']:.4f})" in epoch_lines[-1]
    unsmoothed = quiet(tiny_config.replace(label_smoothing=0.0, epochs=1)).history[0]
    assert unsmoothed["train_loss_unsmoothed"] == pytest.approx(unsmoothed["train_loss"], rel=1e-6)


# ------------------------------------------------------------ early stopping and a fixed epoch
VAL_SCRIPT = [0.5, 0.4, 0.6, 0.55, 0.6, 0.9, 0.9, 0.9]  # ties are no improvement


@pytest.mark.parametrize("patience, epochs_run, best", [(1, 2, 1), (2, 5, 3), (3, 8, 6), (None, 8, 6)])
def test_patience_stops_when_validation_stalls(
    tiny_config: RunConfig, monkeypatch: pytest.MonkeyPatch, patience: int | None, epochs_run: int, best: int
) -> None:
    """Validation accuracies are scripted, so the stopping rule is tested exactly: an improvement resets it."""
    config = tiny_config.replace(epochs=8, patience=patience, warmup=0.25)
    ds = load(config)
    real, script = train_mod.evaluate, iter(VAL_SCRIPT)

    def scripted(model, split, *args):
        result = real(model, split, *args)
        return dataclasses.replace(result, accuracy=next(script, result.accuracy)) if split is ds.val else result

    monkeypatch.setattr(train_mod, "evaluate", scripted)
    lines: list[str] = []
    result = train(config, dataset=ds, log=lines.append, progress=False)
    assert result.status == "completed" and len(result.history) == epochs_run
    assert [r["val_accuracy"] for r in result.history] == VAL_SCRIPT[:epochs_run]
    final = RunFolder(result.run_dir).final()
    assert final["best_epoch"] == best == load_run(result.run_dir).checkpoint["epoch"]
    assert final["best_val_accuracy"] == VAL_SCRIPT[best - 1] and final["epochs_completed"] == epochs_run
    assert any(line.startswith(f"Early stop after epoch {epochs_run}:") for line in lines) == (epochs_run < 8)
    steps = math.ceil(len(ds.train) / config.optim.batch_size)  # the schedule spans all 8 epochs regardless
    factor = train_mod.lr_lambda(8 * steps, 0.25)
    expected = [config.optim.lr * sum(factor(s) for s in range(e * steps, (e + 1) * steps)) / steps for e in range(8)]
    assert [r["lr"] for r in result.history] == pytest.approx(expected[:epochs_run])


@pytest.mark.parametrize("stop_epoch", [1, 3])
def test_stop_epoch_reproduces_the_full_run_up_to_that_epoch(tiny_config: RunConfig, stop_epoch: int) -> None:
    config = tiny_config.replace(epochs=4, warmup=0.25)
    full = quiet(config)
    stopped = quiet(config.replace(stop_epoch=stop_epoch))
    strip = lambda h: [{k: v for k, v in row.items() if "per_s" not in k and "time" not in k} for row in h]
    assert strip(stopped.history) == strip(full.history)[:stop_epoch]  # the lr schedule is the full run's
    chosen = full.history[stop_epoch - 1]
    final = RunFolder(stopped.run_dir).final()
    assert final["best_epoch"] == stopped.best_epoch == stop_epoch == load_run(stopped.run_dir).checkpoint["epoch"]
    assert final["best_val_accuracy"] == chosen["val_accuracy"] and final["status"] == "completed"
    predictions = RunFolder(stopped.run_dir).predictions()  # made by the kept weights: epoch stop_epoch's
    right = sum(p == y for p, y in zip(predictions["val"], predictions["val_labels"]))
    assert right / len(predictions["val"]) == chosen["val_accuracy"]
    if stop_epoch == 1:  # the full run's best epoch is a later one: kept here all the same
        assert full.best_epoch != 1 and full.best_val_accuracy > chosen["val_accuracy"]


@pytest.mark.parametrize(
    "changes, flags",
    [
        ({"patience": 0}, ["--patience"]),
        ({"patience": -2}, ["--patience"]),
        ({"stop_epoch": 0}, ["--stop-epoch", "--epochs"]),
        ({"stop_epoch": 6, "epochs": 5}, ["--stop-epoch", "--epochs"]),
        ({"patience": 2, "stop_epoch": 3}, ["--patience", "--stop-epoch"]),
    ],
)
def test_invalid_stopping_settings_name_their_flags(changes: dict, flags: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig.create(changes)
    assert all(flag in str(err.value) for flag in flags), str(err.value)


def test_stopping_settings_are_flags_study_settings_and_round_trip(capsys: pytest.CaptureFixture) -> None:
    assert {"patience", "stop_epoch"} <= set(settable_in_studies())
    args = build_parser().parse_args(["train", "--epochs", "10", "--stop-epoch", "7"])
    stopped = config_from_args(args)
    assert (stopped.optim.epochs, stopped.optim.stop_epoch, stopped.optim.last_epoch) == (10, 7, 7)
    patient = config_from_args(build_parser().parse_args(["train", "--patience", "3"]))
    assert (patient.optim.patience, patient.optim.last_epoch) == (3, 5)
    for config in (stopped, patient):
        assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert stopped.identity() != RunConfig.create(epochs=10).identity()  # a different run, not a finished one
    legacy = RunConfig().to_dict()  # config.json of a run from before the two settings
    for name in ("patience", "stop_epoch"):
        del legacy["optim"][name]
    assert RunConfig.from_dict(legacy) == RunConfig() and RunConfig().optim.patience is None
    assert main(["train", "--patience", "2", "--stop-epoch", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--patience" in err and "--stop-epoch" in err
