"""Shared pieces of the benchmarks: data, newslab's training step, interleaved timing, FLOPs.

Absolute times on a shared machine drift with the neighbours' load, so every benchmark
times its contenders in alternating windows (A, B, A, B, ...) inside one process and
reports medians and the median of per-round ratios: a load change hits both alike.
"""

from __future__ import annotations

import os

# Before torch starts OpenMP: on a machine shared with other jobs, OpenMP's default of spinning
# while waiting makes 2-thread rates swing with the neighbours' load; PASSIVE keeps ratios
# stable. On an idle machine spinning is faster (experiments.py --group threads, README.md):
# set OMP_WAIT_POLICY=ACTIVE yourself to time newslab as it runs by default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `python benchmarks/x.py` from the repo root

from newslab import allocator
from newslab.config import RunConfig
from newslab.data import Dataset, EncodedSplit, cache_dir, iterate_batches, load_dataset
from newslab.model import TextClassifier
from newslab.step import TrainStep, amp_dtype
from newslab.train import make_optimizer

GRID = [(64, 2), (128, 4), (256, 8)]  # (embed_dim, num_heads) of the seed manual's grid


def data_dir(arg: str | None) -> str:
    path = arg or os.environ.get("NEWSLAB_DATA_DIR") or "../shared/data/ag_news_mini"
    if not Path(path, "train.csv").is_file():
        sys.exit(f"no AG News stand-in at {path}: pass --data-dir or set NEWSLAB_DATA_DIR")
    return path


def stand_in(path: str, **changes) -> tuple[RunConfig, Dataset]:
    """The stand-in data, tokenized by newslab's defaults (cache under /tmp, never in the repo)."""
    os.environ.setdefault("NEWSLAB_CACHE_DIR", "/tmp/newslab-bench-cache")
    config = RunConfig.create(data_dir=path, out_dir="/tmp/newslab-bench", **changes)
    return config, load_dataset(config.data, cache_dir(config.execution.out_dir), progress=False)


def repeat_split(split: EncodedSplit, rows: int, seed: int = 0) -> EncodedSplit:
    """`split` repeated and shuffled to `rows` rows: full-scale size, the real length distribution."""
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed)) % len(split)
    lengths = (split.offsets[1:] - split.offsets[:-1])[order]
    offsets = torch.zeros(rows + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=offsets[1:])
    ids = torch.cat([split.ids[split.offsets[i] : split.offsets[i + 1]] for i in order.tolist()])
    return EncodedSplit(ids, offsets, split.labels[order], [split.texts[i] for i in order.tolist()])


