"""Statistics for comparing configurations: intervals over seeds and tests that say whether a
difference is larger than the noise.

Two kinds of evidence exist in a study. Over seeds: each configuration ran n times with
different initialisation and batch order, so Welch's t-test (unequal variances) on the
per-seed validation accuracies asks whether two configurations differ by more than the seed
noise. Over test examples: every run predicted the same test rows, so two configurations can
be compared example by example (McNemar's exact test for one run each; a paired bootstrap over
examples of the seed-averaged correctness otherwise).

Every function returns None, never NaN, when the data cannot support the statistic (one seed,
zero variance, no predictions); callers turn None into "cannot be concluded".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ALPHA = 0.05  # significance level of every test in the report
LEVEL = 0.95  # confidence level of every interval


@dataclass(frozen=True)
class Interval:
    """Mean of n values with its sample std and a t-based confidence interval (None if n < 2)."""

    mean: float
    n: int
    std: float | None = None
    low: float | None = None
    high: float | None = None


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Interval | None:
    values = [float(v) for v in values]
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, 1)
    std = statistics.stdev(values)
    half = sps.t.ppf(0.5 + level / 2, len(values) - 1) * std / math.sqrt(len(values))
    return Interval(mean, len(values), std, mean - half, mean + half)


def t_errorbar(values: Sequence[float]) -> tuple[float, float]:
    """(low, high) of the t interval, for seaborn's `errorbar=`; collapses to the value for n = 1."""
    iv = mean_interval(values)
    assert iv is not None, "t_errorbar needs at least one value"  # seaborn never asks for an empty group
    if iv.low is None or iv.high is None:
        return iv.mean, iv.mean
    return iv.low, iv.high


@dataclass(frozen=True)
class TestResult:
    name: str  # "welch" | "mcnemar" | "bootstrap"
    diff: float  # a - b (accuracy, as a fraction)
    p: float
    low: float | None = None  # confidence interval of diff
    high: float | None = None
    p_adjusted: float | None = None  # after Bonferroni's correction within a family of comparisons

    @property
    def p_used(self) -> float:
        return self.p if self.p_adjusted is None else self.p_adjusted

    @property
    def significant(self) -> bool:
        return self.p_used < ALPHA

    def adjusted(self, p_adjusted: float) -> TestResult:
        return TestResult(self.name, self.diff, self.p, self.low, self.high, p_adjusted)


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> TestResult | None:
    """Welch's t-test of mean(a) - mean(b); None with fewer than 2 values per side or no variance."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a), statistics.variance(b)
    se2 = va / len(a) + vb / len(b)
    if se2 <= 0:  # identical values within both groups: the noise cannot be estimated
        return None
    se = math.sqrt(se2)
    df = se2**2 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1))
    diff = statistics.fmean(a) - statistics.fmean(b)
    p = 2 * sps.t.sf(abs(diff) / se, df)
    half = sps.t.ppf(0.5 + level / 2, df) * se
    return TestResult("welch", diff, float(p), diff - half, diff + half)


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> TestResult:
    """McNemar's exact test on paired per-example correctness (binomial on the discordant pairs)."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(sps.binomtest(only_a, discordant, 0.5).pvalue)
    return TestResult("mcnemar", (only_a - only_b) / len(a), p)


def paired_bootstrap(
    score_a: Sequence[float], score_b: Sequence[float], resamples: int = 4000, level: float = LEVEL, seed: int = 0
) -> TestResult:
    """Paired bootstrap over examples of mean(score_a - score_b); two-sided p from the resamples.

    Scores are per-example correctness averaged over a configuration's seeds, so the test
    compares configurations on the same test rows without treating seeds as independent rows.
    """
    d = np.asarray(score_a, float) - np.asarray(score_b, float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    diff = float(d.mean())
    if not d.any():
        return TestResult("bootstrap", 0.0, 1.0, 0.0, 0.0)
    # share of resampled means on the other side of 0 (+1 smoothing: p is never exactly 0)
    tail = min((means <= 0).sum(), (means >= 0).sum())
    p = min(1.0, 2 * (tail + 1) / (resamples + 1))
    low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return TestResult("bootstrap", diff, float(p), float(low), float(high))


def paired_test(
    predictions_a: list[list[int]], predictions_b: list[list[int]], labels: Sequence[int] | None, level: float = LEVEL
) -> TestResult | None:
    """Compare two configurations on the test rows: McNemar when each has one run, else a
    paired bootstrap of seed-averaged correctness. None when predictions or labels are missing."""
    if labels is None or not predictions_a or not predictions_b:
        return None
    y = np.asarray(labels)
    if any(len(p) != len(y) for p in (*predictions_a, *predictions_b)):
        return None  # runs evaluated on different test files cannot be paired
    correct_a = np.asarray(predictions_a) == y  # (runs, examples)
    correct_b = np.asarray(predictions_b) == y
    if len(correct_a) == 1 and len(correct_b) == 1:
        return mcnemar(correct_a[0], correct_b[0])
    return paired_bootstrap(correct_a.mean(0), correct_b.mean(0), level=level)


def family_level(k: int) -> float:
    """Bonferroni: each of k comparisons at level 1 - ALPHA/k, so that the family errs at most ALPHA
    of the time; an interval at this level excludes 0 exactly when the adjusted p is below ALPHA."""
    return 1 - ALPHA / max(k, 1)


def bonferroni(result: TestResult | None, k: int) -> TestResult | None:
    """The test as one of k: p multiplied by k (capped at 1); alone (k = 1) it is left as it is."""
    if result is None or k <= 1:
        return result
    return result.adjusted(min(1.0, result.p * k))
