"""Peak memory of training by malloc: why the `newslab` command runs under tcmalloc.

    python benchmarks/memory.py --data-dir ../shared/data/ag_news_mini
    python benchmarks/memory.py --data-dir ../shared/data/ag_news_mini --embed 128 --steps 200  # quicker

Each variant is a fresh process running `--steps` of newslab's training step on the stand-in's
bucketed batches (a new (B, T) shape almost every step, as in training), or on the largest
of 50 such batches repeated (one shape): glibc's malloc, glibc with malloc_trim(0) after every step (memory
handed back to the system, then faulted in again), tcmalloc and jemalloc where installed
(Debian: libtcmalloc-minimal4, libjemalloc2), preloaded with LD_PRELOAD. Prints peak and final
resident memory and steps/s; ends with the peak RSS of glibc over tcmalloc on bucketed batches.
Sequential processes: the steps/s column drifts with the machine's load (a few % here).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import resource
import subprocess
import sys
import time

import common  # noqa: F401  (first: sets the OpenMP wait policy before torch starts)
from common import GRID, data_dir, machine, table
from newslab import allocator

VARIANTS = ["glibc", "glibc + malloc_trim", "tcmalloc", "jemalloc"]


def child(path: str, embed: int, steps: int, shapes: str, trim: bool) -> None:
    import itertools

    from common import newslab_contender, stand_in

    config, ds = stand_in(path, embed_dim=embed, num_heads=dict(GRID)[embed])
    newslab = newslab_contender("newslab", config, ds, compile=False, warmup_steps=0)  # the step train() runs
    batches = (batch for batch, _, _ in newslab.batches)
    if shapes == "fixed":
        batches = itertools.repeat(max(itertools.islice(batches, 50), key=lambda b: b.ids.numel()))  # the largest
    libc = ctypes.CDLL(None) if trim else None
    t0 = time.perf_counter()
    for batch in itertools.islice(batches, steps):
        newslab.step(batch)
        if libc:
            libc.malloc_trim(0)
    rate = steps / (time.perf_counter() - t0)
    final = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    print(
        json.dumps(
            {
                "allocator": allocator.current(),
                "steps_per_s": rate,
                "final_rss_mb": final,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def environment(variant: str) -> dict | None:
    env = dict(os.environ, LD_PRELOAD="")
    if variant in ("tcmalloc", "jemalloc"):
        library = allocator.find_tcmalloc() if variant == "tcmalloc" else ctypes.util.find_library("jemalloc")
        if library is None:
            return None
        env["LD_PRELOAD"] = library
    return env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--embed", type=int, default=256, choices=[e for e, _ in GRID])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--child", nargs=2, metavar=("SHAPES", "TRIM"), help=argparse.SUPPRESS)
    args = p.parse_args()
    path = data_dir(args.data_dir)
    if args.child:
        return child(path, args.embed, args.steps, args.child[0], args.child[1] == "trim")
    print(machine())
    print(f"embed {args.embed}, {args.steps} training steps per process, batch 64")
    rows, peak = [], {}
    for shapes in ("bucketed", "fixed"):
        for variant in VARIANTS if shapes == "bucketed" else ["glibc", "tcmalloc"]:
            env = environment(variant)
            if env is None:
                rows.append([shapes, variant, "not installed", "", "", ""])
                continue
            command = [
                sys.executable,
                __file__,
                "--data-dir",
                path,
                "--embed",
                str(args.embed),
                "--steps",
                str(args.steps),
                "--child",
                shapes,
                "trim" if "trim" in variant else "-",
            ]
            out = subprocess.run(command, capture_output=True, text=True, env=env)
            line = [x for x in out.stdout.splitlines() if x.startswith("{")]
            if out.returncode or not line:
                sys.exit(f"{shapes} / {variant}: child failed\n{out.stderr[-3000:]}")
            m = json.loads(line[-1])
            peak[shapes, variant] = m["peak_rss_mb"]
            rows.append(
                [
                    shapes,
                    variant,
                    m["allocator"],
                    f"{m['peak_rss_mb']:.0f}",
                    f"{m['final_rss_mb']:.0f}",
                    f"{m['steps_per_s']:.2f}",
                ]
            )
            print(f"  {shapes} / {variant}: peak {m['peak_rss_mb']:.0f} MB, {m['steps_per_s']:.2f} steps/s", flush=True)
    print()
    print(table(rows, ["batches", "malloc", "loaded", "peak RSS MB", "final RSS MB", "steps/s"]))
    if ("bucketed", "tcmalloc") in peak:
        ratio = peak["bucketed", "glibc"] / peak["bucketed", "tcmalloc"]
        print(f"KEY RATIO: peak RSS glibc / tcmalloc on bucketed batches = {ratio:.2f}x")


if __name__ == "__main__":
    main()