def cycle_batches(split: EncodedSplit, batch_size: int, max_len: int, seed: int = 0) -> Iterator:
    """newslab's bucketed training batches, epoch after epoch."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield from iterate_batches(split, batch_size, max_len, gen)


@dataclass
class Contender:
    """One thing to time: `step(batch)` trains on one batch; `batches` yields (batch, samples, tokens)."""

    name: str
    step: Callable
    batches: Iterator
    warmup_s: float = 0.0  # first steps (compilation included), reported, never in the rates
    model: torch.nn.Module | None = None


def newslab_contender(
    name: str,
    config: RunConfig,
    dataset: Dataset,
    compile: bool,
    precision: str = "auto",
    split: EncodedSplit | None = None,
    warmup_steps: int = 30,
) -> Contender:
    """newslab's own TrainStep (the one train() runs) on its bucketed batches.

    The warm-up steps meet most sequence lengths once: oneDNN builds a kernel per new matmul
    shape (a one-time cost per run, like compilation), which would otherwise land in round 1.
    """
    torch.manual_seed(0)
    model = TextClassifier.from_config(config.model, dataset.vocab_size, dataset.num_classes).train()
    optimizer = make_optimizer(model, config.optim, torch.device("cpu"))
    step = TrainStep(model, optimizer, config.optim, amp_dtype(precision, torch.device("cpu")), compile)

    def batches():
        for b in cycle_batches(split or dataset.train, config.optim.batch_size, config.model.max_len):
            yield b, len(b.labels), int(b.pad_mask.numel() - b.pad_mask.sum())

    c = Contender(name, lambda b: step(b.ids, b.pad_mask, b.labels), batches(), model=model)
    c.warmup_s = warm_up(c, warmup_steps)
    return c


def warm_up(c: Contender, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        batch, _, _ = next(c.batches)
        c.step(batch)
    return time.perf_counter() - t0


# Wall time by default. `--cpu-time` (experiments at 1 thread) uses the process's CPU time
# instead, which a neighbour's load barely changes: for A/B decisions on a busy machine.
CLOCK = time.perf_counter


def time_window(c: Contender, seconds: float, min_steps: int = 2) -> tuple[float, float, list]:
    """Train for at least `seconds` and `min_steps`; returns (samples/s, real tokens/s, per-batch (samples, tokens))."""
    seen, t0 = [], CLOCK()
    while True:
        batch, samples, tokens = next(c.batches)
        c.step(batch)
        seen.append((samples, tokens))
        elapsed = CLOCK() - t0
        if elapsed >= seconds and len(seen) >= min_steps:
            return sum(s for s, _ in seen) / elapsed, sum(t for _, t in seen) / elapsed, seen


def interleave(
    contenders: list[Contender], rounds: int, seconds: float, log: Callable[[str], None] = print
) -> dict[str, dict]:
    """Alternate timed windows of every contender for `rounds` rounds; per-window rates kept."""
    rates = {c.name: {"samples": [], "tokens": [], "windows": []} for c in contenders}
    for r in range(rounds):
        order = contenders if r % 2 == 0 else contenders[::-1]  # no contender always goes first
        for c in order:
            s, t, seen = time_window(c, seconds)
            rates[c.name]["samples"].append(s)
            rates[c.name]["tokens"].append(t)
            rates[c.name]["windows"].append(seen)
        log(
            f"  round {r + 1}/{rounds}: "
            + ", ".join(f"{c.name} {rates[c.name]['samples'][-1]:.0f}" for c in contenders)
            + " samples/s"
        )
    return rates


def round_ratios(a: list[float], b: list[float]) -> list[float]:
    """Per-round ratios a/b (each round's windows ran back to back, under the same load)."""
    return [x / y for x, y in zip(a, b)]


def median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(round_ratios(a, b))


LEVEL = 0.9  # least coverage of a median's interval (5 rounds reach 94% at most, 9 rounds 96%)


@dataclass(frozen=True)
class MedianInterval:
    """Median of per-round values and a distribution-free interval for the population median."""

    median: float
    low: float
    high: float
    coverage: float  # probability that [low, high] holds the median of the rounds' distribution

    def verdict(self, target: float) -> str:
        """Against a lower target: met only if the whole interval clears it, NOT met if none of it does;
        inconclusive too when the interval's coverage falls short of LEVEL (fewer than 5 rounds)."""
        if self.coverage < LEVEL:
            return "inconclusive (too few rounds)"
        return "met" if self.low >= target else "NOT met" if self.high < target else "inconclusive"


def median_interval(values: Sequence[float], level: float = LEVEL) -> MedianInterval:
    """The median and the order-statistic interval [x(k), x(n+1-k)] with the largest k whose coverage,
    1 - 2 P(Binomial(n, 1/2) < k), is still >= level ([min, max] when even that falls short).

    Distribution-free: each round lands below the median with probability 1/2, whatever the noise's shape
    (a neighbour's burst of load slows one round a lot; a t interval would let it widen every bound).
    """
    xs, n = sorted(values), len(values)

    def coverage(k: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k < (n + 1) // 2 and coverage(k + 1) >= level:
        k += 1
    return MedianInterval(statistics.median(xs), xs[k - 1], xs[n - k], coverage(k))


# ------------------------------------------------------------------------------- FLOPs
def non_embedding_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "emb" not in n)


def useful_train_flops(model: TextClassifier, lengths: torch.Tensor) -> float:
    """6 x non-embedding parameters x real tokens + attention (QK^T and AV: 4 T^2 C forward, x3 with backward)."""
    C, L = model.tok_emb.embedding_dim, len(model.blocks)
    lengths = lengths.double()
    return 6 * non_embedding_params(model) * lengths.sum().item() + 12 * L * C * (lengths**2).sum().item()


def gemm_peak(dtype: torch.dtype = torch.float32, sizes=(1024, 2048, 3072), repeats: int = 3) -> float:
    """Best FLOP/s of several large square matrix products (the machine's practical GEMM peak)."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def as_newslab_runs() -> None:
    """Re-execute this benchmark under tcmalloc, the allocator the `newslab` command trains with (allocator.py).

    Under glibc's malloc every large activation of a new shape is a fresh mmap whose pages fault in
    inside the matrix multiplies (vs_peak.py at embed 256: 79.5 vs 93.0 GFLOP/s, benchmarks/README.md).
    NEWSLAB_ALLOCATOR=system: glibc's.
    """
    allocator.reexec_with_tcmalloc(sys.argv[1:], program=[sys.argv[0]])


# ----------------------------------------------------------------------------- report
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = [f for f in ("avx512", "avx512_bf16", "amx") if _has(f)]
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads "
        f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}), {'/'.join(flags) or 'no avx512'}, "
        f"malloc {allocator.current()}, "
        f"load avg {os.getloadavg()[0]:.1f}"
    )


def _has(flag: str) -> bool:
    probes = {
        "avx512": "_is_avx512_supported",
        "avx512_bf16": "_is_avx512_bf16_supported",
        "amx": "_is_amx_tile_supported",
    }
    return bool(getattr(torch.cpu, probes[flag], lambda: False)())


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [
        [
            f"{v:,.0f}" if isinstance(v, float) and abs(v) >= 100 else f"{v:.3g}" if isinstance(v, float) else str(v)
            for v in row
        ]
        for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
