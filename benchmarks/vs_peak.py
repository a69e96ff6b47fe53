"""newslab's useful training FLOP/s vs the machine's measured fp32 matrix-multiply peak.

    python benchmarks/vs_peak.py --data-dir ../shared/data/ag_news_mini

Each round times, back to back: the best of several large fp32 GEMMs (1024^3 .. 3072^3),
the same in bf16 (for information), and a window of newslab training steps (TrainStep as
train() runs it: --precision auto, eager). Useful FLOPs of a batch = 6 x non-embedding
parameters x real (unpadded) tokens + attention (QK^T and AV: 4 T^2 C per layer forward,
x3 with backward, over each row's real length T). The ratio is taken per round (same load)
and its median reported. bf16 matmuls run at ~2.4x the fp32 peak on AVX512-BF16, so the
ratio to the fp32 peak can pass 100%; the ratio to the bf16 peak is printed too.
Targets: >= 50% of the fp32 peak at embed 128, >= 65% at embed 256.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import common  # noqa: F401  (first: sets the OpenMP wait policy before torch starts)
from common import GRID, data_dir, gemm_peak, machine, newslab_contender, stand_in, table, useful_train_flops


def train_window(c, seconds: float) -> float:
    """Useful FLOP/s of newslab training over a window of at least `seconds`."""
    flops, t0 = 0.0, time.perf_counter()
    while True:
        batch, _, _ = next(c.batches)
        c.step(batch)
        flops += useful_train_flops(c.model, (~batch.pad_mask).sum(1))
        if time.perf_counter() - t0 >= seconds:
            return flops / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--sizes", type=int, nargs="+", default=[e for e, _ in GRID])
    p.add_argument("--layers", type=int, default=2, help="newslab's default")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--window", type=float, default=5.0)
    args = p.parse_args()
    path = data_dir(args.data_dir)
    print(machine())
    rows, verdicts = [], []
    for embed, heads in [g for g in GRID if g[0] in args.sizes]:
        config, ds = stand_in(path, embed_dim=embed, num_heads=heads, num_layers=args.layers, batch_size=64)
        c = newslab_contender("newslab", config, ds, compile=False, warmup_steps=90)  # ~ every length once
        peaks, peaks16, rates = [], [], []
        for r in range(args.rounds):
            peaks.append(gemm_peak(torch.float32))
            rates.append(train_window(c, args.window))
            peaks16.append(gemm_peak(torch.bfloat16))
            print(
                f"  embed {embed} round {r + 1}: fp32 peak {peaks[-1] / 1e9:.0f}, bf16 peak {peaks16[-1] / 1e9:.0f}, "
                f"newslab {rates[-1] / 1e9:.1f} GFLOP/s",
                flush=True,
            )
        ratio = statistics.median(t / p for t, p in zip(rates, peaks))
        ratio16 = statistics.median(t / p for t, p in zip(rates, peaks16))
        rows.append(
            [
                embed,
                f"{statistics.median(peaks) / 1e9:.0f} (max {max(peaks) / 1e9:.0f})",
                f"{statistics.median(peaks16) / 1e9:.0f}",
                f"{statistics.median(rates) / 1e9:.1f}",
                f"{100 * ratio:.0f}%",
                f"{100 * ratio16:.0f}%",
                f"{100 * statistics.median(rates) / max(peaks):.0f}%",
            ]
        )
        verdicts.append((embed, ratio))
    print()
    print(
        table(
            rows,
            [
                "embed",
                "fp32 GEMM peak GFLOP/s",
                "bf16 peak",
                "newslab useful GFLOP/s",
                "of fp32 peak",
                "of bf16 peak",
                "median / best fp32 peak",
            ],
        )
    )
    targets = {128: 0.50, 256: 0.65}
    for embed, ratio in verdicts:
        target = targets.get(embed)
        verdict = f"target >= {100 * target:.0f}%: {'met' if ratio >= target else 'NOT met'}" if target else "no target"
        print(f"embed {embed}: {100 * ratio:.0f}% of the fp32 GEMM peak ({verdict})")
    print(
        "KEY RATIO (embed 256 if measured): "
        f"{100 * dict(verdicts).get(256, verdicts[-1][1]):.0f}% of the measured fp32 peak"
    )


if __name__ == "__main__":
    main()
