"""Effects computed from study results: which configuration wins, what each hyperparameter and
each ablation changes, and whether each difference is larger than the noise.

All selection uses validation accuracy (mean over seeds, each point at its best nuisance
value), as the study engine does; test predictions only serve the paired second opinion.
Tables, plots and the generated conclusions all read these objects, so a number is computed
once and said the same way everywhere.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..config import BASELINE
from ..runs import RunFolder
from ..study.results import StudyResult, Summary
from .stats import TestResult, bonferroni, family_level, paired_test, welch


def is_ablation_study(result: StudyResult) -> bool:
    return "ablation" in result.spec.parameter_names("scientific")


def factors(result: StudyResult) -> list[str]:
    """Scientific keys; a joint key such as "embed_dim,num_heads" is one factor (its fields vary together)."""
    return list(result.spec.scientific)


def factor_value(summary: Summary, key: str) -> tuple:
    return tuple(summary.point[name] for name in key.split(","))


@dataclass
class Comparison:
    """Configuration a against b: a - b in mean validation accuracy, and its tests."""

    a: Summary
    b: Summary
    over_seeds: TestResult | None  # Welch's t on per-seed validation accuracy
    on_test: TestResult | None  # McNemar / paired bootstrap on per-example test predictions
    family: int = 1  # how many comparisons this one is among: tests and intervals Bonferroni-adjusted over them

    @property
    def level(self) -> float:
        """Confidence level of this comparison's intervals (95% alone, higher in a family)."""
        return family_level(self.family)

    @property
    def diff(self) -> float:
        return self.a.val_mean - self.b.val_mean

    @property
    def evidence(self) -> TestResult | None:
        """The test a verdict rests on: over seeds when there are seeds to compare, else the test set."""
        return self.over_seeds or self.on_test

    @property
    def verdict(self) -> str:
        """ "significant", "noise" (within noise) or "untested" (nothing to test with)."""
        if self.evidence is None:
            return "untested"
        return "significant" if self.evidence.significant else "noise"


def _predictions(summary: Summary) -> list[list[int]]:
    return [t.test_predictions for t in summary.trials if t.test_predictions]


def compare(a: Summary, b: Summary, labels: list[int] | None, family: int = 1) -> Comparison:
    """a against b as one of `family` comparisons (Bonferroni: p times family, intervals widened to match)."""
    level = family_level(family)
    return Comparison(
        a,
        b,
        bonferroni(welch(a.val_accuracies, b.val_accuracies, level), family),
        bonferroni(paired_test(_predictions(a), _predictions(b), labels, level), family),
        family,
    )


def pairs(levels: int) -> int:
    """Pairwise comparisons among `levels` values: best against worst is the pick of all of them,
    so a family adjustment for picking the extremes counts every pair."""
    return levels * (levels - 1) // 2


def test_labels(results: list[StudyResult]) -> list[int] | None:
    """True test labels, from the predictions.json of any completed run that still has its folder."""
    for result in results:
        for trial in result.trials:
            if trial.state != "COMPLETE" or not trial.run_dir:  # no folder recorded: nothing to read
                continue
            folder = RunFolder(trial.run_dir)
            if folder.has_predictions():
                return folder.predictions()["test_labels"]
    return None


def runner_up(result: StudyResult, labels: list[int] | None) -> Comparison | None:
    """The selected configuration against the second best; None with fewer than two points."""
    points = result.points()
    return compare(points[0], points[1], labels) if len(points) > 1 else None


# ------------------------------------------------------------------- grid factors
@dataclass
class FactorEffect:
    """Main effect of one factor: its best and worst value by marginal mean validation accuracy."""

    key: str
    means: dict[tuple, float]  # value -> mean over the points that have it
    test: TestResult | None  # Welch, best vs worst value, other factors' effect removed; Bonferroni-adjusted

    @property
    def best(self) -> tuple:
        return max(self.means, key=self.means.__getitem__)

    @property
    def worst(self) -> tuple:
        return min(self.means, key=self.means.__getitem__)

    @property
    def diff(self) -> float:
        return self.means[self.best] - self.means[self.worst]

    @property
    def verdict(self) -> str:
        if self.test is None:
            return "untested"
        return "significant" if self.test.significant else "noise"


def _by_value(points: list[Summary], key: str) -> dict[tuple, list[Summary]]:
    by_value: dict[tuple, list[Summary]] = {}
    for s in points:
        by_value.setdefault(factor_value(s, key), []).append(s)
    return by_value


