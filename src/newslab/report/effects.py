"""Effects computed from study results: which configuration wins, what each hyperparameter and
each ablation changes, and whether each difference is larger than the noise.

The protocol (study/spec.py): the selection runs choose (each point's nuisance value and epoch,
and the best point); every estimate and verdict about the chosen configurations — the best
against the runner-up, the factors of a grid, each ablation against the baseline — is computed
on the confirmation runs, fresh seeds that took no part in choosing. The one exception is a test
among the choices themselves (does lr matter at this size?): best against worst of the values
tried is the most extreme of all their pairs, so with the family adjustment over every pair it
is valid on the selection runs, and it is labelled as such.

Every test is `stats.crossed_test` on per-row correctness paired by seed and validation row.
Tables, plots and the generated conclusions all read these objects, so a number is computed once
and said the same way everywhere.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from ..config import BASELINE
from ..study.results import StudyResult, Summary
from .stats import TestResult, Untested, crossed_test


def is_ablation_study(result: StudyResult) -> bool:
    return not result.selects


def factors(result: StudyResult) -> list[str]:
    """Scientific keys; a joint key such as "embed_dim,num_heads" is one factor (its fields vary together)."""
    return list(result.spec.scientific)


def factor_value(summary: Summary, key: str) -> tuple:
    return tuple(summary.point[name] for name in key.split(","))


# ------------------------------------------------------------------ paired differences
def correctness(summary: Summary) -> dict[int, np.ndarray] | None:
    """Per seed, the 0/1 correctness of every validation row; None if a run recorded none (older studies)."""
    rows = {}
    for t in summary.trials:
        if t.val_correct is None:
            return None
        rows[t.seed] = np.frombuffer(t.val_correct.encode(), dtype=np.uint8) - ord("0")
    return rows


Paired = dict[int, np.ndarray]  # seed -> per validation row, correct_a - correct_b (-1, 0 or 1)


def differences(a: Summary, b: Summary) -> Paired | Untested:
    """correct_a - correct_b per row, on each seed both ran (paired: same seed, same data order)."""
    ca, cb = correctness(a), correctness(b)
    if ca is None or cb is None:
        return Untested("no_predictions")
    seeds = sorted(set(ca) & set(cb))
    if any(len(ca[s]) != len(cb[s]) for s in seeds):
        return Untested("no_predictions")  # runs on different validation splits cannot be paired
    return {s: ca[s].astype(float) - cb[s] for s in seeds} if seeds else Untested("too_few_seeds")


def test_of(d: Paired | Untested, family: int) -> TestResult | Untested:
    return d if isinstance(d, Untested) else crossed_test(np.stack([d[s] for s in sorted(d)]), family)


@dataclass
class Comparison:
    """Configuration a against b (a - b in mean validation accuracy) on `stage` runs, and its test."""

    a: Summary
    b: Summary
    test: TestResult | Untested
    stage: str = "confirm"  # "confirm": fresh seeds; "select": the runs that chose (tests among choices)

    @property
    def diff(self) -> float:
        return self.test.diff if isinstance(self.test, TestResult) else self.a.val_mean - self.b.val_mean

    @property
    def verdict(self) -> str:
        """ "significant", "inconclusive" or "untested" (then `test.reason` says why)."""
        return self.test.verdict if isinstance(self.test, TestResult) else "untested"


def compare(a: Summary, b: Summary, family: int = 1, stage: str = "confirm") -> Comparison:
    """a against b as one of `family` comparisons (Bonferroni: p times family, intervals widened to match)."""
    return Comparison(a, b, test_of(differences(a, b), family), stage)


def pairs(levels: int) -> int:
    """Pairwise comparisons among `levels` values: best against worst is the pick of all of them,
    so a family adjustment for picking the extremes counts every pair."""
    return levels * (levels - 1) // 2


@dataclass
class Selected:
    """A study's pick: the best point by the selection runs, and its confirmation runs (None if none)."""

    selection: Summary
    confirmation: Summary | None

    @property
    def estimate(self) -> Summary:
        """The runs whose accuracy estimates the pick without the winner's curse (selection if unconfirmed)."""
        return self.confirmation or self.selection


def selected(result: StudyResult) -> Selected | None:
    """A grid's best point; an ablation study's baseline (its variants are compared, not selected)."""
    points = result.points()
    if not points:
        return None
    pick = points[0] if result.selects else next((s for s in points if s.point["ablation"] == BASELINE), points[0])
    return Selected(pick, result.confirmation(pick))


