"""The scale chapter: longer sequences and bigger batches (the original manual's TODO). A study whose only
scientific factor is the joint key "max_len,batch_size" varies one of the two at a time around its first
point, the reference (the `scale` presets); each point trains at its own best learning rate. Read here:

- the training split's token lengths: percentiles, and the share of rows and tokens each max_len cuts;
- every point against the reference on the confirmation runs (the paired test, Bonferroni-adjusted over
  the points), beside its time per run: accuracy against time;
- the learning-rate scaling rule: each batch size's best lr (at the reference max_len), interpolated on the
  selection runs' accuracy over log lr, fitted as lr* ∝ batch^k by least squares with a 95% t interval
  for k. A rule (none: k = 0, square root: 0.5, linear: 1) is consistent with the runs when its k lies in
  the interval; with one rule left the runs measured it, with several they cannot tell them apart.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats as sps

from ..data import cache_dir, load_dataset
from ..errors import NewslabError
from ..runs import load_run
from ..study.results import StudyResult, Summary
from .effects import Comparison, compare
from .i18n import Reason
from .stats import LEVEL

KEY = "max_len,batch_size"
RULES = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}  # lr* ∝ batch^k
PERCENTILES = (50, 90, 95, 99, 100)


def scale_studies(results: list[StudyResult]) -> list[StudyResult]:
    """The studies with completed trials whose only scientific factor is (max_len, batch_size)."""
    return [r for r in results if r.points() and list(r.spec.scientific) == [KEY]]


def level(summary: Summary) -> tuple[int, int]:
    return int(summary.point["max_len"]), int(summary.point["batch_size"])


@dataclass
class ScalePoint:
    max_len: int
    batch_size: int
    selection: Summary  # at the point's best lr
    confirmation: Summary | None
    comparison: Comparison | None = None  # against the reference; None for the reference, or unconfirmed

    @property
    def estimate(self) -> Summary:
        return self.confirmation or self.selection

    @property
    def seconds(self) -> float | None:
        """Mean wall time of a run (the confirmation runs', which train to a fixed epoch, where they exist)."""
        times = [t.wall_time_s for t in self.estimate.trials if t.wall_time_s is not None]
        return statistics.fmean(times) if times else None


def best_lr(result: StudyResult, point: dict) -> tuple[float, bool] | None:
    """The point's best lr on the selection runs and whether it lies inside the lr grid: the vertex of the
    parabola through the best lr and its two neighbours on (log lr, mean accuracy), kept between the
    neighbours; at the grid's edge, the edge value (the optimum may lie beyond it). None without an lr grid."""
    curve = sorted(
        (s.nuisance["lr"], s.val_mean) for s in result.summaries() if s.point == point and "lr" in s.nuisance
    )
    if not curve:
        return None
    lrs, accs = [math.log(lr) for lr, _ in curve], [acc for _, acc in curve]
    i = max(range(len(accs)), key=accs.__getitem__)
    if i in (0, len(accs) - 1):
        return curve[i][0], False
    x, y = np.array(lrs[i - 1 : i + 2]), np.array(accs[i - 1 : i + 2])
    a, b, _ = np.polyfit(x, y, 2)
    vertex = -b / (2 * a) if a < 0 else x[1]  # a flat top (a ≥ 0 cannot be a maximum): the best grid value
    return math.exp(float(np.clip(vertex, x[0], x[2]))), True


MIN_FIT = 3  # batch sizes whose best lr lies inside the grid: a line through fewer has no interval


@dataclass
class LrRule:
    batch_sizes: list[int]
    lrs: list[float]  # the interpolated best lr of each batch size
    inside: list[bool]  # whether it lies inside the lr grid (only those are fitted: an edge value is a bound)
    exponent: float | None = None  # k of lr* ∝ batch^k; None with fewer than MIN_FIT inside the grid
    low: float | None = None  # its 95% interval; None when the fit leaves no residual to size it
    high: float | None = None

    @property
    def fitted(self) -> int:
        return sum(self.inside)

    def consistent(self) -> list[str]:
        """The rules whose exponent lies in k's interval (every rule when the interval could not be sized)."""
        if self.low is None or self.high is None:
            return list(RULES)
        return [name for name, k in RULES.items() if self.low <= k <= self.high]


def lr_rule(result: StudyResult, max_len: int) -> LrRule:
    points = sorted((p for p in result.points() if level(p)[0] == max_len), key=lambda p: level(p)[1])
    found = [(level(p)[1], best) for p in points if (best := best_lr(result, p.point)) is not None]
    rule = LrRule([b for b, _ in found], [lr for _, (lr, _) in found], [inside for _, (_, inside) in found])
    fit_b = [b for b, inside in zip(rule.batch_sizes, rule.inside) if inside]
    fit_lr = [lr for lr, inside in zip(rule.lrs, rule.inside) if inside]
    if len(fit_b) >= MIN_FIT and len(set(fit_b)) >= 2:
        fit = sps.linregress(np.log(fit_b), np.log(fit_lr))
        rule.exponent = float(fit.slope)
        if fit.stderr > 0:  # a perfect line through grid values would claim an interval of zero width
            half = sps.t.ppf(0.5 + LEVEL / 2, len(fit_b) - 2) * fit.stderr
            rule.low, rule.high = float(fit.slope - half), float(fit.slope + half)
    return rule


@dataclass
class Lengths:
    """Token counts of the training split's rows, before truncation."""

    counts: np.ndarray

    def percentile(self, q: float) -> int:
        return int(np.percentile(self.counts, q, method="higher"))

    def rows_cut(self, max_len: int) -> float:
        """The share of rows longer than max_len."""
        return float((self.counts > max_len).mean())

    def tokens_cut(self, max_len: int) -> float:
        """The share of all tokens that truncation at max_len drops."""
        return float(np.clip(self.counts - max_len, 0, None).sum() / self.counts.sum())


def training_lengths(result: StudyResult, data_dir: str | Path | None = None) -> Lengths:
    """The lengths under the study's tokenizer, from the data settings of one of its completed runs."""
    trial = next((t for t in result.trials if t.state == "COMPLETE" and t.run_dir), None)
    if trial is None or trial.run_dir is None:
        raise NewslabError(Reason("why_no_trial"))
    run = load_run(trial.run_dir)
    config = run.config.replace(data_dir=str(data_dir)) if data_dir else run.config
    dataset = load_dataset(config.data, cache_dir(config.execution.out_dir), progress=False)
    offsets = dataset.train.offsets
    return Lengths((offsets[1:] - offsets[:-1]).numpy())


@dataclass
class ScaleAnalysis:
    study: StudyResult
    reference: tuple[int, int]  # (max_len, batch_size) of the spec's first point
    points: list[ScalePoint]  # the spec's order; a point without a completed trial is left out
    rule: LrRule
    lengths: Lengths | str  # or why they could not be read
    missing: list[tuple[int, int]] = field(default_factory=list)  # spec points without a completed trial

    @property
    def family(self) -> int:
        """The comparisons' family: every point of the spec but the reference."""
        return len(self.study.spec.scientific[KEY]) - 1


def analyse_scale(result: StudyResult, data_dir: str | Path | None = None) -> ScaleAnalysis:
    levels = [(int(a), int(b)) for a, b in result.spec.scientific[KEY]]
    reference = levels[0]
    found = {level(p): p for p in result.points()}
    points = [ScalePoint(*lv, found[lv], result.confirmation(found[lv])) for lv in levels if lv in found]
    base = next((p for p in points if (p.max_len, p.batch_size) == reference), None)
    compared = [p for p in points if p is not base and p.confirmation is not None]
    family = (
        len(levels) - 1
    )  # every planned point, confirmed yet or not: a verdict must not loosen while runs are missing
    if base is not None and base.confirmation is not None:
        for p in compared:
            p.comparison = compare(p.confirmation, base.confirmation, family)  # type: ignore[arg-type]
    try:
        lengths: Lengths | str = training_lengths(result, data_dir)
    except NewslabError as exc:
        lengths = exc.args[0] if exc.args else str(exc)
    missing = [lv for lv in levels if lv not in found]
    return ScaleAnalysis(result, reference, points, lr_rule(result, reference[0]), lengths, missing)
