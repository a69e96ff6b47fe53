"""The study figures on hand-built results (no training), read back from their matplotlib Figures:
spec order on every categorical axis, bars from zero, learning curves as mean ± band with training
loss, ablation curves as small multiples, the ablation chart's title and legend, no overlapping text."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.text import Text

from newslab.config import ABLATIONS, BASELINE
from newslab.report import effects as fx
from newslab.report import style
from newslab.report.i18n import Words
from newslab.report.plots import FigureFile, Plotter
from report_synthetic import ablations, grid, study

LANGS = ["en", "zh"]
SIZES = [[32, 2], [64, 4], [128, 8]]
# a sequence of settings for hypothesis: each example draws a few figures (~0.3 s each)
FEW = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def drawn(figure: FigureFile | None) -> Figure:
    assert figure is not None and figure.figure is not None and figure.png.is_file() and figure.svg.is_file()
    return figure.figure


def ticks(labels) -> list[str]:
    return [t.get_text() for t in labels]


def legend_texts(fig: Figure) -> list[str]:
    return [
        t.get_text() for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)] if legend for t in legend.texts
    ]


def bigger_is_better(p: dict, n: dict) -> float:
    """Accuracy rising with model size: sorted by accuracy, the sizes run against the spec's order."""
    return 0.7 + 0.001 * p.get("embed_dim", 0) + (0.01 if n.get("lr", p.get("lr")) == 1e-3 else 0.0)


