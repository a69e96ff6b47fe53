"""Accuracy of the default configuration and of its alternatives, over several seeds.

    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group default
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group tokenizer
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group choice
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group classical
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group best

Each variant is a set of RunConfig changes from the defaults; every variant runs with the
same seeds. Selection uses validation accuracy; test accuracy is reported alongside. The group
`classical` fits the report's classical baselines (newslab.report.classical) instead: each model's C
chosen on the validation rows of --split-seed, refitted on those of --split-seed + 1 (a study's
confirmation split). The group `best` runs `newslab train --preset best` beside the default and prints the
classical baselines under them; its s/run is the fine-tuning's, the encoder's pretraining (once per data split,
cached) is timed apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path

from newslab.config import TRAIN_PRESETS, DataConfig, RunConfig, load_config_file
from newslab.data import cache_dir, load_dataset
from newslab.report.classical import fit_baselines
from newslab.study.spec import CONFIRM_SPLIT_OFFSET
from newslab.train import train

QUICK_PICK = {  # the quick grid's pick (README, "Two commands")
    "embed_dim": 64, "num_heads": 4, "num_layers": 1, "max_len": 64, "vocab_size": 12000, "epochs": 8, "patience": 2,
    "lr": 3e-3,
}  # fmt: skip
GROUPS = {
    "default": {"default": {}},
    # how the defaults were chosen (README): explicit settings, so the rows do not move with the defaults
    "choice": {
        "wordpiece 8k, 10 epochs": {"epochs": 10, "tokenizer": "wordpiece", "vocab_size": 8000, "dropout": 0.1},
        "wordpiece 8k, 5 epochs": {"epochs": 5, "tokenizer": "wordpiece", "vocab_size": 8000, "dropout": 0.1},
        "wordpiece 8k, 5 ep, drop 0.3": {"epochs": 5, "tokenizer": "wordpiece", "vocab_size": 8000, "dropout": 0.3},
        "word 16k, 5 ep, drop 0.3": {"epochs": 5, "tokenizer": "word", "vocab_size": 16000, "dropout": 0.3},
        "word 16k, 5 epochs": {"epochs": 5, "tokenizer": "word", "vocab_size": 16000, "dropout": 0.1},
    },
    "tokenizer": {
        "wordpiece 4k": {"tokenizer": "wordpiece", "vocab_size": 4000},
        "wordpiece 8k": {"tokenizer": "wordpiece", "vocab_size": 8000},
        "wordpiece 16k": {"tokenizer": "wordpiece", "vocab_size": 16000},
        "bpe 8k": {"tokenizer": "bpe", "vocab_size": 8000},
        "word 16k (min_freq 2)": {"tokenizer": "word", "vocab_size": 16000},
        "word all (min_freq 1)": {"tokenizer": "word", "vocab_size": 200000, "min_freq": 1},
    },
    "best": {"--preset best": load_config_file(TRAIN_PRESETS["best"]), "default": {}},
    # how --preset best was chosen: the quick grid's pick and its variants, on the validation rows of split seed 0
    # and of split seed 1 (--split-seed): the one with the best mean over both is the recipe
    "recipe": {
        name: {**QUICK_PICK, **changes}
        for name, changes in {
            "quick pick": {},
            "dropout 0.3": {"dropout": 0.3},
            "dropout 0.4": {"dropout": 0.4},
            "dropout 0.5": {"dropout": 0.5},
            "drop 0.3, smoothing 0.2": {"dropout": 0.3, "label_smoothing": 0.2},
            "drop 0.4, smoothing 0.2": {"dropout": 0.4, "label_smoothing": 0.2},
        }.items()
    },
}


def mean_std(xs: list[float]) -> str:
    return (
        f"{100 * statistics.fmean(xs):.2f} ± {100 * statistics.stdev(xs):.2f}" if len(xs) > 1 else f"{100 * xs[0]:.2f}"
    )


def classical(data_dir: str, split_seed: int) -> None:
    """The classical baselines' chosen C, accuracies and fitting time (no cache: timed every time)."""
    selection = DataConfig(data_dir=data_dir, split_seed=split_seed)
    confirmation = dataclasses.replace(selection, split_seed=split_seed + CONFIRM_SPLIT_OFFSET)
    baselines = fit_baselines(selection, confirmation)
    rows = baselines.rows
    print(
        f"C chosen on split seed {split_seed}'s validation rows; refitted on split seed {confirmation.split_seed}'s "
        f"{rows['train']} training rows, scored on its {rows['val']} validation rows and {rows['test']} test rows"
    )
    print(f"{'model':14s} {'C':>6s} {'selection val':>14s} {'confirm val':>12s} {'test':>7s} {'refit s':>8s}  C tried")
    for f in baselines.fits:
        tried = ", ".join(f"{C:g}: {100 * acc:.2f}" for C, acc in f.selection)
        print(
            f"{f.model:14s} {f.C:6g} {100 * f.selection_accuracy:14.2f} {100 * f.val_accuracy:12.2f} "
            f"{100 * f.test_accuracy:7.2f} {f.fit_s:8.1f}  {tried}"
        )
    print(f"best by selection accuracy: {baselines.best.model}; both splits, every C: {baselines.seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--group", choices=[*GROUPS, "classical"], default="default")
    parser.add_argument(
        "--split-seed", type=int, default=0, help="the validation split's seed (classical: the selection split's)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="extra variant, e.g. 'drop 0.2={\"dropout\": 0.2}'",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.group == "classical":
        classical(args.data_dir, args.split_seed)
        return
    variants = dict(GROUPS[args.group])
    for item in args.variant:
        name, _, changes = item.partition("=")
        variants[name] = json.loads(changes)

    out_dir = tempfile.mkdtemp(prefix="newslab-accuracy-")
    print(f"{'variant':24s} {'vocab':>6s} {'params':>9s} {'val acc':>14s} {'test acc':>14s} {'s/run':>6s}")
    for name, changes in variants.items():
        vals, tests, times = [], [], []
        for seed in range(args.seeds):
            config = RunConfig.create(
                data_dir=args.data_dir,
                out_dir=out_dir,
                seed=seed,
                threads=args.threads,
                split_seed=args.split_seed,
                **changes,
            )
            dataset = load_dataset(config.data, cache_dir(config.execution.out_dir), progress=False)
            result = train(config, dataset=None if config.optim.init_from else dataset, log=None, progress=False)
            times.append(result.wall_time_s)  # the fine-tuning's: a pretraining it starts from is timed below
            vals.append(result.best_val_accuracy)
            tests.append(result.test_accuracy)
        print(
            f"{name:24s} {dataset.vocab_size:6d} {result.params['total']:9d} {mean_std(vals):>14s} "
            f"{mean_std(tests):>14s} {statistics.fmean(times):6.0f}",
            flush=True,
        )
        if changes.get("init_from") == "pretrain":
            for final in sorted((Path(out_dir) / "pretrained").glob("*/final.json")):
                info = json.loads(final.read_text())
                print(
                    f"{'':24s} pretrained encoder {final.parent.name}: {info['train_seconds']:.0f} s, best epoch {info['best_epoch']}"
                )
    if args.group == "best":
        classical(args.data_dir, 0)


if __name__ == "__main__":
    main()
