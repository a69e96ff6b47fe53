"""Wall time of a whole study with `--workers 1` vs `--workers 2` on this machine.

    python benchmarks/study_workers.py --data-dir ../shared/data/ag_news_mini
    python benchmarks/study_workers.py --data-dir ../shared/data/ag_news_mini --preset quick-grid --seeds 1

Each setting runs the preset from scratch (fresh output folder, SQLite storage) through the
same `newslab study run` command a user types, in alternating order over --rounds rounds, so
a change in the machine's load hits both. `--workers N` gives each worker cores / N threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(preset: str, workers: int, seeds: int, data_dir: str) -> float:
    with tempfile.TemporaryDirectory(prefix="newslab-workers-") as out:
        command = [
            sys.executable,
            "-m",
            "newslab",
            "study",
            "run",
            preset,
            "--workers",
            str(workers),
            "--seeds",
            str(seeds),
            "--out-dir",
            out,
            "--storage",
            f"sqlite:///{out}/studies.db",
        ]
        env = {**os.environ, "NEWSLAB_DATA_DIR": data_dir, "NEWSLAB_CACHE_DIR": str(Path(out, "cache"))}
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--preset", default="quick-grid")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.preset}, {args.seeds} seeds, {cores} cores, torch threads per worker = cores / workers")
    times: dict[int, list[float]] = {1: [], 2: []}
    for round_ in range(args.rounds):
        order = (1, 2) if round_ % 2 == 0 else (2, 1)
        for workers in order:
            times[workers].append(run_once(args.preset, workers, args.seeds, args.data_dir))
            print(f"  round {round_ + 1}: --workers {workers}: {times[workers][-1]:.0f} s", flush=True)
    median = {w: statistics.median(t) for w, t in times.items()}
    print("\nworkers | median wall s | runs")
    print("--------+---------------+-----")
    for workers, seconds in median.items():
        print(f"{workers:7d} | {seconds:13.0f} | {len(times[workers])}")
    print(f"KEY RATIO: --workers 2 is {median[1] / median[2]:.2f}x the speed of --workers 1")


if __name__ == "__main__":
    main()