def runner_up(result: StudyResult) -> Comparison | None:
    """The selected configuration against the second best, on their confirmation runs; None with fewer
    than two points. Untested (no_confirmation) if either was not confirmed."""
    points = result.points()
    if len(points) < 2:
        return None
    a, b = result.confirmation(points[0]), result.confirmation(points[1])
    if a is None or b is None:  # the difference shown is then the selection runs'
        return Comparison(points[0], points[1], Untested("no_confirmation"), "select")
    return compare(a, b)


# ------------------------------------------------------------------- grid factors
@dataclass
class FactorEffect:
    """Main effect of one factor: its best and worst value by the selection runs' marginal means (the runs
    that choose), and the difference between them on the confirmation runs (the runs that judge)."""

    key: str
    means: dict[tuple, float]  # value -> mean confirmation accuracy over the confirmed points that have it
    best: tuple  # best value by the selection runs
    worst: tuple  # worst value by the selection runs
    test: TestResult | Untested  # best vs worst, paired by context (other factors' values), seed and row
    d: Paired | None = None  # the tested differences: for a test between two factors

    @property
    def diff(self) -> float:
        return self.test.diff if isinstance(self.test, TestResult) else self.means[self.best] - self.means[self.worst]

    @property
    def verdict(self) -> str:
        return self.test.verdict if isinstance(self.test, TestResult) else "untested"


def _context(result: StudyResult, s: Summary, key: str) -> tuple:
    return tuple(factor_value(s, k) for k in factors(result) if k != key)


def _averaged(parts: list[Paired]) -> Paired | Untested:
    """The mean of several paired differences over the seeds all of them have."""
    seeds = sorted(set.intersection(*(set(p) for p in parts))) if parts else []
    if not seeds:
        return Untested("no_confirmation" if not parts else "too_few_seeds")
    return {s: np.mean([p[s] for p in parts], axis=0) for s in seeds}


def _factor_differences(result: StudyResult, key: str, best: tuple, worst: tuple) -> Paired | Untested:
    """best - worst in every context (the same values of the other factors) that has both, averaged over
    the contexts: the other factors' effects cancel within each pair."""
    confirmed = result.confirmed()
    at = {(factor_value(s, key), _context(result, s, key)): s for s in confirmed}
    parts = []
    for ctx in dict.fromkeys(_context(result, s, key) for s in confirmed):
        if (best, ctx) in at and (worst, ctx) in at:
            d = differences(at[(best, ctx)], at[(worst, ctx)])
            if isinstance(d, Untested):
                return d
            parts.append(d)
    return _averaged(parts)


def _marginal_means(points: list[Summary], key: str) -> dict[tuple, float]:
    by_value: dict[tuple, list[float]] = {}
    for s in points:
        by_value.setdefault(factor_value(s, key), []).append(s.val_mean)
    return {v: statistics.fmean(means) for v, means in by_value.items()}


def factor_effects(result: StudyResult) -> list[FactorEffect]:
    """One effect per factor with at least two confirmed values, largest first. Its contrast (best against
    worst value) is fixed by the selection runs before the confirmation runs test it, so the tests are
    Bonferroni-adjusted over the factors only."""
    confirmed = result.confirmed()
    effects = []
    for key in factors(result):
        means = _marginal_means(confirmed, key)
        chosen = {v: m for v, m in _marginal_means(result.points(), key).items() if v in means}
        if len(chosen) < 2:
            continue
        best = max(chosen, key=chosen.__getitem__)
        worst = min((v for v in chosen if v != best), key=chosen.__getitem__)  # another value, even on a tie
        effects.append(FactorEffect(key, means, best, worst, Untested("no_confirmation")))
    for effect in effects:
        d = _factor_differences(result, effect.key, effect.best, effect.worst)
        effect.test, effect.d = test_of(d, len(effects)), None if isinstance(d, Untested) else d
    return sorted(effects, key=lambda e: -e.diff)


def factor_difference(x: FactorEffect, y: FactorEffect) -> TestResult | Untested:
    """Whether factor x changes accuracy more than factor y: a test of the difference of their
    best-vs-worst effects (contrasts fixed by the selection runs; paired by seed and row), not a
    comparison of two verdicts."""
    if x.d is None or y.d is None:
        return Untested("no_confirmation")
    seeds = sorted(set(x.d) & set(y.d))
    return test_of({s: x.d[s] - y.d[s] for s in seeds}, 1) if seeds else Untested("too_few_seeds")


