"""Evaluation and inference speed: validation/test passes, `predict` throughput, batch-1 latency.

    python benchmarks/inference.py --data-dir ../shared/data/ag_news_mini

Default model (embed 128, 4 heads, 2 layers; weights do not change the speed). The test
split is repeated to AG News' 7,600 test rows. `evaluate` (length-sorted batches under
torch.inference_mode) is timed at several eval batch sizes in fp32 and bf16, interleaved;
`predict` from raw text (normalization + tokenization + model) on the 800 stand-in test
texts; batch-1 latency of `predict` on single headlines and of the bare forward pass.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import common  # noqa: F401  (first: sets the OpenMP wait policy before torch starts)
from common import data_dir, machine, repeat_split, stand_in, table
from newslab.model import TextClassifier
from newslab.runs import LoadedRun, evaluate, predict
from newslab.step import amp_dtype, autocast


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--latency-calls", type=int, default=200)
    args = p.parse_args()
    path = data_dir(args.data_dir)
    print(machine())
    config, ds = stand_in(path)
    torch.manual_seed(0)
    model = TextClassifier.from_config(config.model, ds.vocab_size, ds.num_classes).eval()
    test = repeat_split(ds.test, 7_600)
    cpu = torch.device("cpu")

    variants = [(bs, prec) for prec in ("bf16", "fp32") for bs in args.batch_sizes]
    rates = {v: [] for v in variants}
    evaluate(model, ds.test, ds.num_classes, cpu, 256, config.model.max_len, "bf16")  # warm-up
    for _ in range(args.rounds):
        for bs, prec in variants:
            t0 = time.perf_counter()
            evaluate(model, test, ds.num_classes, cpu, bs, config.model.max_len, prec)
            rates[(bs, prec)].append(len(test) / (time.perf_counter() - t0))
    rows = [[f"evaluate, batch {bs}, {prec}", statistics.median(r)] for (bs, prec), r in rates.items()]

    run = LoadedRun(model, config, ds.tokenizer, ds.class_names, {})
    texts = ds.test.texts
    predict(run, texts[:64])
    t0 = time.perf_counter()
    predict(run, texts)
    rows.append(
        [
            f"predict, {len(texts)} raw texts (eval batch {config.execution.eval_batch_size})",
            len(texts) / (time.perf_counter() - t0),
        ]
    )

    gen = torch.Generator().manual_seed(0)
    picks = torch.randint(0, len(texts), (args.latency_calls,), generator=gen).tolist()
    latency, bare = [], []
    for i in picks:
        t0 = time.perf_counter()
        predict(run, [texts[i]])
        latency.append(time.perf_counter() - t0)
        ids = ds.test.row(i, config.model.max_len).long()[None]
        with torch.inference_mode(), autocast(cpu, amp_dtype(config.optim.precision, cpu)):  # as predict() runs it
            t0 = time.perf_counter()
            model(ids, torch.zeros_like(ids, dtype=torch.bool))
            bare.append(time.perf_counter() - t0)
    q = lambda xs, f: sorted(xs)[int(f * (len(xs) - 1))] * 1000
    print(table(rows, ["pass", "samples/s"]))
    print(
        table(
            [
                ["predict([headline])", f"{q(latency, 0.5):.2f}", f"{q(latency, 0.9):.2f}"],
                [
                    f"model forward, batch 1, {amp_dtype(config.optim.precision, cpu) or 'fp32'}",
                    f"{q(bare, 0.5):.2f}",
                    f"{q(bare, 0.9):.2f}",
                ],
            ],
            ["batch-1 latency", "median ms", "p90 ms"],
        )
    )
    best = max(rates, key=lambda v: statistics.median(rates[v]))
    print(
        f"KEY RATIO: best eval batch {best[0]} {best[1]}: {statistics.median(rates[best]):,.0f} samples/s; "
        f"{statistics.median(rates[best]) / statistics.median(rates[(256, 'fp32')]) if (256, 'fp32') in rates else 1:.2f}x "
        f"the fp32 batch-256 pass; predict batch-1 median {q(latency, 0.5):.1f} ms"
    )


if __name__ == "__main__":
    main()
