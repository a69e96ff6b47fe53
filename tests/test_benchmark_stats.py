"""The benchmarks' verdicts: the median of per-round ratios and its distribution-free interval."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # benchmarks/ is not a package
_wait_policy = os.environ.get("OMP_WAIT_POLICY")
from common import LEVEL, MedianInterval, median_interval  # noqa: E402

if _wait_policy is None:  # common.py sets the benchmarks' OpenMP policy; the tests' subprocesses keep newslab's
    os.environ.pop("OMP_WAIT_POLICY", None)

rates = st.lists(st.floats(0.01, 1e4, allow_nan=False), min_size=1, max_size=40, unique=True)


@given(rates)
def test_interval_is_two_rounds_around_the_median(values):
    m = median_interval(values)
    assert m.low <= m.median <= m.high
    assert m.low in values and m.high in values
    xs, n = sorted(values), len(values)
    k = xs.index(m.low) + 1  # the lower bound is the k-th smallest round, the upper the k-th largest
    assert m.high == xs[n - k]
    if n >= 5:  # 5 rounds are the fewest whose [min, max] reaches the level
        assert m.coverage >= LEVEL
    else:
        assert (m.low, m.high) == (xs[0], xs[-1])


def test_coverage_is_the_binomial_one_for_nine_rounds():
    m = median_interval(list(range(1, 10)))
    assert (m.low, m.high) == (2, 8)  # x(2), x(8): 1 - 2 * (1 + 9) / 512
    assert m.coverage == pytest.approx(1 - 20 / 512)


def test_interval_holds_the_median_as_often_as_it_says_on_skewed_noise():
    rng = np.random.default_rng(0)
    samples = rng.lognormal(0.0, 1.0, size=(4000, 9))  # median 1, a long right tail like a loaded neighbour's
    hits = [(m := median_interval(list(row))).low <= 1.0 <= m.high for row in samples]
    # stated 96.1%; [min, max] would hold it 99.6% of the time, the middle three rounds far less
    assert 0.95 < float(np.mean(hits)) < 0.975


@pytest.mark.parametrize(
    ("low", "high", "verdict"), [(15.0, 17.0, "met"), (13.0, 14.9, "NOT met"), (14.0, 16.0, "inconclusive")]
)
def test_verdict_needs_the_whole_interval_on_one_side(low, high, verdict):
    assert MedianInterval((low + high) / 2, low, high, 0.96).verdict(15.0) == verdict


def test_too_few_rounds_decide_nothing():
    two_rounds = median_interval([16.5, 19.2])  # [min, max] covers the median only half the time
    assert two_rounds.verdict(15.0) == "inconclusive (too few rounds)"
    assert median_interval([16.5, 19.2, 17.0, 18.1, 16.9]).verdict(15.0) == "met"
