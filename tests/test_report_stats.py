"""Statistics of the report: checked against scipy and against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from newslab.report.stats import (
    ALPHA,
    bonferroni,
    family_level,
    mcnemar,
    mean_interval,
    paired_bootstrap,
    paired_test,
    t_errorbar,
    welch,
)


def test_mean_interval_is_the_t_interval_and_has_no_spread_for_one_value() -> None:
    values = [0.81, 0.84, 0.83, 0.86]
    iv = mean_interval(values)
    low, high = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert iv.n == 4 and iv.low == pytest.approx(low) and iv.high == pytest.approx(high)
    single = mean_interval([0.8])
    assert (single.mean, single.n, single.std, single.low, single.high) == (0.8, 1, None, None, None)
    assert t_errorbar([0.8]) == (0.8, 0.8) and mean_interval([]) is None


def test_welch_matches_scipy_and_refuses_what_it_cannot_test() -> None:
    a, b = [0.85, 0.86, 0.84, 0.87], [0.80, 0.83, 0.82]
    result = welch(a, b)
    reference = sps.ttest_ind(a, b, equal_var=False)
    assert result.p == pytest.approx(reference.pvalue) and result.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert result.low < result.diff < result.high and result.significant
    assert welch([0.8], [0.7, 0.71]) is None  # one seed: no variance to compare with
    assert welch([0.8, 0.8], [0.7, 0.7]) is None  # zero variance: the noise cannot be estimated
    assert not welch([0.80, 0.82, 0.81], [0.81, 0.80, 0.82]).significant


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs() -> None:
    a = np.array([1] * 50 + [1] * 12 + [0] * 3 + [0] * 35, bool)  # 12 only a right, 3 only b right
    b = np.array([1] * 50 + [0] * 12 + [1] * 3 + [0] * 35, bool)
    result = mcnemar(a, b)
    assert result.p == pytest.approx(sps.binomtest(12, 15, 0.5).pvalue) and result.diff == pytest.approx(0.09)
    assert mcnemar(a, a).p == 1.0


def test_paired_bootstrap_separates_a_real_difference_from_none() -> None:
    rng = np.random.default_rng(1)
    a = (rng.random(800) < 0.85).astype(float)
    b = a.copy()
    flip = rng.choice(800, 80, replace=False)
    b[flip] = 0.0  # b loses up to 80 rows a got right
    better = paired_bootstrap(a, b)
    assert better.diff > 0.05 and better.p < 0.01 and better.low < better.diff < better.high
    same = paired_bootstrap(a, a)
    assert (same.diff, same.p) == (0.0, 1.0)
    shuffled = paired_bootstrap(a, rng.permutation(a))
    assert shuffled.p > 0.05  # same accuracy, different rows: no evidence either way


def test_paired_test_picks_mcnemar_for_single_runs_and_bootstrap_over_seeds() -> None:
    labels = [0, 1, 2, 3] * 50
    right, wrong = list(labels), [(y + 1) % 4 for y in labels]
    assert paired_test([right], [wrong], labels).name == "mcnemar"
    assert paired_test([right, right], [wrong, right], labels).name == "bootstrap"
    assert paired_test([right], [wrong], None) is None
    assert paired_test([right], [wrong[:-1]], labels) is None  # different test files cannot be paired


def test_bonferroni_adjustment_and_its_interval_agree() -> None:
    strong = welch([0.8, 0.81, 0.82], [0.7, 0.71, 0.69])
    assert bonferroni(strong, 3).p_adjusted == pytest.approx(3 * strong.p) and bonferroni(None, 3) is None
    assert bonferroni(strong, 1) is strong and family_level(1) == 0.95 and family_level(5) == pytest.approx(0.99)
    weak = welch([0.8, 0.82, 0.81], [0.8, 0.81, 0.79])
    assert bonferroni(weak, 4).p_used == 1.0 and not math.isnan(bonferroni(weak, 4).p_used)  # capped at 1
    # a difference significant alone but not as one of 6: the interval at 1 - ALPHA/6 must then contain 0
    a, b = [0.80, 0.81, 0.82, 0.815], [0.79, 0.795, 0.80, 0.80]  # p = 0.03
    alone, family = welch(a, b), bonferroni(welch(a, b, family_level(6)), 6)
    assert alone.significant and alone.low > 0
    assert not family.significant and family.low < 0 < family.high and family.p_used == pytest.approx(6 * alone.p)
    for k in range(1, 8):  # at every family size: the adjusted interval excludes 0 iff the adjusted p < ALPHA
        t = bonferroni(welch(a, b, family_level(k)), k)
        assert t.significant == (t.low > 0 or t.high < 0) == (alone.p * k < ALPHA)
