"""Tables, figures and the selected run on hand-built results (no training): what each shows agrees
with the numbers and with the verdicts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex
from scipy import stats as sps

from newslab.config import NewslabError
from newslab.report import effects as fx
from newslab.report import tables
from newslab.report.bestmodel import BestRun, best_run
from newslab.report.i18n import Words
from newslab.report.plots import VERDICT_COLORS, Plotter, pct_errorbar
from newslab.report.stats import TestResult as Paired
from newslab.report.stats import family_level
from newslab.study.results import chosen_epoch
from report_synthetic import ablations, study

EN = Words("en")


@pytest.fixture
def figures(monkeypatch) -> dict:
    """Every matplotlib Figure the Plotter saves, by name, to look at what was drawn."""
    saved, save = {}, Plotter._save

    def keep(self, fig, name, caption):
        saved[name] = fig
        return save(self, fig, name, caption)

    monkeypatch.setattr(Plotter, "_save", keep)
    return saved


def column(table, header: str) -> list[str]:
    return [row[table.headers.index(header)] for row in table.rows]


def test_results_table_shows_both_stages_and_unseals_only_the_selected_test_accuracy() -> None:
    # a nuisance lr: the selected point's other lr row has the same point and must not be starred
    result = study(
        "g",
        {"embed_dim": [32, 64], "num_heads": [2, 4]},
        lambda p, n: 0.80 + 0.03 * (p["embed_dim"] == 64) + 0.01 * (n["lr"] == 1e-3),
        nuisance={"lr": [1e-3, 3e-3]},
    )
    table = tables.results_table(result, EN)
    pick = fx.selected(result)
    assert pick is not None and pick.confirmation is not None
    best = pick.selection
    starred = [row for row, mark in zip(table.rows, column(table, EN["selected"])) if mark == "★"]
    assert starred == [table.rows[0]]
    assert starred[0][:3] == [str(best.point["embed_dim"]), str(best.point["num_heads"]), f"{best.nuisance['lr']:g}"]
    means = [float(cell.split("%")[0]) for cell in column(table, f"{EN['selection_val']} ({EN['mean_std']})")]
    assert means == sorted(means, reverse=True) and len(means) == 8
    assert column(table, EN["n_select"]) == ["3"] * 8
    tests = column(table, EN["test_acc"])  # sealed everywhere but the selected configuration
    assert tests[0] == f"{EN.pct(pick.confirmation.test_mean)} ± {100 * pick.confirmation.test_std:.2f}"
    assert tests[1:] == ["sealed"] * 7
    by_row = {tuple(row[:3]): row for row in table.rows}
    confirmed = {s.key: s for s in result.confirmed()}
    assert len(confirmed) == 4  # one configuration per point, at the lr its selection chose
    for s in result.summaries():
        row = by_row[(str(s.point["embed_dim"]), str(s.point["num_heads"]), f"{s.nuisance['lr']:g}")]
        c = confirmed.get(s.key)
        if c is None:  # the lr this point did not choose: never confirmed
            assert row[table.headers.index(EN["n_confirm"])] == "0" and row[table.headers.index(EN.ci(0.95))] == "–"
            continue
        v = c.val_accuracies
        low, high = sps.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=sps.sem(v))
        assert row[table.headers.index(EN.ci(0.95))] == f"[{100 * low:.2f}, {100 * high:.2f}]"
        assert row[table.headers.index(EN["n_confirm"])] == "5"
        assert row[table.headers.index(EN["chosen_epoch"])] == str(chosen_epoch(s)) == str(c.trials[0].stop_epoch)


def test_an_ablation_study_selects_nothing_and_seals_every_test_accuracy() -> None:
    result = ablations("a", {"no_pe": 0.08})
    table = tables.results_table(result, EN)
    assert EN["selected"] not in table.headers and set(column(table, EN["test_acc"])) == {"sealed"}


def interval_of(cell: str) -> tuple[float, float]:
    low, high = re.fullmatch(r"\[([-+]\d+\.\d+)%?, ([-+]\d+\.\d+)%?\]", cell).groups()
    return float(low), float(high)


@pytest.mark.parametrize("lang, adjusted", [("en", "Bonferroni-adjusted"), ("zh", "Bonferroni 校正")])
def test_ablation_intervals_exclude_zero_exactly_when_the_verdict_is_significant(
    lang, adjusted, figures, tmp_path: Path
) -> None:
    drops = {"no_pe": 0.08, "no_ffn": 0.03, "single_head": 0.02, "freeze_emb": 0.015, "no_dropout": 0.01}
    result = ablations("a", drops, seed=3)
    found = fx.ablation_effects(result)
    w = Words(lang)
    table = tables.ablation_table(found, w)
    ci = w.ci(family_level(len(found.effects)))
    assert ci.startswith("99.17%") and adjusted in table.caption
    rows = {row[0]: dict(zip(table.headers, row)) for row in table.rows}
    for e in found.effects:
        row, test = rows[w.ablation(e.name)], e.comparison.test
        assert isinstance(test, Paired)
        low, high = interval_of(row[ci])
        significant = row[w["verdict"]] == w.verdict("significant")
        assert significant == (e.comparison.verdict == "significant") == (low > 0 or high < 0), e.name
        assert (low, high) == pytest.approx((100 * test.low, 100 * test.high), abs=0.006)
        rel_low, rel_high = interval_of(row[w["rel_ci"].format(level=w.level(family_level(6)))])
        assert (rel_low, rel_high) == pytest.approx(tuple(100 * x for x in e.relative_interval), abs=0.006)
        assert row[w["p_adjusted"]] == w.p(test.p) and row[w["detectable"]] == w.pts(test.detectable, signed=False)
        assert row[w["n_confirm"]] == "5" and all(t.role == "confirm" for t in e.comparison.a.trials)
    assert {e.comparison.verdict for e in found.effects} == {"significant", "inconclusive"}
    assert "★" not in str(table.rows)  # no variant is marked as chosen
    # the table lists the variants in the spec's order, as the figure beside it does (the ranking is in the conclusions)
    spec_order = [n for n in result.spec.choices("ablation") if n != "none"]
    assert [row[0] for row in table.rows[1:]] == [w.ablation(n) for n in spec_order]
    assert sorted(drops, key=spec_order.index) != sorted(drops, key=drops.get, reverse=True)  # orders that differ
    # the data has a difference an unadjusted test would call real: the agreement above is not free
    assert any(
        fx.test_of(fx.differences(e.comparison.a, e.comparison.b), 1).significant
        and e.comparison.verdict == "inconclusive"
        for e in found.effects
    )
    plotter = Plotter(tmp_path, lang)
    figure = plotter.draw(plotter.ablations, "a", found.effects)
    assert adjusted in figure.caption
    bars = figures["a-ablations"].axes[0].containers  # one per effect: the error bar is the table's interval
    for e, bar in zip(found.effects, [c for c in bars if hasattr(c, "lines")]):
        xs = np.concatenate([seg[:, 0] for seg in bar.lines[2][0].get_segments()])
        assert (xs.min(), xs.max()) == pytest.approx(tuple(100 * x for x in e.relative_interval))
    patches = [c for c in bars if not hasattr(c, "lines")]
    for e, bar in zip(found.effects, patches):  # coloured by the verdict
        assert to_hex(bar.patches[0].get_facecolor()) == VERDICT_COLORS[e.comparison.verdict]


def test_lr_bars_keep_every_error_bar_inside_the_axes(figures, tmp_path: Path) -> None:
    # two seeds and wide noise: t = 12.7, so the intervals reach far beyond the data
    result = study("wide", {"embed_dim": [32, 64], "lr": [1e-3, 3e-3]}, lambda p, n: 0.5, seeds=2, noise=0.03)
    plotter = Plotter(tmp_path)
    plotter.draw(plotter.lr_bars, result)
    ax = figures["wide-lr"].axes[0]
    ends = np.array([y for line in ax.get_lines() for y in line.get_ydata()], float)  # the error bars' ends
    bottom, top = ax.get_ylim()
    widest = max(pct_errorbar([100 * a for a in s.val_accuracies])[1] for s in result.confirmed())
    assert np.nanmax(ends) == pytest.approx(widest) and bottom <= np.nanmin(ends) and np.nanmax(ends) <= top


def test_joint_grid_line_plot_connects_model_sizes_per_lr(figures, tmp_path: Path) -> None:
    result = study(
        "joint",
        {"embed_dim,num_heads": [[32, 2], [64, 4], [128, 8]], "lr": [1e-3, 3e-3]},
        lambda p, n: 0.8 + 0.0001 * p["embed_dim"],
    )
    plotter = Plotter(tmp_path)
    plotter.draw(plotter.hyperparameters, result)
    drawn = figures["joint-hyperparameters"].axes[0].get_lines()
    lines = [line for line in drawn if line.get_linestyle() not in ("None", "") and len(line.get_xdata())]
    assert len(lines) == 2 and all(len(line.get_xdata()) == 3 for line in lines)  # one line per lr, over 3 sizes
    assert {"embed_dim/heads", "32/2", "128/8", "lr"} <= plotter.drawn_text


def test_an_ablation_against_a_baseline_at_zero_accuracy_shows_a_dash(tmp_path: Path) -> None:
    result = study(
        "zero", {"ablation": ["none", "no_pe"]}, lambda p, n: 0.0 if p["ablation"] == "none" else 0.5, noise=0.0
    )
    found = fx.ablation_effects(result)
    assert found.effects[0].relative is None and found.effects[0].relative_interval is None
    table = tables.ablation_table(found, EN)
    row = dict(zip(table.headers, table.rows[1]))
    assert row[EN["ablation"]] == "no positional encoding" and row[EN["rel_change"]] == "–"
    assert row[EN["rel_ci"].format(level=EN.level(0.95))] == "–" and row[EN["verdict"]] == "significant"
    plotter = Plotter(tmp_path)
    assert plotter.draw(plotter.ablations, "zero", found.effects).png.is_file()


def test_trials_without_a_run_folder_are_skipped_not_read_from_the_current_directory(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "predictions.json").write_text(json.dumps({"test": [0], "test_labels": [0]}))
    result = study("nodir", {"lr": [1e-3, 3e-3]}, lambda p, n: 0.8)  # hand-built trials: run_dir None
    with pytest.raises(NewslabError, match="recorded no run folder"):
        best_run([result])


def test_class_count_without_the_data_comes_from_labels_and_predictions() -> None:
    run = lambda labels, predictions: BestRun("s", None, None, Path("."), None, None, None, labels, predictions)
    assert run([0, 1, 1], [0, 3, 1]).class_names == ["0", "1", "2", "3"]  # class 3 only predicted
    assert run([0, 2], [0, 0]).confusion().shape == (3, 3)
    assert run([], []).class_names == []
