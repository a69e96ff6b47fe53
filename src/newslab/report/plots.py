"""The report's figures (matplotlib + seaborn), each saved as PNG and SVG.

Figures are built on `matplotlib.figure.Figure` objects, never through pyplot: no global
backend or state is touched, so a notebook's inline plotting keeps working and nothing needs
a display. Error bars are t-based 95% intervals over seeds (stats.t_errorbar), the same
intervals as in the tables, drawn from the confirmation runs (the selection runs only for a study
without any); the ablation figure's are the paired tests' Bonferroni-adjusted intervals, as in its
table. No figure shows a test accuracy: it is sealed (the best model's confusion matrix excepted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

from ..study.results import StudyResult
from .effects import AblationEffect, factor_value, factors
from .fonts import figure_rc
from .i18n import Words
from .stats import family_level, t_errorbar


def pct_errorbar(values) -> tuple[float, float]:
    """The t interval of accuracies in %, cut to [0, 100]: with 2 seeds (t = 12.7) it can pass both."""
    low, high = t_errorbar(values)
    return max(low, 0.0), min(high, 100.0)


def errorbar_span(frame: pd.DataFrame, by: list[str], column: str = "acc") -> tuple[float, float]:
    """Lowest and highest end of the error bars of `column` grouped `by`: axis limits must hold them."""
    bounds = [pct_errorbar(values) for _, values in frame.groupby(by)[column]]
    return min(b[0] for b in bounds), max(b[1] for b in bounds)


# the order in which factors take the roles of a figure: x, then hue, then style
ROLE_ORDER = ("embed_dim", "num_heads", "lr")

VERDICT_COLORS = {"significant": "#c0392b", "inconclusive": "#95a5a6", "untested": "#d5dbdb"}


@dataclass
class FigureFile:
    name: str
    png: Path
    svg: Path
    caption: str


# what a figure method returns: FigureFile, or FigureFile | None for one that may have nothing to draw
Drawn = TypeVar("Drawn", bound="FigureFile | None")


class Plotter:
    """Draws and saves figures into `out_dir` with the labels of `lang`.

    A figure is a method returning a FigureFile (or None when there is nothing to draw); it is
    drawn through `draw`, which applies the style and this language's fonts:
    `plotter.draw(plotter.confusion, cm, class_names, name)`. A new figure is one more method.

    `drawn_text` collects every string drawn, so the Chinese font can be checked against the
    exact characters used; `lang` falls back to "en" (with a warning) when no CJK font exists.
    """

    def __init__(self, out_dir: str | Path, lang: str = "en"):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.requested_lang = lang  # the report's language; `lang` is what figures can show
        self.rc, self.lang = figure_rc(lang)
        self.w = Words(self.lang)
        self.drawn_text: set[str] = set()

    def _figure(self, width: float, height: float, nrows: int = 1, ncols: int = 1):
        fig = Figure(figsize=(width, height), layout="constrained")
        return fig, fig.subplots(nrows, ncols, squeeze=False)

    def _save(self, fig: Figure, name: str, caption: str) -> FigureFile:
        png, svg = self.out_dir / f"{name}.png", self.out_dir / f"{name}.svg"
        fig.savefig(png)
        fig.savefig(svg)
        self.drawn_text.update(t.get_text() for t in fig.findobj(Text) if t.get_text())
        return FigureFile(name, png, svg, caption)

    def draw(self, figure: Callable[..., Drawn], *args, **kwargs) -> Drawn:
        """Call `figure` (one of the figure methods below, bound to this plotter) with `args`
        inside the report's style and this language's rc settings."""
        # seaborn's style sets its own font list: the language's rc settings must come after it
        with sns.axes_style("whitegrid"), matplotlib.rc_context(self.rc):
            return figure(*args, **kwargs)

    # ---------------------------------------------------------------- studies
    @staticmethod
    def _estimates(result: StudyResult) -> tuple[list, str]:
        """The runs a figure of the points draws: the confirmation runs, or the selection runs (at each
        point's chosen nuisance) of a study without any; and their name for the caption."""
        confirmed = result.confirmed()
        return (confirmed, "runs_confirm") if confirmed else (result.points(), "runs_select")

    def _trials_frame(self, result: StudyResult, numeric: str | None = None) -> pd.DataFrame:
        """One row per completed seed of each point (its confirmation runs, see `_estimates`), one labelled
        column per factor (a joint factor's values read "64/2"); `numeric`, a one-field factor, keeps numbers
        for a real x axis."""

        def cell(s, key):
            if key == numeric and "," not in key and isinstance(s.point[key], (int, float)):
                return s.point[key]
            return self.w.factor_value(key, factor_value(s, key))

        rows = []
        for s in self._estimates(result)[0]:
            for t in s.trials:
                assert t.val_accuracy is not None, "a Summary holds completed trials, each with a validation accuracy"
                rows.append(
                    {
                        **{self.w.factor(k): cell(s, k) for k in factors(result)},
                        "acc": 100 * t.val_accuracy,
                        "seed": t.seed,
                    }
                )
        return pd.DataFrame(rows)

    def _levels(self, result: StudyResult, key: str | None) -> list[str] | None:
        """A factor's values as labelled in the frame, in the spec's order (not by accuracy)."""
        if key is None:
            return None
        return [self.w.factor_value(key, v if "," in key else (v,)) for v in result.spec.scientific[key]]

    @staticmethod
    def _roles(result: StudyResult) -> list[str]:
        """Factors in the order they take x, hue and style: a joint "embed_dim,num_heads" is one x, so
        lines over model sizes are drawn per lr rather than one point per heads value."""
        rank = lambda key: next((i for i, n in enumerate(ROLE_ORDER) if n in key.split(",")), len(ROLE_ORDER))
        return sorted(factors(result), key=rank)

    def hyperparameters(self, result: StudyResult) -> FigureFile | None:
        """Validation accuracy vs model size, hue = heads (or lr), style = lr (the original manual's line plot)."""
        if not result.points():
            return None
        x, hue, style = (self._roles(result) + [None, None])[:3]
        frame = self._trials_frame(result, numeric=x)
        fig, ax = self._figure(6.4, 4.0)
        label = lambda key: self.w.factor(key) if key else None
        sns.lineplot(
            data=frame,
            x=label(x),
            y="acc",
            hue=label(hue),
            style=label(style),
            errorbar=pct_errorbar,
            hue_order=self._levels(result, hue),
            style_order=self._levels(result, style),
            err_style="bars",
            err_kws={"capsize": 4},
            markers=True,
            ax=ax[0, 0],
        )
        if pd.api.types.is_numeric_dtype(frame[label(x)]):
            ax[0, 0].set_xticks(sorted(frame[label(x)].unique()))
        ax[0, 0].set_ylabel(f"{self.w['val_acc']} (%)")
        ax[0, 0].set_title(result.name)
        runs = self.w[self._estimates(result)[1]]
        return self._save(fig, f"{result.name}-hyperparameters", f"{self.w['impact']}: {result.name} ({runs})")

    def lr_bars(self, result: StudyResult) -> FigureFile | None:
        """Mean validation accuracy per lr at each model size (the original manual's catplot): the
        confirmation runs of each (size, lr) point, or, where lr is chosen per size (a nuisance
        parameter), the selection runs that chose it — every lr tried, at every size."""
        keys = self._roles(result)
        chosen_per_size = "lr" in result.spec.parameter_names("nuisance")
        if not result.points() or not (chosen_per_size and keys or "lr" in keys and len(keys) >= 2):
            return None
        x = next(k for k in keys if k != "lr")
        lr_label = self.w.param("lr")
        if chosen_per_size:
            frame = pd.DataFrame(
                {
                    self.w.factor(x): self.w.factor_value(x, factor_value(s, x)),
                    lr_label: self.w.factor_value("lr", (s.nuisance["lr"],)),
                    "acc": 100 * t.val_accuracy,
                }
                for s in result.summaries()
                for t in s.trials
                if t.val_accuracy is not None
            )
            lr_order: list[str] | None = [self.w.factor_value("lr", (v,)) for v in result.spec.choices("lr")]
            runs = self.w["runs_select"]
        else:
            frame = self._trials_frame(result)  # its lr column is labelled w.factor("lr") == w.param("lr")
            lr_order = self._levels(result, "lr")
            runs = self.w[self._estimates(result)[1]]
        fig, ax = self._figure(6.4, 4.0)
        sns.barplot(
            data=frame,
            x=self.w.factor(x),
            y="acc",
            hue=lr_label,
            errorbar=pct_errorbar,
            capsize=0.1,
            ax=ax[0, 0],
            order=self._levels(result, x),
            hue_order=lr_order,
        )
        low, high = errorbar_span(frame, [self.w.factor(x), lr_label])  # never cut an error bar
        ax[0, 0].set_ylim(max(0.0, low - 5), min(100.0, high + 3))
        ax[0, 0].set_ylabel(f"{self.w['val_acc']} (%)")
        ax[0, 0].set_title(result.name)
        return self._save(fig, f"{result.name}-lr", f"{self.w['lr']} × {self.w.factor(x)}: {result.name} ({runs})")

    def learning_curves(self, result: StudyResult) -> FigureFile | None:
        """Validation accuracy and loss per epoch of every selection run: the curves the epochs were chosen on."""
        rows = [
            {"config": self.w.point({**t.point, **t.nuisance}), "trial": t.number, **h}
            for t in result.trials
            if t.state == "COMPLETE" and t.role == "select"
            for h in t.history
        ]
        if not rows:
            return None
        frame = pd.DataFrame(rows)
        frame["val_accuracy"] *= 100
        fig, axes = self._figure(10, 4.0, 1, 2)
        for ax, column, label in (
            (axes[0, 0], "val_accuracy", f"{self.w['val_acc']} (%)"),
            (axes[0, 1], "val_loss", self.w["val_loss"]),
        ):
            sns.lineplot(
                data=frame,
                x="epoch",
                y=column,
                hue="config",
                units="trial",
                estimator=None,
                ax=ax,
                legend=ax is axes[0, 1],
                linewidth=1,
                alpha=0.8,
            )
            ax.set_xlabel(self.w["epoch"])
            ax.set_ylabel(label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0, 1].legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(result.name)
        caption = f"{self.w['val_acc']} / {self.w['val_loss']}: {result.name} ({self.w['runs_select']})"
        return self._save(fig, f"{result.name}-curves", caption)

    def ablations(self, name: str, effects: list[AblationEffect]) -> FigureFile | None:
        """Relative change against the baseline on the confirmation runs with the paired tests'
        (Bonferroni-adjusted) intervals, coloured by verdict."""
        if not effects:
            return None
        fig, ax = self._figure(6.4, 0.5 * len(effects) + 1.4)
        ax = ax[0, 0]
        for y, e in enumerate(effects):
            interval = e.relative_interval
            if e.relative is None:
                continue  # the baseline scored 0: there is no relative change to draw
            xerr = (
                None if interval is None else [[100 * (e.relative - interval[0])], [100 * (interval[1] - e.relative)]]
            )
            ax.barh(y, 100 * e.relative, xerr=xerr, capsize=4, color=VERDICT_COLORS[e.comparison.verdict])
        ax.set_yticks(range(len(effects)), [self.w.ablation(e.name) for e in effects])
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"{self.w['rel_change']} (%)")
        ax.invert_yaxis()
        from matplotlib.patches import Patch

        ax.legend(
            [Patch(color=c) for c in VERDICT_COLORS.values()],
            [self.w.verdict(v) for v in VERDICT_COLORS],
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
        )
        ax.set_title(name)
        note = self.w["ablation_ci"].format(level=self.w.level(family_level(len(effects))), k=len(effects))
        return self._save(fig, f"{name}-ablations", f"{self.w['ablations']}: {name}. {note}")

    # ---------------------------------------------------------------- best model
    def confusion(self, cm: np.ndarray, class_names: list[str], name: str) -> FigureFile:
        labels = [self.w.class_name(c) for c in class_names]
        fig, ax = self._figure(5.2, 4.4)
        sns.heatmap(
            cm, annot=True, fmt="d", cmap="Blues", xticklabels=labels, yticklabels=labels, ax=ax[0, 0], cbar=False
        )
        ax[0, 0].set_xlabel(self.w["predicted"])
        ax[0, 0].set_ylabel(self.w["true"])
        return self._save(fig, f"{name}-confusion", f"{self.w['best_model']}: {name}")

    # ---------------------------------------------------------------- attention
    def attention_head(self, tokens: list[str], weights: np.ndarray, layer: int, head: int) -> FigureFile:
        size = max(4.0, 0.28 * len(tokens) + 1.5)
        fig, ax = self._figure(size + 1, size)
        sns.heatmap(
            weights,
            xticklabels=tokens,
            yticklabels=tokens,
            cmap="viridis",
            square=True,
            ax=ax[0, 0],
            vmin=0,
            cbar_kws={"shrink": 0.6},
        )
        ax[0, 0].set_xlabel(self.w["key"])
        ax[0, 0].set_ylabel(self.w["query"])
        ax[0, 0].set_title(f"{self.w['layer']} {layer + 1} / {self.w['head']} {head + 1}")
        return self._save(fig, f"attention-l{layer + 1}h{head + 1}", ax[0, 0].get_title())

    def attention_grid(self, tokens: list[str], weights: list[np.ndarray]) -> FigureFile:
        layers, heads = len(weights), weights[0].shape[0]
        fig, axes = self._figure(2.6 * heads + 0.5, 2.6 * layers + 0.5, layers, heads)
        for layer in range(layers):
            for head in range(heads):
                ax = axes[layer, head]
                sns.heatmap(
                    weights[layer][head],
                    cmap="viridis",
                    vmin=0,
                    cbar=False,
                    square=True,
                    ax=ax,
                    xticklabels=False,
                    yticklabels=False,
                )
                ax.set_title(f"{self.w['layer']} {layer + 1} / {self.w['head']} {head + 1}", fontsize="small")
        return self._save(fig, "attention-grid", f"{self.w['layer']} × {self.w['head']}")

    def head_summary(self, entropy: np.ndarray, distance: np.ndarray, uniform_entropy: float) -> FigureFile:
        """Entropy on the scale 0 .. uniform attention, distance from 0: colours show how focused a
        head is, not the (often tiny) differences between heads."""
        fig, axes = self._figure(4.2 * 2, 1.2 * entropy.shape[0] + 1.8, 1, 2)
        ticks = dict(xticklabels=range(1, entropy.shape[1] + 1), yticklabels=range(1, entropy.shape[0] + 1))
        for ax, values, title, top in (
            (axes[0, 0], entropy, self.w["entropy"], uniform_entropy),
            (axes[0, 1], distance, self.w["distance"], None),
        ):
            sns.heatmap(values, annot=True, fmt=".2f", cmap="mako_r", ax=ax, cbar=False, vmin=0, vmax=top, **ticks)
            ax.set_xlabel(self.w["head"])
            ax.set_ylabel(self.w["layer"])
            ax.set_title(title, fontsize="medium")
        return self._save(fig, "attention-heads", f"{self.w['entropy']} / {self.w['distance']}")