@dataclass
class LrEffect:
    """At one model size (the values of the other factors): the best lr against the worst."""

    context: dict
    comparison: Comparison

    @property
    def best_lr(self) -> float:
        a = self.comparison.a
        return float(a.point["lr"] if "lr" in a.point else a.nuisance["lr"])


def _orderable(value) -> tuple:
    """A sort key for a setting's value of any type: numbers by size, then strings, then None (from scratch)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value)) if value is not None else (2, 0, "")


def lr_per_size(result: StudyResult) -> list[LrEffect]:
    """How lr acts at each model size. As a nuisance parameter (chosen per point), on the selection
    runs that chose it; as a scientific factor next to others, on the confirmation runs of each
    (size, lr) point. Each test is Bonferroni-adjusted over every pair of lrs at every size."""
    if "lr" in result.spec.parameter_names("nuisance"):
        others, stage = factors(result), "select"
        summaries = sorted(result.summaries(), key=lambda s: -s.val_mean)
    elif "lr" in factors(result) and len(factors(result)) > 1:
        others, stage = [k for k in factors(result) if k != "lr"], "confirm"
        summaries = sorted(result.confirmed(), key=lambda s: -s.val_mean)
    else:
        return []
    groups: dict[tuple, list[Summary]] = {}
    for s in summaries:  # best first, so group[0] is the best lr at that size
        groups.setdefault(tuple(factor_value(s, k) for k in others), []).append(s)
    compared = [group for group in groups.values() if len(group) > 1]
    family = sum(pairs(len(group)) for group in compared)
    effects = [
        LrEffect(
            {n: group[0].point[n] for k in others for n in k.split(",")},
            compare(group[0], group[-1], family, stage),
        )
        for group in compared
    ]
    return sorted(effects, key=lambda e: tuple(map(_orderable, e.context.values())))


# ------------------------------------------------------- ablations and other variants
@dataclass
class VariantEffect:
    """One variant (an ablation, a positional encoding, …) against the reference level of its factor, each at
    its own best nuisance (lr), on confirmation runs."""

    name: str
    comparison: Comparison  # a = variant, b = reference

    @property
    def relative(self) -> float | None:
        """The difference relative to the reference's mean; None when the reference scored 0."""
        base = self.comparison.b.val_mean
        return self.comparison.diff / base if base else None

    @property
    def relative_interval(self) -> tuple[float, float] | None:
        """The test's interval (at the verdict's adjusted level), relative to the reference's mean."""
        t, base = self.comparison.test, self.comparison.b.val_mean
        if not isinstance(t, TestResult) or not base:
            return None
        return t.low / base, t.high / base


@dataclass
class VariantResults:
    """A one-factor study against its reference level: what was compared, and what could not be."""

    base: Summary | None  # the reference's confirmation runs; None when none completed
    effects: list[VariantEffect]  # every confirmed variant in the spec's order (empty without a base)
    missing: list[str]  # variants of the spec without a completed confirmation run
    key: str = "ablation"  # the factor varied
    reference: str = BASELINE  # its level every variant is compared with

    @property
    def family(self) -> int:
        """The Bonferroni family: every variant of the spec, compared yet or not."""
        return len(self.effects) + len(self.missing)


def variant_effects(result: StudyResult, key: str, reference: str) -> VariantResults:
    """Every level of the factor `key` vs its `reference` level, both on their confirmation runs. The tests
    are Bonferroni-adjusted across the spec's variants, run or not yet (six comparisons at 5% would otherwise
    find a false effect one time in four; a verdict must not loosen while runs are missing), and so are their
    intervals."""
    points = {s.point[key]: s for s in result.confirmed()}
    variants = [name for name in result.spec.choices(key) if name != reference]
    missing = [name for name in variants if name not in points]
    base = points.get(reference)
    if base is None:
        return VariantResults(None, [], missing, key, reference)
    done = [name for name in variants if name in points]
    effects = [VariantEffect(name, compare(points[name], base, len(variants))) for name in done]
    return VariantResults(base, effects, missing, key, reference)


def ablation_effects(result: StudyResult) -> VariantResults:
    """Every ablation of the spec vs the baseline (variant_effects of the factor "ablation")."""
    return variant_effects(result, "ablation", BASELINE)
