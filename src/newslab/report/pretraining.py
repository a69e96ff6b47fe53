"""The pretraining chapter: a study whose only scientific factor is the initialisation (`init_from`, or jointly
`init_from,finetune`: the `pretraining` presets) read against its first point, from scratch. Each pretrained
variant is compared with it on the confirmation runs (the paired test, Bonferroni-adjusted over the variants)
at the same fine-tuning budget, beside what each costs: the fine-tuning time of a run and, once per data split,
the pretraining time of the encoder it started from (read from the encoders' folders, pretrain.py)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..study.results import StudyResult, Summary
from .effects import Comparison, compare

KEYS = ("init_from", "init_from,finetune")


def pretraining_studies(results: list[StudyResult]) -> list[StudyResult]:
    return [r for r in results if r.points() and len(r.spec.scientific) == 1 and list(r.spec.scientific)[0] in KEYS]


@dataclass
class Encoder:
    """A pretrained encoder some runs started from: its folder and what pretraining it took."""

    folder: str
    seconds: float | None  # training time of the pretraining
    held_out_accuracy: float | None  # on the hidden tokens of its held-out texts, at its best epoch
    epochs: int | None


@dataclass
class Variant:
    point: dict
    selection: Summary
    confirmation: Summary | None
    comparison: Comparison | None = None  # against from scratch; None for it, or unconfirmed
    encoders: list[Encoder] = field(default_factory=list)

    @property
    def pretrained(self) -> bool:
        return self.point.get("init_from") is not None

    @property
    def seconds(self) -> float | None:
        runs = (self.confirmation or self.selection).trials
        times = [t.wall_time_s for t in runs if t.wall_time_s is not None]
        return statistics.fmean(times) if times else None

    @property
    def pretraining_seconds(self) -> float | None:
        """The pretraining time of one encoder (the mean over the encoders this variant's runs started from)."""
        times = [e.seconds for e in self.encoders if e.seconds is not None]
        return statistics.fmean(times) if times else None


def _encoder(run_dir: str) -> Encoder | None:
    try:
        config = json.loads((Path(run_dir) / "config.json").read_text())
        folder = config["optim"].get("init_from")
        if not folder:
            return None
        final = json.loads((Path(folder) / "final.json").read_text())
        history = [line.split(",") for line in (Path(folder) / "metrics.csv").read_text().splitlines()[1:]]
    except (OSError, ValueError, KeyError):
        return Encoder(str(run_dir), None, None, None)
    best = final.get("best_epoch")
    accuracy = next((float(row[3]) for row in history if best is not None and int(row[0]) == best), None)
    return Encoder(folder, final.get("train_seconds"), accuracy, len(history))


@dataclass
class PretrainingAnalysis:
    study: StudyResult
    variants: list[Variant]  # the spec's order; the first is the reference (from scratch)

    @property
    def family(self) -> int:
        """The comparisons' family: every variant of the spec but from scratch."""
        return len(next(iter(self.study.spec.scientific.values()))) - 1


def analyse_pretraining(result: StudyResult) -> PretrainingAnalysis:
    key = list(result.spec.scientific)[0]
    names = key.split(",")
    levels = [dict(zip(names, v if len(names) > 1 else [v])) for v in result.spec.scientific[key]]
    found = {json.dumps(p.point, sort_keys=True): p for p in result.points()}
    variants = []
    for level in levels:
        point = found.get(json.dumps(level, sort_keys=True))
        if point is not None:
            variants.append(Variant(level, point, result.confirmation(point)))
    base = variants[0] if variants and not variants[0].pretrained else None
    compared = [v for v in variants if v is not base and v.confirmation is not None]
    if base is not None and base.confirmation is not None:
        for v in compared:  # the family: every planned variant, confirmed yet or not
            v.comparison = compare(v.confirmation, base.confirmation, len(levels) - 1)  # type: ignore[arg-type]
    for v in variants:
        if v.pretrained:
            runs = [*v.selection.trials, *(v.confirmation.trials if v.confirmation else [])]
            seen = {e.folder: e for t in runs if t.run_dir and (e := _encoder(t.run_dir)) is not None}
            v.encoders = list(seen.values())
    return PretrainingAnalysis(result, variants)
