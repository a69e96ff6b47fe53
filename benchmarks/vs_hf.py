"""newslab vs Hugging Face BertForSequenceClassification at equal dimensions (pip install -e ".[bench]").

    python benchmarks/vs_hf.py --data-dir ../shared/data/ag_news_mini
    python benchmarks/vs_hf.py --data-dir ../shared/data/ag_news_mini --sizes 128 --accuracy-epochs 0

What a user would pick instead: BERT built from a config (random init, no download) with
newslab's layers, width, heads, FFN (4 x embed), vocabulary (newslab's default tokenizer's + a [CLS]
id) and max length (128); dynamic padding of shuffled batches (DataCollatorWithPadding's
behaviour: pad to the longest row of each random batch), torch.optim.AdamW with its CPU
defaults, fp32; batch 64 on the same rows. A second HF row runs it under bf16 autocast, to
show how much of the gap is precision. Steps are timed in interleaved windows.
Accuracy: both trained for the same number of steps (newslab's epochs x batches) with the
same lr schedule (warm-up 10%, linear decay, lr 1e-3, weight decay 0.1), then scored on test.
Targets: newslab >= 1.5x HF's samples/s at embed 64 and 128, >= 1.2x at 256; accuracy >= HF's.
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

import common  # noqa: F401  (first: sets the OpenMP wait policy before torch starts)
from common import (
    GRID,
    Contender,
    data_dir,
    interleave,
    machine,
    median_ratio,
    newslab_contender,
    stand_in,
    table,
    warm_up,
)
from newslab.data import EncodedSplit, iterate_batches
from newslab.model import TextClassifier
from newslab.runs import evaluate
from newslab.step import TrainStep, amp_dtype, autocast
from newslab.train import lr_lambda, make_optimizer


def hf_model(vocab: int, classes: int, embed: int, heads: int, layers: int, max_len: int):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab + 1,
        hidden_size=embed,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * embed,
        max_position_embeddings=max_len,
        num_labels=classes,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        pad_token_id=0,
    )
    return BertForSequenceClassification(config)


def hf_batches(split: EncodedSplit, cls_id: int, batch_size: int, max_len: int, seed: int = 0, shuffle: bool = True):
    """Shuffled batches padded to their longest row: [CLS] + ids, truncated to max_len. Endless when shuffling."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(split), generator=gen) if shuffle else torch.arange(len(split))
        for index in order.split(batch_size):
            rows = [torch.cat([torch.tensor([cls_id]), split.row(int(i), max_len - 1).long()]) for i in index]
            ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (B, T), 0 = [PAD]
            mask = (ids != 0).long()
            mask[:, 0] = 1
            yield (ids, mask, split.labels[index]), len(index), int(mask.sum())
        if not shuffle:
            return


def hf_step(
    model, lr: float = 1e-3, amp: torch.dtype | None = None, total_steps: int | None = None, weight_decay: float = 0.01
):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total_steps, 0.1)) if total_steps else None
    model.train()

    def step(batch):
        ids, mask, labels = batch
        with autocast(torch.device("cpu"), amp):
            logits = model(input_ids=ids, attention_mask=mask).logits
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        return loss.item()

    return step


@torch.inference_mode()
def hf_accuracy(model, split: EncodedSplit, cls_id: int, max_len: int) -> float:
    model.eval()
    correct = 0
    for (ids, mask, labels), _, _ in hf_batches(split, cls_id, 256, max_len, shuffle=False):
        correct += int((model(input_ids=ids, attention_mask=mask).logits.argmax(-1) == labels).sum())
    return correct / len(split)


def accuracy_after_same_steps(config, ds, embed, heads, layers, epochs: int, seed: int) -> tuple[float, float, int]:
    """Test accuracy of newslab and of HF BERT after the same number of steps, same schedule."""
    config = config.replace(epochs=epochs, seed=seed)
    optim, max_len = config.optim, config.model.max_len
    steps = epochs * math.ceil(len(ds.train) / optim.batch_size)
    torch.manual_seed(seed)
    model = TextClassifier.from_config(config.model, ds.vocab_size, ds.num_classes)
    optimizer = make_optimizer(model, optim, torch.device("cpu"))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(steps, optim.warmup))
    step = TrainStep(model, optimizer, optim, amp_dtype(optim.precision, torch.device("cpu")))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for b in iterate_batches(ds.train, optim.batch_size, max_len, gen):
            step(b.ids, b.pad_mask, b.labels)
            scheduler.step()
    ours = evaluate(model, ds.test, ds.num_classes, torch.device("cpu"), 256, max_len, optim.precision).accuracy
    torch.manual_seed(seed)
    bert = hf_model(ds.vocab_size, ds.num_classes, embed, heads, layers, max_len)
    hstep = hf_step(bert, optim.lr, total_steps=steps, weight_decay=optim.weight_decay)
    batches = hf_batches(ds.train, ds.vocab_size, optim.batch_size, max_len, seed)
    for _ in range(steps):
        hstep(next(batches)[0])
    return ours, hf_accuracy(bert, ds.test, ds.vocab_size, max_len), steps


