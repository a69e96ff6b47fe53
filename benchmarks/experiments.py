"""What was tried to make the training step fast, each against newslab's step, interleaved.

    python benchmarks/experiments.py --data-dir ../shared/data/ag_news_mini                  # step variants
    python benchmarks/experiments.py --data-dir ../shared/data/ag_news_mini --cpu-time      # 1 thread, CPU time
    python benchmarks/experiments.py --data-dir ../shared/data/ag_news_mini --group threads
    python benchmarks/experiments.py --data-dir ../shared/data/ag_news_mini --group bucketing
    python benchmarks/experiments.py --data-dir ../shared/data/ag_news_mini --group ceilings --embed 64

`step` group (embed 128, 4 heads, 2 layers, batch 64; ratios vs newslab's step, >1 = faster):
  torch dropout    F.dropout (torch's per-element Bernoulli) instead of newslab's cheap mask
  SDPA training    SDPA with dropout_p during training instead of the explicit attention path
  fp32             --precision fp32 instead of bf16 autocast
  compiled         torch.compile(dynamic=True) of the model (compile time printed, not in the rate)
  sparse emb       sparse embedding gradients: SparseAdam for the embedding, fused AdamW for the rest
  unfused AdamW    torch.optim.AdamW's default for-loop implementation instead of fused=True
  sync per step    loss.item() and the grad norm read back every step (the old loop)
  select mask      the cheap dropout's mask built by a compare and a select (before 2026-12-03)
                   instead of three in-place passes over its draws (the same mask, bit for bit)
  masked attention the explicit attention path before 2026-12-03: q, k, v copied one by one into
                   head-major layout, q scaled, padding applied by masked_fill on the scores
`--cpu-time` times process CPU time at 1 thread: a busy neighbour barely moves it, so small
differences show; the default times wall clock at the default thread count.
`threads` group (separate processes, alternating): 1 thread; 2 threads with OpenMP's default
(spinning) wait policy; 2 threads with OMP_WAIT_POLICY=PASSIVE; and 2 one-thread processes at
once (the study's `--workers 2`), whose summed throughput is reported.
`bucketing` group: padding share and batch class balance for several sort-pool sizes.
`ceilings` group (train_throughput.py's shape: 3 layers, FFN 4 x embed, batch 64): how much faster the
step would be if a part cost nothing, an upper bound on what speeding that part up can win; these
variants change the maths and are never candidates:
  dropout free     every dropout is a plain copy (x * 1.0): no random bits, no mask
  ReLU for GELU    the FFN's exact GELU replaced by ReLU, the cheapest element-wise activation
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import common
import newslab.model as model_mod
from common import (
    Contender,
    cycle_batches,
    data_dir,
    interleave,
    machine,
    median_ratio,
    newslab_contender,
    stand_in,
    table,
    warm_up,
)
from newslab.data import batch_indices
from newslab.model import TextClassifier
from newslab.step import TrainStep, amp_dtype, grad_norm
from newslab.train import make_optimizer


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def sdpa_attention(self, x, pad_mask, need_weights=False, positions=None):  # the pre-optimisation training path
    B, T, C = x.shape
    q, k, v = self.qkv(x).view(B, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
    p = self.dropout if self.training else 0.0
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=~pad_mask[:, None, None, :], dropout_p=p)
    return self.proj(y.transpose(1, 2).reshape(B, T, C)), None


def select_mask_dropout(x, p, training):  # newslab's dropout before 2026-12-03: same draws, same mask
    if not training or p == 0.0:
        return x
    bits = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    keep = bits.view(torch.int16)[: x.numel()].view(x.shape) >= round(p * 65536) - 32768
    return x * torch.where(keep, torch.tensor(1.0 / (1.0 - p), dtype=x.dtype), 0.0)


def masked_attention(self, x, pad_mask, need_weights=False, positions=None):  # training path before 2026-12-03
    B, T, C = x.shape
    q, k, v = self.qkv(x).view(B, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
    att = (q * (1.0 / math.sqrt(q.size(-1)))) @ k.transpose(-2, -1)  # (B, nh, T, T)
    weights = att.masked_fill(pad_mask[:, None, None, :], float("-inf")).softmax(dim=-1)
    y = model_mod.dropout(weights, self.dropout if self.training else 0.0, self.training) @ v
    return self.proj(y.transpose(1, 2).reshape(B, T, C)), None


def with_patch(c: Contender, obj, name, value) -> Contender:
    step = c.step

    def patched_step(batch):
        with patched(obj, name, value):
            return step(batch)

    c.step = patched_step
    return c


def custom(name: str, config, ds, build) -> Contender:
    """A contender whose step `build(model, config)` returns; batches as newslab's."""
    torch.manual_seed(0)
    model = TextClassifier.from_config(config.model, ds.vocab_size, ds.num_classes).train()
    step = build(model, config)

    def batches():
        for b in cycle_batches(ds.train, config.optim.batch_size, config.model.max_len):
            yield b, len(b.labels), int(b.pad_mask.numel() - b.pad_mask.sum())

    c = Contender(name, step, batches(), model=model)
    c.warmup_s = warm_up(c, 30)
    return c


