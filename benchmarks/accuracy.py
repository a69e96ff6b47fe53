"""Accuracy of the default configuration and of its alternatives, over several seeds.

    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group default
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group tokenizer
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group choice
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group classical
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group best
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group recipe --split-seeds 0,1,2,3,4,5
    python benchmarks/accuracy.py --data-dir ../shared/data/ag_news_mini --group recipe --split-seeds 0,1,2,3,4,5 \
        --run-seed-offset 100   # the same selection confirmed on runs that took no part in it

Each variant is a set of RunConfig changes from the defaults; every variant runs with the
same seeds. Selection uses validation accuracy; test accuracy is reported alongside. The group
`classical` fits the report's classical baselines (newslab.report.classical) instead: each model's C
chosen on the validation rows of --split-seed, refitted on those of --split-seed + 1 (a study's
confirmation split). The group `best` runs `newslab train --preset best` beside the default and prints the
classical baselines under them; its s/run is the fine-tuning's, the encoder's pretraining (once per data split,
cached) is timed apart. With --split-seeds a group is a selection: each variant runs once on each split seed's
split (run seed = split seed + --run-seed-offset, 0 by default), only validation accuracy is read and printed (mean
± standard error over the splits), beside the TF-IDF + linear SVM's on the same validation rows; test accuracy is not
printed (the runs' folders, in a temporary directory, still hold it). A selection made at offset 0 is confirmed at
another offset: the same validation rows, new runs (initialisation, batch order, dropout), none of which took part in
choosing, so a variant's lead that came from its lucky runs does not survive there.
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
WIDE = {"pos_encoding": "none", "embed_dim": 128, "dropout": 0.5, "label_smoothing": 0.2}
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
    # how --preset best was chosen (--split-seeds 0,...,5: validation rows only): the quick grid's pick, the earlier
    # recipe (dropout 0.4), a wider bag-like model (no positions, embed 128) and what it gains from word dropout and
    # from distilling the TF-IDF teacher; the best mean is the recipe
    "recipe": {
        name: {**QUICK_PICK, **changes}
        for name, changes in {
            "quick pick": {},
            "dropout 0.4": {"dropout": 0.4},
            "none/128, drop .5, ls .2": WIDE,
            "+ token dropout 0.25": {**WIDE, "token_dropout": 0.25},
            "+ distill 0.5": {**WIDE, "distill": 0.5},
            "+ both (--preset best)": load_config_file(TRAIN_PRESETS["best"]),  # = WIDE, token dropout .25, distill .5
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


def selection(
    data_dir: str,
    variants: dict[str, dict],
    split_seeds: list[int],
    seed_offset: int,
    out_dir: str,
    threads: int | None,
):
    """Validation accuracy of each variant, one run per split seed (run seed = split seed + seed_offset); test
    accuracy is not printed."""
    from newslab.data import split_rows
    from newslab.report.classical import _classifier, _vectorize

    def mean_se(xs: list[float]) -> str:
        se = f"{100 * statistics.stdev(xs) / len(xs) ** 0.5:.2f}" if len(xs) > 1 else "–"
        return f"{100 * statistics.fmean(xs):.2f} ± {se}"

    svm = []
    for split_seed in split_seeds:
        data = DataConfig(data_dir=data_dir, split_seed=split_seed)
        rows = split_rows(data.resolved_dir, data)
        x_train, x_val, _ = _vectorize(rows)
        fitted = _classifier("tfidf_svm", 10.0).fit(x_train, rows.train.labels)
        svm.append(statistics.fmean(float(p == y) for p, y in zip(fitted.predict(x_val), rows.val.labels)))
    splits = " ".join(f"{s:>5d}" for s in split_seeds)
    print(
        f"validation accuracy, one run per split seed, run seed = split seed + {seed_offset} (test not printed)\n"
        f"{'variant':28s} {'mean ± se':>14s}  {splits}"
    )
    print(f"{'TF-IDF + linear SVM (C 10)':28s} {mean_se(svm):>14s}  " + " ".join(f"{100 * v:5.1f}" for v in svm))
    for name, changes in variants.items():
        vals, times = [], []
        for split_seed in split_seeds:
            config = RunConfig.create(
                data_dir=data_dir,
                out_dir=out_dir,
                seed=split_seed + seed_offset,
                threads=threads,
                split_seed=split_seed,
                **changes,
            )
            result = train(config, log=None, progress=False)
            vals.append(result.best_val_accuracy)
            times.append(result.wall_time_s)
        print(
            f"{name:28s} {mean_se(vals):>14s}  {' '.join(f'{100 * v:5.1f}' for v in vals)}  "
            f"{statistics.fmean(times):.0f} s/run",
            flush=True,
        )


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
    parser.add_argument(
        "--split-seeds", help="comma-separated split seeds: a validation-only selection over these splits (see above)"
    )
    parser.add_argument(
        "--run-seed-offset",
        type=int,
        default=0,
        help="with --split-seeds: run seed = split seed + this (another value: runs that took no part in a selection)",
    )
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.run_seed_offset and not args.split_seeds:
        parser.error("--run-seed-offset applies to a selection: give --split-seeds too")
    if args.group == "classical":
        classical(args.data_dir, args.split_seed)
        return
    variants = dict(GROUPS[args.group])
    for item in args.variant:
        name, _, changes = item.partition("=")
        variants[name] = json.loads(changes)

    out_dir = tempfile.mkdtemp(prefix="newslab-accuracy-")
    if args.split_seeds:
        split_seeds = [int(s) for s in args.split_seeds.split(",")]
        selection(args.data_dir, variants, split_seeds, args.run_seed_offset, out_dir, args.threads)
        return
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
