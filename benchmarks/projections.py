"""Full-scale projections: epoch time per grid size at AG News size, study wall time, peak memory.

    python benchmarks/projections.py --data-dir ../shared/data/ag_news_mini
    python benchmarks/projections.py --data-dir ../shared/data/ag_news_mini --sizes 128 --rows 30000  # quicker

The stand-in's rows are repeated and shuffled to AG News' size in memory (train.csv 120,000
rows: 114,000 train + 6,000 validation after newslab's 5% hold-out; test 7,600), so the token
lengths follow the real distribution. Each grid size runs `newslab.train` for one epoch in a
fresh process (peak RSS of that process = the run's memory), with the settings a study uses
(defaults: 2 layers, --compile auto, --precision auto). With --rows below 114,000 the epoch
time is scaled up linearly (step time does not depend on the data size) and marked so.
From the per-size figures: wall time of `seed-grid` (3 sizes x 2 lr x 3 epochs on its selection
seeds, then 3 sizes on its confirmation seeds) and of `seed-ablations` (7 variants x 2 lr, then 7
variants, at the best grid size), with the presets' seed counts, one worker using both cores
(confirmation runs counted at the full 3 epochs: an upper bound). Targets: an epoch at embed 128 <= 3 min; peak RSS at embed 256 <= 2 GB.
Children run under tcmalloc when it is installed, as the `newslab` command does
(--allocator system: glibc's malloc, to compare). OMP_WAIT_POLICY=ACTIVE times runs as newslab
runs them on an idle machine (the benchmarks' PASSIVE default is for busy ones).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import common  # noqa: F401  (first: sets the OpenMP wait policy before torch starts)
from common import GRID, data_dir, machine, table
from newslab import allocator
from newslab.study import load_spec

FULL_TRAIN, FULL_VAL, FULL_TEST = 114_000, 6_000, 7_600
EPOCHS, ABLATIONS = 3, 7
GRID_SPEC, ABLATION_SPEC = load_spec("seed-grid"), load_spec("seed-ablations")


def child(path: str, embed: int, heads: int, rows: int) -> None:
    """One run of one epoch at full scale; prints a JSON line with its timings and peak RSS."""
    import torch

    from common import repeat_split, stand_in
    from newslab.data import Dataset
    from newslab.model import TextClassifier
    from newslab.runs import evaluate
    from newslab.train import train

    config, ds = stand_in(path, embed_dim=embed, num_heads=heads, epochs=1, batch_size=64)
    big = Dataset(
        repeat_split(ds.train, rows),
        repeat_split(ds.val, FULL_VAL, 1),
        repeat_split(ds.test, FULL_TEST, 2),
        ds.tokenizer,
        ds.class_names,
        ds.info,
    )
    t0 = time.perf_counter()
    result = train(
        config.replace(out_dir=tempfile.mkdtemp(prefix="newslab-proj-")), dataset=big, log=None, progress=False
    )
    wall = time.perf_counter() - t0
    # a pass costs the same at any weights
    model = TextClassifier.from_config(config.model, ds.vocab_size, ds.num_classes)
    t1 = time.perf_counter()
    evaluate(
        model,
        big.val,
        ds.num_classes,
        torch.device("cpu"),
        config.execution.eval_batch_size,
        config.model.max_len,
        config.optim.precision,
    )
    val_s = time.perf_counter() - t1
    final = json.loads((result.run_dir / "final.json").read_text())
    print(
        json.dumps(
            {
                "embed": embed,
                "rows": rows,
                "epoch_s": result.history[0]["epoch_time_s"],
                "wall_s": wall,
                "val_s": val_s,
                "samples_per_s": result.samples_per_s,
                "compiled": final["compiled"],
                "precision": final["precision"],
                "allocator": final["allocator"],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "val_acc": result.best_val_accuracy,
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--sizes", type=int, nargs="+", default=[e for e, _ in GRID])
    p.add_argument("--rows", type=int, default=FULL_TRAIN, help="training rows actually run (epoch time scaled up)")
    p.add_argument(
        "--allocator",
        choices=("auto", "system"),
        default="auto",
        help="auto: tcmalloc when installed, as the newslab command; system: glibc malloc",
    )
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    path = data_dir(args.data_dir)
    if args.child:
        return child(path, args.child, dict(GRID)[args.child], args.rows)
    print(machine())
    env = dict(os.environ, **{allocator.ENV: args.allocator})
    env = allocator.preload_environment(env, allocator.find_tcmalloc()) or env
    runs = {}
    for embed, _ in [g for g in GRID if g[0] in args.sizes]:
        out = subprocess.run(
            [sys.executable, __file__, "--data-dir", path, "--child", str(embed), "--rows", str(args.rows)],
            capture_output=True,
            text=True,
            env=env,
        )
        line = [x for x in out.stdout.splitlines() if x.startswith("{")]
        if out.returncode or not line:
            sys.exit(f"embed {embed}: child failed\n{out.stderr[-3000:]}")
        m = json.loads(line[-1])
        scale = FULL_TRAIN / m["rows"]
        m["epoch_full_s"] = m["epoch_s"] * scale
        m["overhead_s"] = m["wall_s"] - m["epoch_s"] - m["val_s"]  # model build, test pass, checkpoints, compile
        m["run_s"] = m["overhead_s"] + EPOCHS * (m["epoch_full_s"] + m["val_s"])  # one 3-epoch run
        runs[embed] = m
        print(
            f"  embed {embed}: {m['samples_per_s']:.0f} samples/s, epoch {m['epoch_full_s'] / 60:.1f} min"
            f"{' (scaled from ' + str(m['rows']) + ' rows)' if scale != 1 else ''}, peak RSS {m['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    rows = [
        [
            e,
            f"{m['samples_per_s']:.0f}",
            f"{m['epoch_full_s'] / 60:.2f}",
            f"{m['val_s']:.0f}",
            f"{m['overhead_s']:.0f}",
            f"{m['run_s'] / 60:.1f}",
            f"{m['peak_rss_mb']:.0f}",
            m["allocator"],
            m["precision"],
            str(m["compiled"]),
        ]
        for e, m in runs.items()
    ]
    print()
    print(
        table(
            rows,
            [
                "embed",
                "samples/s",
                "epoch min",
                "val pass s",
                "per-run overhead s",
                "3-epoch run min",
                "peak RSS MB",
                "allocator",
                "precision",
                "compiled",
            ],
        )
    )
    if len(runs) == len(GRID):
        per_point = lambda spec: len(spec.seed_list) * len(spec.choices("lr")) + len(spec.confirm_seed_list)
        grid = sum(per_point(GRID_SPEC) * m["run_s"] for m in runs.values())
        print("\nprojected wall time, one worker on this machine (hours):")
        proj = []
        for base, m in runs.items():
            abl = ABLATIONS * per_point(ABLATION_SPEC) * m["run_s"]  # as a baseline run (no_ffn/freeze_emb: less)
            seeds = f"{len(GRID_SPEC.seed_list)}+{len(GRID_SPEC.confirm_seed_list)} / "
            seeds += f"{len(ABLATION_SPEC.seed_list)}+{len(ABLATION_SPEC.confirm_seed_list)}"
            proj.append([seeds, f"{base}", f"{grid / 3600:.2f}", f"{abl / 3600:.2f}", f"{(grid + abl) / 3600:.2f}"])
        print(
            table(proj, ["seeds (select+confirm)", "ablations at embed", "seed-grid h", "seed-ablations h", "total h"])
        )
    if 128 in runs:
        e = runs[128]["epoch_full_s"] / 60
        print(f"embed 128 epoch: {e:.2f} min (target <= 3 min: {'met' if e <= 3 else 'NOT met'})")
    if 256 in runs:
        r = runs[256]["peak_rss_mb"]
        print(f"embed 256 peak RSS: {r:.0f} MB (target <= 2048 MB: {'met' if r <= 2048 else 'NOT met'})")
    if 128 in runs:
        print(f"KEY RATIO: embed-128 epoch {runs[128]['epoch_full_s'] / 60:.2f} min (target 3 min)")


if __name__ == "__main__":
    main()