def sparse_step(model, config):
    optim = config.optim
    model.tok_emb.sparse = True
    emb = [model.tok_emb.weight]
    rest = [p for p in model.parameters() if p is not model.tok_emb.weight]
    dense = torch.optim.AdamW(
        [
            {"params": [p for p in rest if p.dim() >= 2], "weight_decay": optim.weight_decay},
            {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=optim.lr,
        betas=(0.9, 0.98),
        fused=True,
    )
    sparse = torch.optim.SparseAdam(emb, lr=optim.lr, betas=(0.9, 0.98))  # no weight decay: lazy moments
    amp = amp_dtype(optim.precision, torch.device("cpu"))

    def step(b):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp is not None):
            logits = model(b.ids, b.pad_mask)
        loss = F.cross_entropy(logits.float(), b.labels, label_smoothing=optim.label_smoothing)
        dense.zero_grad(set_to_none=True)
        sparse.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm(rest)
        dense.step()
        sparse.step()

    return step


def unfused_step(model, config):
    optimizer = make_optimizer(model, config.optim, torch.device("cpu"))
    for group in optimizer.param_groups:
        group["fused"] = False  # torch's default on CPU: the single-tensor for-loop
    step = TrainStep(model, optimizer, config.optim, amp_dtype(config.optim.precision, torch.device("cpu")))
    return lambda b: step(b.ids, b.pad_mask, b.labels)


def sync_step(model, config):
    step = TrainStep(
        model,
        make_optimizer(model, config.optim, torch.device("cpu")),
        config.optim,
        amp_dtype(config.optim.precision, torch.device("cpu")),
    )

    def run(b):
        loss, _, norm = step(b.ids, b.pad_mask, b.labels)
        if not math.isfinite(loss.item()) or not math.isfinite(float(norm)):
            raise RuntimeError("diverged")

    return run


def step_group(args, path) -> None:
    config, ds = stand_in(path, embed_dim=args.embed, num_heads=args.embed // 32, num_layers=2, batch_size=64)
    base = newslab_contender("newslab", config, ds, compile=False)
    contenders = [
        base,
        with_patch(newslab_contender("torch dropout", config, ds, compile=False), model_mod, "dropout", F.dropout),
        with_patch(
            newslab_contender("SDPA training", config, ds, compile=False),
            model_mod.SelfAttention,
            "forward",
            sdpa_attention,
        ),
        newslab_contender("fp32", config, ds, compile=False, precision="fp32"),
        custom("sparse emb", config, ds, sparse_step),
        custom("unfused AdamW", config, ds, unfused_step),
        custom("sync per step", config, ds, sync_step),
        with_patch(
            newslab_contender("select mask", config, ds, compile=False), model_mod, "dropout", select_mask_dropout
        ),
        with_patch(
            newslab_contender("masked attention", config, ds, compile=False),
            model_mod.SelfAttention,
            "forward",
            masked_attention,
        ),
    ]
    if not args.no_compile:
        contenders.append(newslab_contender("compiled", config, ds, compile=True, warmup_steps=12))
    rates = interleave(contenders, args.rounds, args.window)
    rows = []
    for c in contenders:
        r = rates[c.name]["samples"]
        rows.append(
            [c.name, statistics.median(r), f"{median_ratio(r, rates['newslab']['samples']):.2f}x", f"{c.warmup_s:.1f}"]
        )
    print(table(rows, ["variant", "samples/s", "vs newslab", "warm-up s"]))


def ceilings_group(args, path) -> None:
    embed = args.embed
    config, ds = stand_in(
        path, embed_dim=embed, num_heads=max(1, embed // 32), num_layers=3, ffn_dim=4 * embed, batch_size=64
    )
    contenders = [
        newslab_contender("newslab", config, ds, compile=False),
        with_patch(
            newslab_contender("dropout free", config, ds, compile=False),
            model_mod,
            "dropout",
            lambda x, p, training: x * 1.0,
        ),
        with_patch(newslab_contender("ReLU for GELU", config, ds, compile=False), model_mod.F, "gelu", F.relu),
    ]
    rates = interleave(contenders, args.rounds, args.window)
    base = rates["newslab"]["samples"]
    rows = [
        [c.name, statistics.median(rates[c.name]["samples"]), f"{median_ratio(rates[c.name]['samples'], base):.2f}x"]
        for c in contenders
    ]
    m = config.model
    print(f"embed {m.embed_dim}, {m.num_layers} layers, FFN {m.ffn_hidden}, batch {config.optim.batch_size}")
    print(table(rows, ["variant (a ceiling, not a candidate)", "samples/s", "vs newslab"]))


def threads_child(path: str, threads: int, seconds: float) -> None:
    torch.set_num_threads(threads)
    config, ds = stand_in(path, embed_dim=128, num_heads=4)
    c = newslab_contender("n", config, ds, compile=False)
    from common import time_window

    samples, _, _ = time_window(c, seconds)
    print(json.dumps({"samples_per_s": samples}))


def threads_group(args, path) -> None:
    def launch(threads: int, policy: str):
        env = {**os.environ, "OMP_WAIT_POLICY": policy}
        return subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--data-dir",
                path,
                "--threads-child",
                str(threads),
                "--window",
                str(args.window),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )

    def rate(procs) -> float:
        return sum(json.loads(p.communicate()[0].strip().splitlines()[-1])["samples_per_s"] for p in procs)

    variants = {
        "1 thread": lambda: [launch(1, "PASSIVE")],
        "2 threads, OpenMP default (spin)": lambda: [launch(2, "ACTIVE")],
        "2 threads, OMP_WAIT_POLICY=PASSIVE": lambda: [launch(2, "PASSIVE")],
        "2 processes x 1 thread (sum)": lambda: [launch(1, "PASSIVE"), launch(1, "PASSIVE")],
    }
    results = {name: [] for name in variants}
    for r in range(args.rounds):
        for name, start in variants.items():
            results[name].append(rate(start()))
        print(f"  round {r + 1}: " + ", ".join(f"{n} {v[-1]:.0f}" for n, v in results.items()), flush=True)
    base = results["1 thread"]
    print(
        table(
            [[n, statistics.median(v), f"{median_ratio(v, base):.2f}x"] for n, v in results.items()],
            ["threads", "samples/s", "vs 1 thread"],
        )
    )


def bucketing_group(args, path) -> None:
    from common import repeat_split

    config, ds = stand_in(path)
    rows = []
    for scale, split in (("stand-in", ds.train), ("full scale", repeat_split(ds.train, 114_000))):
        lengths, labels = split.lengths(config.model.max_len), split.labels
        share = torch.bincount(labels).double() / len(labels)
        for pool in (None, 4, 16, 64, 256, 10**9):
            gen = torch.Generator().manual_seed(0)
            if pool is None:  # plain shuffled batches, for reference
                batches = list(torch.randperm(len(labels), generator=gen).split(64))
            else:
                batches = batch_indices(split, 64, config.model.max_len, gen, pool_batches=pool)
            padded = sum(int(lengths[b].max()) * len(b) for b in batches)
            tv = statistics.fmean(
                0.5 * (torch.bincount(labels[b], minlength=len(share)).double() / len(b) - share).abs().sum().item()
                for b in batches
            )
            rows.append(
                [
                    scale,
                    "shuffled" if pool is None else "all rows" if pool == 10**9 else pool,
                    f"{100 * (1 - int(lengths.sum()) / padded):.1f}%",
                    f"{tv:.3f}",
                ]
            )
    print(table(rows, ["data", "sort pool (batches)", "padding", "class imbalance (mean TV distance per batch)"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--group", choices=("step", "threads", "bucketing", "ceilings"), default="step")
    p.add_argument("--embed", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--window", type=float, default=5.0)
    p.add_argument("--cpu-time", action="store_true", help="1 thread, process CPU time")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--threads-child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    path = data_dir(args.data_dir)
    if args.threads_child:
        return threads_child(path, args.threads_child, args.window)
    if args.cpu_time:
        torch.set_num_threads(1)
        common.CLOCK = time.process_time
    print(machine() + (" | CPU-time clock" if args.cpu_time else ""))
    groups = {"step": step_group, "threads": threads_group, "bucketing": bucketing_group, "ceilings": ceilings_group}
    groups[args.group](args, path)


if __name__ == "__main__":
    main()
