"""newslab's training step vs the original manual's pipeline, interleaved in one process.

    python benchmarks/train_throughput.py --data-dir ../shared/data/ag_news_mini            # 3 grid sizes
    python benchmarks/train_throughput.py --data-dir ../shared/data/ag_news_mini --sizes 128  # issue 2's size

Same rows (the stand-in's train.csv), same model size (L layers, FFN 4 x embed, batch 64).
The original (benchmarks/original.py): whitespace vocabulary, everything padded to 256,
nn.TransformerEncoder, unfused AdamW, fp32. newslab: its own TrainStep exactly as train()
runs it (the default tokenizer, max_len 128, bucketed dynamic padding, --precision auto =
bf16 on CPUs with native bf16, eager: --compile auto never compiles on CPU). "newslab fp32"
is the same step at --precision fp32 (what a CPU without native bf16 gets; on such a CPU the
two rows are the same step); --with-compile adds the compiled step.
Targets: >= 15x the original's samples/s at every grid size (issue 14; earlier >= 8x at embed 128, >= 10x).
Verdict per size from the per-round ratios' median and its order-statistic interval (common.median_interval):
met if the whole interval clears the target, NOT met if none of it does, inconclusive otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import common  # noqa: F401  (first: sets the OpenMP wait policy before torch starts)
import original
from common import (
    GRID,
    Contender,
    data_dir,
    interleave,
    machine,
    median_interval,
    newslab_contender,
    round_ratios,
    stand_in,
    table,
    warm_up,
)
from newslab.data import read_split

TARGET = 15.0  # x the original's samples/s, at every grid size (issue 14)


def original_contender(path: str, num_classes: int, embed: int, heads: int, layers: int) -> tuple[Contender, int]:
    rows = read_split(Path(path) / "train.csv", num_classes, normalize=False)
    texts = rows.texts
    vocab = original.build_vocab(texts)
    ids, labels = original.encode(texts, vocab), torch.tensor(rows.labels)
    torch.manual_seed(0)
    model = original.OriginalClassifier(len(vocab), num_classes, embed, heads, layers, 4 * embed)
    c = Contender("original", original.make_step(model), original.loader(ids, labels))
    c.warmup_s = warm_up(c, 2)
    return c, len(vocab)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--sizes", type=int, nargs="+", default=[e for e, _ in GRID], help="embed dims of the grid")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--rounds", type=int, default=9, help="9: a 96%% interval for the median ratio")
    p.add_argument("--window", type=float, default=6.0, help="seconds per timed window")
    p.add_argument("--no-fp32", action="store_true", help="skip the fp32 newslab contender")
    p.add_argument("--with-compile", action="store_true", help="also time the torch.compile'd step")
    args = p.parse_args()
    path = data_dir(args.data_dir)
    print(machine())
    rows, summary = [], []
    for embed, heads in [g for g in GRID if g[0] in args.sizes]:
        config, ds = stand_in(
            path, embed_dim=embed, num_heads=heads, num_layers=args.layers, ffn_dim=4 * embed, batch_size=64
        )
        print(f"\nembed {embed}, {heads} heads, {args.layers} layers, FFN {4 * embed}, batch 64")
        orig, orig_vocab = original_contender(path, ds.num_classes, embed, heads, args.layers)
        contenders = [orig, newslab_contender("newslab", config, ds, compile=False)]
        if not args.no_fp32:
            contenders.append(newslab_contender("newslab fp32", config, ds, compile=False, precision="fp32"))
        if args.with_compile:
            contenders.append(newslab_contender("newslab compiled", config, ds, compile=True, warmup_steps=12))
        rates = interleave(contenders, args.rounds, args.window)
        base = rates["original"]["samples"]
        for c in contenders:
            r = rates[c.name]
            med = sorted(r["samples"])[len(r["samples"]) // 2]
            medt = sorted(r["tokens"])[len(r["tokens"]) // 2]
            ratio = median_interval(round_ratios(r["samples"], base))
            vocab = orig_vocab if c.name == "original" else ds.vocab_size
            rows.append([embed, c.name, vocab, med, medt, f"{ratio.median:.1f}x", f"{c.warmup_s:.0f}"])
            if c.name == "newslab":
                summary.append((embed, ratio))
    print()
    print(table(rows, ["embed", "pipeline", "vocab", "samples/s", "real tokens/s", "vs original", "warm-up s"]))
    print("\nwarm-up s: the first steps (compilation included), not in the rates.")
    for embed, ratio in summary:
        print(
            f"embed {embed}: newslab {ratio.median:.1f}x the original's samples/s, {100 * ratio.coverage:.0f}% interval"
            f" {ratio.low:.1f}-{ratio.high:.1f}x (target >= {TARGET:.0f}x: {ratio.verdict(TARGET)})"
        )
    print(f"KEY RATIO (min over sizes): {min(r.median for _, r in summary):.1f}x")


if __name__ == "__main__":
    main()
