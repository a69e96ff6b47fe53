"""Statistics of the report: checked against scipy and against the formulas written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from newslab.report.stats import (
    ALPHA,
    POWER,
    Untested,
    crossed_test,
    family_level,
    mean_interval,
    t_errorbar,
)
from newslab.report.stats import TestResult as Paired


def test_mean_interval_is_the_t_interval_and_has_no_spread_for_one_value() -> None:
    values = [0.81, 0.84, 0.83, 0.86]
    iv = mean_interval(values)
    low, high = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert iv.n == 4 and iv.low == pytest.approx(low) and iv.high == pytest.approx(high)
    single = mean_interval([0.8])
    assert (single.mean, single.n, single.std, single.low, single.high) == (0.8, 1, None, None, None)
    assert t_errorbar([0.8]) == (0.8, 0.8) and mean_interval([]) is None


def two_way_anova(d: list[list[float]], family: int = 1) -> dict[str, float]:
    """The crossed random-effects test written out with loops, straight from the textbook formulas."""
    S, R = len(d), len(d[0])
    grand = sum(sum(row) for row in d) / (S * R)
    seed_mean = [sum(row) / R for row in d]
    row_mean = [sum(d[s][r] for s in range(S)) / S for r in range(R)]
    ms_seed = R * sum((m - grand) ** 2 for m in seed_mean) / (S - 1)
    ms_row = S * sum((m - grand) ** 2 for m in row_mean) / (R - 1)
    ss_res = sum((d[s][r] - seed_mean[s] - row_mean[r] + grand) ** 2 for s in range(S) for r in range(R))
    ms_res = ss_res / ((S - 1) * (R - 1))
    # E[MS_seed] = s2_res + R s2_seed, E[MS_row] = s2_res + S s2_row, E[MS_res] = s2_res, so
    # Var(grand mean) = s2_seed/S + s2_row/R + s2_res/(S R) = (MS_seed + MS_row - MS_res) / (S R),
    # with MS_seed taken at least MS_res (its expectation) and the row component at least 0
    seed_part = max(ms_seed, ms_res)
    if ms_row > ms_res:
        total = seed_part + ms_row - ms_res
        df = total**2 / (seed_part**2 / (S - 1) + ms_row**2 / (R - 1) + ms_res**2 / ((S - 1) * (R - 1)))
    else:  # the row component estimated at or below 0: kept at 0, the seed term alone
        total, df = seed_part, S - 1
    se = math.sqrt(total / (S * R))
    p = min(1.0, 2 * sps.t.sf(abs(grand) / se, df) * family)
    half = sps.t.ppf(1 - ALPHA / (2 * family), df) * se
    detectable = (sps.t.ppf(1 - ALPHA / (2 * family), df) + sps.t.ppf(POWER, df)) * se
    return {
        "diff": grand,
        "se": se,
        "df": df,
        "p": p,
        "low": grand - half,
        "high": grand + half,
        "det": detectable,
        "seed_floored": ms_seed < ms_res,
        "row_clamped": ms_row <= ms_res,
    }


# rows a configuration gets right and the other wrong (1/-1), and seeds that differ in how many
ROWS_MATTER = [
    [1, 1, 1, 1, 1, 1, 0, 1],
    [1, 0, 0, 1, 0, 1, 0, 1],
    [1, 1, 0, 1, 1, 1, 1, 1],
    [0, 0, -1, 1, 0, -1, -1, 1],
]
# no row is consistently won: MS_row below MS_res
ROWS_DO_NOT = [
    [1, 0, 0, -1, 1, 0],
    [0, 1, -1, 0, 0, 0],
    [1, -1, 1, 0, 1, 1],
]
# seeds agree closely, rows do not: MS_seed below MS_res, taken at MS_res
SEEDS_AGREE = [
    [1, 0, -1, 1, 0, 1, 0],
    [0, 1, 0, 1, -1, 1, 1],
    [1, 1, 0, 0, 0, 0, 1],
    [0, 0, 1, 1, 1, 0, 0],
]
MATRICES = {"row-component": ROWS_MATTER, "row-component-clamped": ROWS_DO_NOT, "seed-term-floored": SEEDS_AGREE}


@pytest.mark.parametrize("matrix", list(MATRICES.values()), ids=list(MATRICES))
@pytest.mark.parametrize("family", [1, 4])
def test_crossed_test_is_the_two_way_random_effects_anova(matrix, family: int) -> None:
    expected = two_way_anova(matrix, family)
    result = crossed_test(np.array(matrix), family)
    assert isinstance(result, Paired)
    assert (result.seeds, result.rows, result.family) == (len(matrix), len(matrix[0]), family)
    for name, value in (("diff", result.diff), ("se", result.se), ("df", result.df), ("p", result.p)):
        assert value == pytest.approx(expected[name]), name
    assert (result.low, result.high) == pytest.approx((expected["low"], expected["high"]))
    assert result.detectable == pytest.approx(expected["det"])


def test_the_matrices_take_every_branch() -> None:
    # each floor is exercised (and one matrix takes neither), or the test above checks one branch thrice
    cases = {name: two_way_anova(m) for name, m in MATRICES.items()}
    assert not cases["row-component"]["row_clamped"] and not cases["row-component"]["seed_floored"]
    assert cases["row-component-clamped"]["row_clamped"] and cases["row-component-clamped"]["df"] == 2
    assert cases["seed-term-floored"]["seed_floored"]


def test_crossed_test_refuses_what_it_cannot_test() -> None:
    assert crossed_test(np.array(ROWS_MATTER[:2])) == Untested("too_few_seeds")  # 2 seeds: 1 df for the seed term
    assert crossed_test(np.ones((4, 50))) == Untested("zero_variance")  # all equal: no noise to measure
    assert crossed_test(np.zeros((3, 50))) == Untested("zero_variance")


def simulated(seeds: int, rows: int, effect: float, rng: np.random.Generator) -> np.ndarray:
    """Per-row correctness differences: a's and b's rows right with a shared row difficulty, a better by `effect`."""
    difficulty = rng.random(rows)
    d = []
    for _ in range(seeds):
        shift = rng.normal(0, 0.005)
        a = difficulty + 0.3 * rng.random(rows) < 0.85 + effect + shift
        b = difficulty + 0.3 * rng.random(rows) < 0.85
        d.append(a.astype(float) - b)
    return np.array(d)


def test_a_strong_real_effect_is_significant_and_its_interval_covers_it() -> None:
    rng = np.random.default_rng(0)
    d = simulated(5, 2000, 0.06, rng)
    result = crossed_test(d, family=6)
    assert isinstance(result, Paired) and result.verdict == "significant" and result.p < ALPHA
    assert result.low > 0 and result.low < d.mean() < result.high
    none = crossed_test(simulated(5, 2000, 0.0, rng), family=6)
    assert isinstance(none, Paired) and none.verdict == "inconclusive" and none.low < 0 < none.high


def test_the_smallest_detectable_effect_shrinks_with_more_seeds() -> None:
    rng = np.random.default_rng(1)
    few = [crossed_test(simulated(3, 1000, 0.0, rng)) for _ in range(20)]
    many = [crossed_test(simulated(10, 1000, 0.0, rng)) for _ in range(20)]
    assert all(isinstance(t, Paired) for t in few + many)
    assert np.median([t.detectable for t in many]) < 0.5 * np.median([t.detectable for t in few])


def test_bonferroni_interval_excludes_zero_exactly_when_the_adjusted_p_is_below_alpha() -> None:
    assert family_level(1) == 0.95 and family_level(5) == pytest.approx(0.99)
    d = simulated(4, 1500, 0.02, np.random.default_rng(2))
    alone = crossed_test(d)
    assert isinstance(alone, Paired)
    for k in range(1, 30):
        t = crossed_test(d, family=k)
        assert isinstance(t, Paired) and t.p == pytest.approx(min(1.0, k * alone.p))
        assert t.significant == (t.low > 0 or t.high < 0) == (alone.p * k < ALPHA), k
    # the family sizes above reach both verdicts: the agreement is not free
    assert crossed_test(d, 1).significant and not crossed_test(d, 29).significant


@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6))
def test_an_accuracy_interval_cut_to_its_range_is_the_t_interval_inside_it(accuracies: list[float]) -> None:
    free, cut = mean_interval(accuracies), mean_interval(accuracies, within=(0.0, 1.0))
    assert free is not None and cut is not None and free.low is not None and free.high is not None
    assert cut.low == max(free.low, 0.0) and cut.high == min(free.high, 1.0)
    assert 0.0 <= cut.low <= cut.mean <= cut.high <= 1.0 and (cut.mean, cut.std) == (free.mean, free.std)