def overlapping_texts(plotter: Plotter, fig: Figure) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty texts of `fig` (drawn by `plotter`) whose drawn boxes intersect."""
    canvas = FigureCanvasAgg(fig)  # a renderer to measure texts with, as the PNG was drawn
    with matplotlib.rc_context({**style.rc(), **plotter.rc}):  # its fonts: zh glyphs differ
        canvas.draw()
    renderer = canvas.get_renderer()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]


# ------------------------------------------------------------------ spec order
@FEW
@given(order=st.permutations(range(3)))
def test_joint_sizes_follow_the_spec_order_whatever_their_accuracy(tmp_path: Path, order: list[int]) -> None:
    sizes = [SIZES[i] for i in order]
    result = study("joint", {"embed_dim,num_heads": sizes}, bigger_is_better, nuisance={"lr": [3e-3, 1e-3]})
    assert [s.point["embed_dim"] for s in result.points()] == [128, 64, 32]  # the data's order: by accuracy
    plotter = Plotter(tmp_path)
    expected = [f"{e}/{h}" for e, h in sizes]
    for figure in (plotter.hyperparameters, plotter.lr_bars):
        ax = drawn(plotter.draw(figure, result)).axes[0]
        assert ticks(ax.get_xticklabels()) == expected, figure.__name__


@pytest.mark.parametrize("lang", LANGS)
def test_numeric_factors_run_ascending_on_axes_and_legends(tmp_path: Path, lang: str) -> None:
    result = study(
        "numeric",
        {"embed_dim": [64, 32], "num_heads": [4, 2], "lr": [3e-3, 1e-3]},
        bigger_is_better,
    )
    plotter, w = Plotter(tmp_path, lang), Words(lang)
    fig = drawn(plotter.draw(plotter.hyperparameters, result))
    ax = fig.axes[0]
    assert ticks(ax.get_xticklabels()) == ["32", "64"] and ax.get_ylabel() == f"{w['val_acc']} (%)"
    assert legend_texts(fig) == [w.factor("num_heads"), "2", "4", w.factor("lr"), "0.001", "0.003"]
    lines = [line for line in ax.get_lines() if line.get_linestyle() not in ("None", "")]
    assert len(lines) == 4 and all(line.get_marker() not in ("None", "", None) for line in lines)  # markers drawn
    colors = {to_hex(line.get_color()) for line in lines}
    assert colors == {style.color(0), style.color(1)}  # hue = heads, marker and dashes = lr
    assert len({(line.get_marker(), line.get_linestyle()) for line in lines}) == 2
    bars = drawn(plotter.draw(plotter.lr_bars, result))
    assert ticks(bars.axes[0].get_xticklabels()) == ["32", "64"] and legend_texts(bars) == ["0.001", "0.003"]


def test_a_nuisance_value_is_written_under_each_point(tmp_path: Path) -> None:
    result = study("nuis", {"embed_dim,num_heads": SIZES}, bigger_is_better, nuisance={"lr": [3e-3, 1e-3]})
    plotter = Plotter(tmp_path)
    figure = plotter.draw(plotter.hyperparameters, result)
    notes = [a.get_text() for a in drawn(figure).axes[0].texts]
    assert notes == [f"lr {s.nuisance['lr']:g}" for s in sorted(result.confirmed(), key=lambda s: s.point["embed_dim"])]
    assert "lr" in figure.caption and not overlapping_texts(plotter, drawn(figure))


# ------------------------------------------------------------------ bars from zero
@pytest.mark.parametrize("lang", LANGS)
def test_bars_start_at_zero(tmp_path: Path, lang: str) -> None:
    plotter = Plotter(tmp_path, lang)
    bars = drawn(plotter.draw(plotter.lr_bars, grid("g", bigger_is_better))).axes[0]
    assert bars.get_ylim()[0] == 0 and all(p.get_y() == 0 for p in bars.patches if p.get_height())
    found = fx.ablation_effects(ablations("a", {"freeze_emb": 0.08}))
    chart = drawn(plotter.draw(plotter.ablations, "a", found.effects)).axes[0]
    low, high = chart.get_xlim()
    assert low <= 0 <= high and all(p.get_x() == 0 for p in chart.patches)


# ------------------------------------------------------------------ learning curves
@pytest.mark.parametrize("lang", LANGS)
def test_learning_curves_draw_a_mean_and_a_band_per_configuration_with_training_loss(tmp_path: Path, lang: str) -> None:
    result = grid("g", bigger_is_better, seeds=3)
    configs = result.summaries()
    plotter, w = Plotter(tmp_path, lang), Words(lang)
    figure = plotter.draw(plotter.learning_curves, result)
    fig = drawn(figure)
    assert [ax.get_title() for ax in fig.axes] == [w["train_loss_smoothed"], w["val_loss"], f"{w['val_acc']} (%)"]
    for ax, column, scale in zip(fig.axes, ["train_loss", "val_loss", "val_accuracy"], [1, 1, 100]):
        lines = ax.get_lines()
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(lines) == len(bands) == len(configs) == 8
        for line, s in zip(lines, configs):  # each line is its configuration's mean over seeds
            values = scale * np.array([[h[column] for h in t.history] for t in s.trials])
            assert np.allclose(line.get_ydata(), values.mean(0))
    styles = [(to_hex(line.get_color()), line.get_linestyle()) for line in fig.axes[2].get_lines()]
    assert len(set(styles)) == len(configs)  # every configuration drawn its own way
    assert len({c for c, _ in styles}) == 4 and len({d for _, d in styles}) == 2  # colour: size x heads, dashes: lr
    assert legend_texts(fig) == [w.point({**s.point, **s.nuisance}) for s in configs]
    assert w["band_sd"].format(n=3) in figure.caption and not overlapping_texts(plotter, fig)


def test_training_loss_is_the_plain_cross_entropy_where_recorded(tmp_path: Path) -> None:
    result = grid("g", bigger_is_better)
    for t in result.trials:
        for h in t.history:
            h["train_loss_unsmoothed"] = h["train_loss"] - 0.1
    plotter = Plotter(tmp_path)
    fig = drawn(plotter.draw(plotter.learning_curves, result))
    assert fig.axes[0].get_title() == Words("en")["train_loss"]
    s = result.summaries()[0]
    expected = np.mean([[h["train_loss_unsmoothed"] for h in t.history] for t in s.trials], axis=0)
    assert np.allclose(fig.axes[0].get_lines()[0].get_ydata(), expected)


@FEW
@given(
    variants=st.lists(st.sampled_from(list(ABLATIONS)), min_size=1, max_size=len(ABLATIONS), unique=True),
    lang=st.sampled_from(LANGS),
)
def test_ablation_curves_have_one_panel_per_variant_over_the_baseline(
    tmp_path: Path, variants: list[str], lang: str
) -> None:
    result = study(
        "abl",
        {"ablation": [BASELINE, *variants]},
        lambda p, n: 0.85 - 0.01 * list(ABLATIONS).index(p["ablation"]) if p["ablation"] != BASELINE else 0.85,
        nuisance={"lr": [1e-3, 3e-3]},
        fixed={"epochs": 3},
    )
    plotter, w = Plotter(tmp_path, lang), Words(lang)
    fig = drawn(plotter.draw(plotter.learning_curves, result))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(variants)
    assert [ax.get_title().split(" (")[0] for ax in panels] == [w.ablation(v) for v in variants]  # spec order
    for i, ax in enumerate(panels):
        baseline, variant = ax.get_lines()
        assert to_hex(baseline.get_color()) == style.REFERENCE and to_hex(variant.get_color()) == style.color(i)
        assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2  # each with its band
    assert legend_texts(fig)[0].startswith(w.ablation(BASELINE))


# ------------------------------------------------------------------ the ablation chart
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    ("drops", "verdicts"),
    [({"freeze_emb": 0.08}, {"significant", "inconclusive"}), ({}, {"inconclusive"})],
)
def test_ablation_chart_names_the_baseline_and_only_the_verdicts_present(
    tmp_path: Path, lang: str, drops: dict, verdicts: set
) -> None:
    result = ablations("a", drops, seeds=3, confirm=5)
    found = fx.ablation_effects(result)
    assert {e.comparison.verdict for e in found.effects} == verdicts
    plotter, w = Plotter(tmp_path, lang), Words(lang)
    figure = plotter.draw(plotter.ablations, "a", found.effects, result.spec.choices("ablation"))
    fig = drawn(figure)
    ax = fig.axes[0]
    accuracy = w.pct(found.base.val_mean) if found.base else None
    assert accuracy and accuracy in ax.get_title() and accuracy in figure.caption
    assert legend_texts(fig) == [w.verdict(v) for v in ("significant", "inconclusive") if v in verdicts]
    assert ticks(ax.get_yticklabels()) == [w.ablation(v) for v in ABLATIONS]  # spec order, not by effect
    assert not overlapping_texts(plotter, fig)


# ------------------------------------------------------------------ layout
@pytest.mark.parametrize("lang", LANGS)
def test_study_figures_fit_the_page_and_no_text_overlaps(tmp_path: Path, lang: str) -> None:
    plotter = Plotter(tmp_path, lang)
    joint = study("joint", {"embed_dim,num_heads": SIZES}, bigger_is_better, nuisance={"lr": [3e-3, 1e-3]})
    figures = [
        plotter.draw(plotter.hyperparameters, grid("g", bigger_is_better)),
        plotter.draw(plotter.lr_bars, joint),
        plotter.draw(plotter.learning_curves, joint),
        plotter.draw(plotter.learning_curves, ablations("a", {"freeze_emb": 0.08})),
    ]
    for figure in figures:
        fig = drawn(figure)
        width = fig.get_figwidth() * fig.dpi
        assert width <= 1068, figure.name  # the HTML column: never scaled down, so 10 pt reads at 100%
        assert not overlapping_texts(plotter, fig), figure.name
