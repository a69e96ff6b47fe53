"""Effects computed from study results: which configuration wins, what each hyperparameter and
each ablation changes, and whether each difference is larger than the noise.

All selection uses validation accuracy (mean over seeds, each point at its best nuisance
value), as the study engine does; test predictions only serve the paired second opinion.
Tables, plots and the generated conclusions all read these objects, so a number is computed
once and said the same way everywhere.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..results import StudyResult, Summary
from .stats import TestResult, adjust_family, paired_test, welch

BASELINE = "none"  # the ablation value that names the unmodified model


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

    @property
    def diff(self) -> float:
        return self.a.val_mean - self.b.val_mean

    @property
    def evidence(self) -> TestResult | None:
        """The test a verdict rests on: over seeds when there are seeds to compare, else the test set."""
        return self.over_seeds or self.on_test

    @property
    def verdict(self) -> str:
        """"significant", "noise" (within noise) or "untested" (nothing to test with)."""
        if self.evidence is None:
            return "untested"
        return "significant" if self.evidence.significant else "noise"


def _predictions(summary: Summary) -> list[list[int]]:
    return [t.test_predictions for t in summary.trials if t.test_predictions]


def compare(a: Summary, b: Summary, labels: list[int] | None) -> Comparison:
    return Comparison(a, b, welch(a.val_accuracies, b.val_accuracies),
                      paired_test(_predictions(a), _predictions(b), labels))


def test_labels(results: list[StudyResult]) -> list[int] | None:
    """True test labels, from the predictions.json of any completed run that still has its folder."""
    for result in results:
        for trial in result.trials:
            path = Path(trial.run_dir or "") / "predictions.json"
            if trial.state == "COMPLETE" and path.is_file():
                return json.loads(path.read_text())["test_labels"]
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
    test: TestResult | None  # Welch, best vs worst value, after removing the other factors' effect

    @property
    def best(self) -> tuple:
        return max(self.means, key=self.means.get)

    @property
    def worst(self) -> tuple:
        return min(self.means, key=self.means.get)

    @property
    def diff(self) -> float:
        return self.means[self.best] - self.means[self.worst]

    @property
    def verdict(self) -> str:
        if self.test is None:
            return "untested"
        return "significant" if self.test.significant else "noise"


def factor_effects(result: StudyResult) -> list[FactorEffect]:
    """One effect per factor with at least two values, largest first.

    The test compares the per-seed accuracies of the best and the worst value after
    subtracting, from every run, the mean of its context (the same values of the other
    factors): in a full grid this removes the other factors' main effects, so their spread
    does not hide this one. It needs at least two seeds per configuration.
    """
    points = result.points()
    effects = []
    for key in factors(result):
        others = [k for k in factors(result) if k != key]
        by_value: dict[tuple, list[Summary]] = {}
        for s in points:
            by_value.setdefault(factor_value(s, key), []).append(s)
        if len(by_value) < 2:
            continue
        means = {v: statistics.fmean(s.val_mean for s in group) for v, group in by_value.items()}
        context_mean: dict[tuple, float] = {}
        for s in points:
            context = tuple(factor_value(s, k) for k in others)
            context_mean.setdefault(context, statistics.fmean(
                p.val_mean for p in points if tuple(factor_value(p, k) for k in others) == context))
        effect = FactorEffect(key, means, None)
        if min(s.n for s in points) >= 2:
            residuals = {v: [acc - context_mean[tuple(factor_value(s, k) for k in others)]
                             for s in by_value[v] for acc in s.val_accuracies] for v in (effect.best, effect.worst)}
            effect.test = welch(residuals[effect.best], residuals[effect.worst])
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
    """How lr acts at each model size; empty unless lr is scientific next to other factors."""
    if "lr" not in factors(result) or len(factors(result)) < 2:
        return []
    others = [k for k in factors(result) if k != "lr"]
    groups: dict[tuple, list[Summary]] = {}
    for s in result.points():  # best first, so group[0] is the best lr at that size
        groups.setdefault(tuple(factor_value(s, k) for k in others), []).append(s)
    effects = []
    for group in groups.values():
        if len(group) > 1:
            context = {n: group[0].point[n] for k in others for n in k.split(",")}
            effects.append(LrEffect(context, compare(group[0], group[-1], labels)))
    return sorted(effects, key=lambda e: tuple(e.context.values()))


# ------------------------------------------------------------------------ ablations
@dataclass
class AblationEffect:
    """One ablation against the baseline, each at its own best nuisance (lr)."""

    name: str
    comparison: Comparison  # a = ablation, b = baseline

    @property
    def relative(self) -> float:
        return self.comparison.diff / self.comparison.b.val_mean

    @property
    def relative_interval(self) -> tuple[float, float] | None:
        """Welch interval of the difference, relative to the baseline mean."""
        t = self.comparison.over_seeds
        if t is None or t.low is None:
            return None
        base = self.comparison.b.val_mean
        return t.low / base, t.high / base


def ablation_effects(result: StudyResult, labels: list[int] | None) -> list[AblationEffect]:
    """Every ablation vs the baseline, most harmful first; the tests are Holm-adjusted across
    the ablations (six comparisons at 5% would otherwise find a false effect one time in four)."""
    points = {s.point["ablation"]: s for s in result.points()}
    base = points.get(BASELINE)
    if base is None:
        return []
    comparisons = [compare(s, base, labels) for name, s in points.items() if name != BASELINE]
    seeds = adjust_family([c.over_seeds for c in comparisons])
    tests = adjust_family([c.on_test for c in comparisons])
    effects = [AblationEffect(c.a.point["ablation"], Comparison(c.a, c.b, s, t))
               for c, s, t in zip(comparisons, seeds, tests)]
    return sorted(effects, key=lambda e: e.comparison.diff)
