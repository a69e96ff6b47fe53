"""Statistics for comparing configurations: intervals, and one test that says whether a difference is
larger than the noise — or that the data cannot say.

Every comparison in a report is paired twice by design: two configurations ran on the same seeds
(same data order), and every run predicted the same validation rows. The difference of per-row
correctness d[s, r] (seed s, row r) therefore has three sources of noise: the seed (training
randomness shared by a run's rows), the row (a row one configuration tends to get right and the
other wrong: the finite validation set) and their interaction. `crossed_test` estimates each by
the two-way ANOVA of a crossed random-effects design and tests the mean of d against the sum,
with Satterthwaite's degrees of freedom — so the interval covers a new draw of seeds *and* of
validation rows, not only seed-to-seed noise. Pairing removes what both configurations share,
which an unpaired test over a handful of per-seed accuracies (Welch on 3 seeds: ~2 degrees of
freedom) cannot; tests/test_report_simulation.py checks its false-positive rate and power by
simulation.

A comparison ends in one of three verdicts, never in a silent change of test:
significant (the interval excludes 0), inconclusive (it does not: the interval says how large the
effect may still be) or untested (with the reason: one seed, zero variance, no predictions).
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
POWER = 0.8  # the power at which the smallest detectable effect is stated
# with 2 seeds the seed term has 1 degree of freedom and the test errs ~11% of the time at 5% (simulated)
MIN_SEEDS = 3


@dataclass(frozen=True)
class Interval:
    """Mean of n values with its sample std and a t-based confidence interval (None if n < 2)."""

    mean: float
    n: int
    std: float | None = None
    low: float | None = None
    high: float | None = None


def mean_interval(
    values: Sequence[float], level: float = LEVEL, within: tuple[float, float] | None = None
) -> Interval | None:
    """The mean's t interval; `within` cuts it to a quantity's range (an accuracy's [0, 1]: with 2 or 3 seeds
    the t interval can pass both ends)."""
    values = [float(v) for v in values]
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, 1)
    std = statistics.stdev(values)
    half = sps.t.ppf(0.5 + level / 2, len(values) - 1) * std / math.sqrt(len(values))
    low, high = mean - half, mean + half
    if within is not None:
        low, high = max(low, within[0]), min(high, within[1])
    return Interval(mean, len(values), std, low, high)


def t_errorbar(values: Sequence[float], within: tuple[float, float] | None = None) -> tuple[float, float]:
    """(low, high) of the t interval, for seaborn's `errorbar=`; collapses to the value for n = 1."""
    iv = mean_interval(values, within=within)
    assert iv is not None, "t_errorbar needs at least one value"  # seaborn never asks for an empty group
    if iv.low is None or iv.high is None:
        return iv.mean, iv.mean
    return iv.low, iv.high


@dataclass(frozen=True)
class TestResult:
    """a - b (accuracy, as a fraction) with its interval, p and the smallest effect it could detect."""

    __test__ = False  # not a pytest class, whatever its name

    diff: float
    p: float
    low: float
    high: float
    se: float
    df: float
    seeds: int
    rows: int
    family: int = 1  # comparisons this one is among (Bonferroni): p and the interval are adjusted for them

    @property
    def significant(self) -> bool:
        return self.p < ALPHA

    @property
    def verdict(self) -> str:
        return "significant" if self.significant else "inconclusive"

    @property
    def detectable(self) -> float:
        """The smallest |a - b| this design detects with probability POWER at its (family) level."""
        return (sps.t.ppf(1 - ALPHA / (2 * self.family), self.df) + sps.t.ppf(POWER, self.df)) * self.se


@dataclass(frozen=True)
class Untested:
    """Why a comparison could not be tested (one short clause)."""

    reason: str  # "too_few_seeds" | "zero_variance" | "no_predictions" | "no_confirmation"


def family_level(k: int) -> float:
    """Bonferroni: each of k comparisons at level 1 - ALPHA/k, so that the family errs at most ALPHA
    of the time; an interval at this level excludes 0 exactly when the adjusted p is below ALPHA."""
    return 1 - ALPHA / max(k, 1)


def crossed_test(d: np.ndarray, family: int = 1) -> TestResult | Untested:
    """Test mean(d) = 0 for d of shape (seeds, rows): per-row correctness differences of two
    configurations trained on the same seeds, Bonferroni-adjusted as one of `family` comparisons.

    Two-way random-effects ANOVA without replication: MS_seed, MS_row, MS_residual give the variance
    of the grand mean, V = s2_seed/S + s2_row/R + s2_res/(S R) = (MS_seed + MS_row - MS_res) / (S R), each
    component kept at or above what the residual implies, and Satterthwaite's degrees of freedom for V
    (with the seed term's S - 1: a few seeds cannot show that seeds do not matter).
    """
    d = np.asarray(d, dtype=float)
    seeds, rows = d.shape
    if seeds < MIN_SEEDS:
        return Untested("too_few_seeds")
    if rows < 2 or not d.std() > 0:
        return Untested("zero_variance")
    mean = float(d.mean())
    seed_means, row_means = d.mean(1), d.mean(0)
    ms_seed = rows * float(seed_means.var(ddof=1))
    ms_row = seeds * float(row_means.var(ddof=1))
    residual = d - seed_means[:, None] - row_means[None, :] + mean
    ms_res = float((residual**2).sum()) / ((seeds - 1) * (rows - 1))
    # V * S * R = MS_seed + max(0, MS_row - MS_res), with MS_seed floored at MS_res (its expectation is at
    # least that): a seed term that came out low by chance would otherwise shrink V and inflate the df,
    # and the test would err 2-3 times too often at Bonferroni levels (tests/test_report_simulation.py)
    seed_part = max(ms_seed, ms_res)
    row_part = max(0.0, ms_row - ms_res)
    total = seed_part + row_part
    if not total > 0:
        return Untested("zero_variance")
    parts = [(seed_part, seeds - 1)] + ([(ms_row, rows - 1), (ms_res, (seeds - 1) * (rows - 1))] if row_part else [])
    df = total**2 / sum(part**2 / part_df for part, part_df in parts)
    se = math.sqrt(total / (seeds * rows))
    p = min(1.0, float(2 * sps.t.sf(abs(mean) / se, df)) * family)
    half = float(sps.t.ppf(1 - ALPHA / (2 * family), df)) * se
    return TestResult(mean, p, mean - half, mean + half, se, float(df), seeds, rows, family)
