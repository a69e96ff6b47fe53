from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_flags
from newslab.cli import build_parser, config_from_args, main
from newslab.config import RunConfig
from newslab.errors import ConfigError


def run_cli(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "newslab", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--embed-dim", "100", "--num-heads", "3"], "--embed-dim 100 is not divisible by --num-heads 3"),
        (["train", "--ablation", "no_attention"], "argument --ablation: invalid choice: 'no_attention'"),
        (["train", "--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
        (["train", "--epochs", "0"], "--epochs must be a positive integer"),
        (["train", "--pos-encoding", "rotary"], "argument --pos-encoding: invalid choice"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--config", "/nonexistent.yaml"], "--config /nonexistent.yaml: cannot read"),
        (
            ["train", "--ablation", "single_head", "--num-heads", "4"],
            "--ablation single_head sets --num-heads 1; --num-heads 4 contradicts it",
        ),
        (["study", "run", "quick-grid", "--threads", "-1"], "argument --threads: must be a positive integer, got -1"),
        (["manual", "--workers", "0"], "argument --workers: must be a positive integer, got 0"),
        (["train", "--run-name", "../outside"], "--run-name '../outside' must be one folder name"),
    ],
)
def test_bad_flags_exit_nonzero_with_one_line(argv: list[str], message: str, capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_missing_data_is_one_line_without_traceback(tmp_path: Path) -> None:
    proc = run_cli(
        "train",
        "--data-dir",
        str(tmp_path / "nowhere"),
        "--out-dir",
        str(tmp_path),
        env={"NEWSLAB_DOWNLOAD_URL": "http://127.0.0.1:9/"},
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("newslab: error: ") and "missing train.csv, test.csv, classes.txt" in proc.stderr


def test_help_documents_every_flag_with_its_default(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for flag, default in [
        ("--epochs", "5"),
        ("--batch-size", "64"),
        ("--lr", "0.001"),
        ("--embed-dim", "128"),
        ("--num-heads", "4"),
        ("--ablation", "none"),
        ("--num-layers", "2"),
        ("--ffn-dim", "4 x"),
        ("--dropout", "0.1"),
        ("--max-len", "128"),
        ("--weight-decay", "0.1"),
        ("--warmup", "0.1"),
        ("--seed", "0"),
        ("--device", "auto"),
        ("--threads", "torch's default"),
        ("--data-dir", "$NEWSLAB_DATA_DIR"),
        ("--out-dir", "outputs"),
        ("--config", ""),
    ]:
        assert flag in out, flag
        if default:
            start = out.index(flag + " ", out.index("options:"))
            assert f"(default: {default}" in out[start : out.index("(default:", start) + 60], flag


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    spec = tmp_path / "run.yaml"
    spec.write_text("embed_dim: 64\nnum_heads: 2\nlr: 5e-4\nablation: no_ffn\n")
    args = build_parser().parse_args(["train", "--config", str(spec), "--lr", "2e-3"])
    config = config_from_args(args)
    assert (config.model.embed_dim, config.model.num_heads, config.optim.lr, config.model.ffn) == (64, 2, 2e-3, False)
    assert config.ablation == ("no_ffn",)
    (tmp_path / "bad.json").write_text(json.dumps({"embed_dim": 64, "heads": 2}))
    assert main(["train", "--config", str(tmp_path / "bad.json")]) == 2


def test_train_evaluate_predict_from_the_command_line(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("train", *tiny_flags(data_dir, out), "--run-name", "cli")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "Val loss" in line]
    assert len(lines) == 2 and all(line.split(",")[1].strip().startswith("Acc: ") for line in lines)
    run_dir = out / "runs" / "cli"
    proc = run_cli("evaluate", str(run_dir))
    assert proc.returncode == 0 and "matches the run's recorded test accuracy" in proc.stdout, proc.stdout
    proc = run_cli("evaluate", str(run_dir), "--csv", str(data_dir / "train.csv"), "--json")
    assert json.loads(proc.stdout)["rows"] == 240
    proc = run_cli("predict", str(run_dir), "striker league coach", "profit shares")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2
    assert run_cli("evaluate", str(tmp_path / "no-run")).returncode == 2
    proc = run_cli("train", *tiny_flags(data_dir, out), "--run-name", "cli")  # the name is taken
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--overwrite" in proc.stderr


def test_two_ablation_flags_combine_and_are_recorded() -> None:
    args = build_parser().parse_args(["train", "--ablation", "no_pe", "--ablation", "no_ffn"])
    config = config_from_args(args)
    assert config.ablation == ("no_pe", "no_ffn") and config.model.pos_encoding == "none" and not config.model.ffn


@pytest.mark.realdata
def test_real_run_on_the_stand_in_passes_70_percent_in_two_epochs(stand_in_dir: Path, tmp_path: Path) -> None:
    proc = run_cli("train", "--epochs", "2", "--out-dir", str(tmp_path), env={"NEWSLAB_DATA_DIR": str(stand_in_dir)})
    assert proc.returncode == 0, proc.stderr
    accs = [
        float(line.split(",")[1].split(":")[1].strip().rstrip("%"))
        for line in proc.stdout.splitlines()
        if "Val loss" in line
    ]
    print(proc.stdout)
    assert len(accs) == 2 and max(accs) > 70.0


def test_a_config_file_and_ablation_flags_add_up(tmp_path: Path, data_dir: Path) -> None:
    spec = tmp_path / "run.yaml"
    spec.write_text("embed_dim: 64\nnum_heads: 2\nablation: no_pe\n")
    config = config_from_args(build_parser().parse_args(["train", "--config", str(spec), "--ablation", "no_ffn"]))
    assert config.ablation == ("no_pe", "no_ffn") and config.model.pos_encoding == "none" and not config.model.ffn
    (tmp_path / "bad.yaml").write_text("ablation: single_head\nnum_heads: 4\n")  # a file must hold its ablations
    with pytest.raises(ConfigError, match="--ablation single_head sets --num-heads 1; --num-heads 4 contradicts it"):
        config_from_args(build_parser().parse_args(["train", "--config", str(tmp_path / "bad.yaml")]))
    # newslab 0.1's flat config.json pins every setting; a flag ablation applies over it
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({**RunConfig().flat(), "ablation": None}))
    config = config_from_args(build_parser().parse_args(["train", "--config", str(legacy), "--ablation", "no_pe"]))
    assert config.ablation == ("no_pe",) and config.model.pos_encoding == "none"
    # a run's own config.json (version 2) re-creates or varies that run
    run = tmp_path / "config.json"
    run.write_text(json.dumps(config.to_dict()))
    again = config_from_args(build_parser().parse_args(["train", "--config", str(run), "--lr", "5e-4"]))
    assert again == config.replace(lr=5e-4)


def test_a_named_recipe_is_a_config_file_that_flags_override(tmp_path) -> None:
    from newslab.cli import build_parser, config_from_args
    from newslab.config import TRAIN_PRESETS, load_config_file

    assert "best" in TRAIN_PRESETS and TRAIN_PRESETS["best"].is_file()
    recipe = load_config_file(TRAIN_PRESETS["best"])
    config = config_from_args(build_parser().parse_args(["train", "--preset", "best", "--seed", "2"]))
    assert all(config[k] == v for k, v in recipe.items()) and config.optim.seed == 2
    assert config_from_args(build_parser().parse_args(["train", "--preset", "best", "--lr", "0.01"])).optim.lr == 0.01
    with pytest.raises(SystemExit):  # one source of settings: a file or a recipe
        build_parser().parse_args(["train", "--preset", "best", "--config", str(tmp_path / "x.yaml")])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--preset", "fastest"])
