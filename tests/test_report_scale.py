"""The scale chapter (report/scale.py) on hand-built studies with a known optimum: the lr scaling rule it
measures, the interpolated best lr, the truncation shares, and the chapter and its conclusions."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import report_synthetic
from newslab.report import write_report
from newslab.report.render import Table
from newslab.report.scale import KEY, RULES, Lengths, analyse_scale, best_lr
from newslab.study.spec import load_spec

LEVELS = [[64, 64], [32, 64], [128, 64], [64, 16], [64, 32], [64, 128], [64, 256]]
LRS = [float(x) for x in np.geomspace(1e-4, 1e-1, 13)]  # a factor of 1.78 apart


def scale_study(k: float, name: str = "s", noise: float = 0.0005, seed: int = 0, lrs: list[float] = LRS):
    """Accuracy peaks at lr* = 1e-3 (batch / 64)^k, falling quadratically in log lr; longer sequences help (+5 pts
    per doubling)."""

    def accuracy(point: dict, nuisance: dict) -> float:
        best = 1e-3 * (point["batch_size"] / 64) ** k
        return 0.82 + 0.05 * math.log2(point["max_len"] / 64) - 0.02 * math.log(nuisance["lr"] / best) ** 2

    return report_synthetic.study(
        name, {KEY: LEVELS}, accuracy, seeds=2, confirm=5, nuisance={"lr": lrs}, noise=noise, seed=seed
    )


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_lr_rule_is_measured_from_each_batch_sizes_best_lr(rule: str) -> None:
    k = RULES[rule]
    analysis = analyse_scale(scale_study(k))
    measured = analysis.rule
    assert measured.batch_sizes == [16, 32, 64, 128, 256] and all(measured.inside)
    assert measured.exponent == pytest.approx(k, abs=0.1)
    assert rule in measured.consistent()
    assert measured.low is not None and measured.high is not None and measured.low < k < measured.high


@settings(max_examples=25, deadline=None)
@given(true_lr=st.floats(4.5e-4, 2.2e-2), seed=st.integers(0, 1000))
def test_the_interpolated_best_lr_lies_nearer_the_optimum_than_the_grid(true_lr: float, seed: int) -> None:
    grid = [1e-4, 1e-3, 1e-2, 1e-1]  # a decade apart: the grid's best can be far off

    def accuracy(point: dict, nuisance: dict) -> float:
        return 0.85 - 0.01 * math.log(nuisance["lr"] / true_lr) ** 2

    study = report_synthetic.study(
        "i",
        {"batch_size": [64]},
        accuracy,
        seeds=1,
        confirm=0,
        nuisance={"lr": grid},
        noise=0.0,
        rows=20_000,
        seed=seed,
    )
    lr, inside = best_lr(study, {"batch_size": 64})
    on_grid = min(grid, key=lambda g: abs(math.log(g / true_lr)))
    assert inside
    assert abs(math.log(lr / true_lr)) <= abs(math.log(on_grid / true_lr)) + 0.15


def test_a_best_lr_at_the_grids_edge_is_flagged_and_left_out_of_the_fit(tmp_path: Path) -> None:
    analysis = analyse_scale(scale_study(1.0, lrs=LRS[:7]))  # batch 256 wants 4e-3, above the grid's 3.2e-3
    inside = dict(zip(analysis.rule.batch_sizes, analysis.rule.inside))
    assert inside[256] is False and inside[16] is True and analysis.rule.fitted == 4
    assert analysis.rule.exponent == pytest.approx(1.0, abs=0.25)  # the edge value would have pulled k down
    claims = {c.subject: c for c in write_report([scale_study(1.0, name="e", lrs=LRS[:7])], tmp_path, log=None).claims}
    assert (
        "batch 256 lies at the edge of the lr grid" in claims["e/rule"].text
        and "left out of the fit" in claims["e/rule"].text
    )


def test_an_exact_fit_sizes_no_interval_and_decides_no_rule() -> None:
    """Best lrs on grid values a line joins exactly: a zero standard error must not read as certainty."""
    from newslab.report.scale import LrRule

    rule = LrRule([16, 32, 64], [1e-3, 2e-3, 4e-3], [True, True, True], exponent=1.0)
    assert rule.consistent() == list(RULES)  # no interval: every rule stays possible
    analysis = analyse_scale(scale_study(1.0, lrs=[2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2]))
    assert analysis.rule.exponent is not None


@settings(max_examples=50, deadline=None)
@given(counts=st.lists(st.integers(1, 600), min_size=1, max_size=300), max_len=st.integers(1, 700))
def test_truncation_shares(counts: list[int], max_len: int) -> None:
    lengths = Lengths(np.array(counts))
    assert lengths.rows_cut(max_len) == pytest.approx(sum(c > max_len for c in counts) / len(counts))
    assert lengths.tokens_cut(max_len) == pytest.approx(sum(max(0, c - max_len) for c in counts) / sum(counts))
    assert lengths.rows_cut(max(counts)) == lengths.tokens_cut(max(counts)) == 0.0
    assert lengths.percentile(100) == max(counts) and lengths.percentile(50) in counts
    assert lengths.rows_cut(max_len + 1) <= lengths.rows_cut(max_len)


def test_the_scale_chapter_and_its_conclusions(tmp_path: Path) -> None:
    grid = report_synthetic.grid("g", lambda p, n: 0.8)
    study = scale_study(0.5, name="sc")
    files = write_report([grid, study], tmp_path, log=None)
    markdown = files.markdown.read_text()
    chapter = markdown.split("## Sequence length and batch size")[1].split("## Best model")[0]
    assert "sc-time.png" in chapter and "sc-lr-rule.png" in chapter
    assert "lengths are unavailable" in chapter  # hand-built trials have no run folder to read the data from
    (table,) = [b for b in files.section("scale").blocks if isinstance(b, Table)]
    assert [row[:2] for row in table.rows] == [[str(a), str(b)] for a, b in LEVELS]
    assert table.rows[0][8] == "reference" and "Bonferroni-adjusted over the study's 6 other points" in table.caption
    claims = {c.subject: c for c in files.claims if c.topic == "scale"}
    assert claims["128,64"].verdict == claims["32,64"].verdict == "significant"  # a longer max_len helps
    assert re.match(r"max_len 128, batch 64: \+(4\.9|5\.0)\d pts, 2\.0 s a run; significant", claims["128,64"].text)
    assert "square root" in claims["sc/rule"].text and claims["sc/rule"].text.startswith(
        "The best lr scales as batch^k"
    )


def test_the_scale_presets_vary_one_factor_at_a_time_around_their_reference() -> None:
    for name in ("scale", "quick-scale"):
        spec = load_spec(name)
        (reference, *others) = spec.scientific[KEY]
        assert all((a == reference[0]) != (b == reference[1]) for a, b in others)  # exactly one differs
        assert max(a for a, _ in spec.scientific[KEY]) >= 256 and len(spec.choices("lr")) >= 4
    assert max(a for a, _ in load_spec("scale").scientific[KEY]) == 512