def mean_std(xs: list[float]) -> str:
    mean = sum(xs) / len(xs)
    std = (sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
    return f"{100 * mean:.2f} ± {100 * std:.2f}%"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--sizes", type=int, nargs="+", default=[e for e, _ in GRID])
    p.add_argument("--layers", type=int, default=2, help="newslab's default")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--window", type=float, default=5.0)
    p.add_argument("--accuracy-epochs", type=int, default=3, help="0 skips the accuracy comparison")
    p.add_argument("--seeds", type=int, default=1, help="accuracy: mean over seeds 0..N-1")
    p.add_argument("--accuracy-only", action="store_true", help="skip the throughput windows")
    args = p.parse_args()
    path = data_dir(args.data_dir)
    print(machine())
    rows, verdicts = [], []
    for embed, heads in [g for g in GRID if g[0] in args.sizes]:
        config, ds = stand_in(path, embed_dim=embed, num_heads=heads, num_layers=args.layers, batch_size=64)
        print(f"\nembed {embed}, {heads} heads, {args.layers} layers, FFN {4 * embed}, vocab {ds.vocab_size}, batch 64")
        if args.accuracy_only:
            accs = [
                accuracy_after_same_steps(config, ds, embed, heads, args.layers, args.accuracy_epochs, seed)
                for seed in range(args.seeds)
            ]
            ours, theirs = [a[0] for a in accs], [a[1] for a in accs]
            rows.append(
                [
                    embed,
                    mean_std(ours),
                    mean_std(theirs),
                    f"{100 * (sum(ours) - sum(theirs)) / len(accs):+.2f}",
                    " ".join(f"{100 * (a - b):+.2f}" for a, b in zip(ours, theirs)),
                ]
            )
            print(f"  embed {embed}: " + rows[-1][1] + " vs " + rows[-1][2], flush=True)
            continue
        contenders = [newslab_contender("newslab", config, ds, compile=False)]
        for name, amp in (("HF BERT fp32", None), ("HF BERT bf16", torch.bfloat16)):
            torch.manual_seed(0)
            bert = hf_model(ds.vocab_size, ds.num_classes, embed, heads, args.layers, config.model.max_len)
            c = Contender(name, hf_step(bert, amp=amp), hf_batches(ds.train, ds.vocab_size, 64, config.model.max_len))
            c.warmup_s = warm_up(c, 30)  # as newslab's: most batch shapes seen once
            contenders.append(c)
        rates = interleave(contenders, args.rounds, args.window)
        ours = rates["newslab"]["samples"]
        acc = (
            accuracy_after_same_steps(config, ds, embed, heads, args.layers, args.accuracy_epochs, 0)
            if args.accuracy_epochs
            else None
        )
        for c in contenders:
            r = rates[c.name]
            med = sorted(r["samples"])[len(r["samples"]) // 2]
            medt = sorted(r["tokens"])[len(r["tokens"]) // 2]
            test_acc = (
                "" if acc is None or "bf16" in c.name else f"{100 * (acc[0] if c.name == 'newslab' else acc[1]):.2f}%"
            )
            rows.append([embed, c.name, med, medt, f"{median_ratio(ours, r['samples']):.2f}x", test_acc])
        speedup = median_ratio(ours, rates["HF BERT fp32"]["samples"])
        verdicts.append((embed, speedup, median_ratio(ours, rates["HF BERT bf16"]["samples"]), acc))
    print()
    if args.accuracy_only:
        print(table(rows, ["embed", "newslab test acc", "HF BERT test acc", "mean diff (points)", "per seed"]))
        print(
            f"after {args.accuracy_epochs} newslab epochs' worth of steps each, seeds 0..{args.seeds - 1}, "
            "final weights, 800 test rows"
        )
        return
    print(table(rows, ["embed", "model", "samples/s", "real tokens/s", "newslab speed-up", "test acc"]))
    if args.accuracy_epochs:
        print(
            f"test acc: after {verdicts[0][3][2]} steps each ({args.accuracy_epochs} newslab epochs), seed 0, "
            "final weights, 800 test rows"
        )
    for embed, speedup, vs_bf16, acc in verdicts:
        target = 1.2 if embed >= 256 else 1.5
        line = (
            f"embed {embed}: newslab {speedup:.2f}x HF BERT fp32 ({vs_bf16:.2f}x HF bf16); target >= {target}x: "
            f"{'met' if speedup >= target else 'NOT met'}"
        )
        if acc:
            line += f"; accuracy {100 * acc[0]:.2f}% vs {100 * acc[1]:.2f}%: {'met' if acc[0] >= acc[1] else 'NOT met'}"
        print(line)
    print(f"KEY RATIO (min over sizes, vs HF fp32): {min(v[1] for v in verdicts):.2f}x")


if __name__ == "__main__":
    main()