def _residuals(result: StudyResult, key: str, group: list[Summary]) -> list[float]:
    """Per-seed accuracies of `group` minus the mean of their context (the same values of the other factors)."""
    others = [k for k in factors(result) if k != key]
    context = lambda s: tuple(factor_value(s, k) for k in others)
    means: dict[tuple, list[float]] = {}
    for s in result.points():
        means.setdefault(context(s), []).append(s.val_mean)
    return [acc - statistics.fmean(means[context(s)]) for s in group for acc in s.val_accuracies]


def factor_effects(result: StudyResult) -> list[FactorEffect]:
    """One effect per factor with at least two values, largest first.

    The test compares the per-seed accuracies of the best and the worst value after
    subtracting, from every run, the mean of its context (the same values of the other
    factors): in a full grid this removes the other factors' main effects, so their spread
    does not hide this one. It needs at least two seeds per configuration. Best against worst
    is the most extreme of all pairs of values, so the tests are Bonferroni-adjusted over every
    pair of values of every factor.
    """
    points = result.points()
    groups = {key: _by_value(points, key) for key in factors(result)}
    groups = {key: by_value for key, by_value in groups.items() if len(by_value) >= 2}
    family = sum(pairs(len(by_value)) for by_value in groups.values())
    effects = []
    for key, by_value in groups.items():
        means = {v: statistics.fmean(s.val_mean for s in group) for v, group in by_value.items()}
        effect = FactorEffect(key, means, None)
        if min(s.n for s in points) >= 2:
            best, worst = (_residuals(result, key, by_value[v]) for v in (effect.best, effect.worst))
            effect.test = bonferroni(welch(best, worst, family_level(family)), family)
        effects.append(effect)
    return sorted(effects, key=lambda e: -e.diff)


@dataclass
class LrEffect:
    """At one model size (the values of the other factors): the best lr against the worst."""

    context: dict
    comparison: Comparison

    @property
    def best_lr(self) -> float:
        return self.comparison.a.point["lr"]


def lr_per_size(result: StudyResult, labels: list[int] | None) -> list[LrEffect]:
    """How lr acts at each model size; empty unless lr is scientific next to other factors. Each test
    is Bonferroni-adjusted over every pair of lrs at every size (best vs worst is the pick of them)."""
    if "lr" not in factors(result) or len(factors(result)) < 2:
        return []
    others = [k for k in factors(result) if k != "lr"]
    groups: dict[tuple, list[Summary]] = {}
    for s in result.points():  # best first, so group[0] is the best lr at that size
        groups.setdefault(tuple(factor_value(s, k) for k in others), []).append(s)
    compared = [group for group in groups.values() if len(group) > 1]
    family = sum(pairs(len(group)) for group in compared)  # best vs worst lr picks one pair of each size's
    effects = [
        LrEffect(
            {n: group[0].point[n] for k in others for n in k.split(",")}, compare(group[0], group[-1], labels, family)
        )
        for group in compared
    ]
    return sorted(effects, key=lambda e: tuple(e.context.values()))


# ------------------------------------------------------------------------ ablations
@dataclass
class AblationEffect:
    """One ablation against the baseline, each at its own best nuisance (lr)."""

    name: str
    comparison: Comparison  # a = ablation, b = baseline

    @property
    def relative(self) -> float | None:
        """The difference relative to the baseline mean; None when the baseline scored 0."""
        base = self.comparison.b.val_mean
        return self.comparison.diff / base if base else None

    @property
    def relative_interval(self) -> tuple[float, float] | None:
        """Welch interval of the difference (at the verdict's adjusted level), relative to the baseline mean."""
        t, base = self.comparison.over_seeds, self.comparison.b.val_mean
        if t is None or t.low is None or t.high is None or not base:
            return None
        return t.low / base, t.high / base


@dataclass
class AblationResults:
    """An ablation study against its baseline: what was compared, and what could not be."""

    base: Summary | None  # the unmodified model; None when none of its trials completed
    effects: list[AblationEffect]  # every completed variant, most harmful first (empty without a base)
    missing: list[str]  # variants of the spec without a completed trial


def ablation_effects(result: StudyResult, labels: list[int] | None) -> AblationResults:
    """Every ablation of the spec vs the baseline. The tests are Bonferroni-adjusted across the
    compared ablations (six comparisons at 5% would otherwise find a false effect one time in four),
    and so are their intervals: an interval excludes 0 exactly when its test is significant."""
    points = {s.point["ablation"]: s for s in result.points()}
    variants = [name for name in result.spec.choices("ablation") if name != BASELINE]
    missing = [name for name in variants if name not in points]
    base = points.get(BASELINE)
    if base is None:
        return AblationResults(None, [], missing)
    done = [name for name in variants if name in points]
    effects = [AblationEffect(name, compare(points[name], base, labels, len(done))) for name in done]
    return AblationResults(base, sorted(effects, key=lambda e: e.comparison.diff), missing)
