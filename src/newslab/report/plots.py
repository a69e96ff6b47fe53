"""The report's study and best-model figures (matplotlib + seaborn), each saved as PNG and SVG; the
attention figures are report/attention_plots.py's, the drawing and saving report/canvas.py's.

All share one style (report/style.py). Every categorical axis, legend and panel follows
the study spec's order (a numeric factor's values ascending), never the data's. Error bars are
t-based 95% intervals over seeds (stats.t_errorbar), the same intervals as in the tables, drawn from
the confirmation runs (the selection runs only for a study without any); the ablation figure's are
the paired tests' Bonferroni-adjusted intervals, as in its table. Learning curves are the mean over
the selection seeds with a ±1 sd band. No figure shows a test accuracy: it is sealed (the best
model's confusion matrix excepted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..config import BASELINE
from ..study.results import StudyResult, Summary
from . import style
from .attention_plots import AttentionFigures
from .canvas import FigureFile
from .effects import VariantEffect, factor_value, factors, is_ablation_study
from .scale_plots import ScaleFigures
from .search_plots import SearchFigures
from .stats import TestResult, family_level, t_errorbar


def pct_errorbar(values) -> tuple[float, float]:
    """The t interval of accuracies in %, cut to [0, 100]: with 2 seeds (t = 12.7) it can pass both."""
    return t_errorbar(values, within=(0.0, 100.0))


# the order in which factors take the roles of a figure: x, then hue, then style
ROLE_ORDER = ("embed_dim", "num_heads", "lr")

VERDICT_COLORS = style.VERDICT_COLORS  # kept here too: the tables' tests read the bars' colours from it


def mean_band(summary: Summary, column: str, scale: float = 1.0) -> pd.DataFrame:
    """Per epoch of a configuration's runs: the mean of `column` over its seeds and its sd (0 with
    one seed), indexed by epoch."""
    values = pd.DataFrame(
        {"epoch": h["epoch"], "value": scale * h[column]} for t in summary.trials for h in t.history if column in h
    )
    grouped = values.groupby("epoch")["value"]
    return pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1).fillna(0.0)})


def outside_legend(ax: Axes, handles: list, labels: list[str]) -> None:
    """A legend right of the axes, where it covers no data (constrained layout makes room for it)."""
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, borderaxespad=0)


def heading(label: str) -> tuple[Line2D, str]:
    """A legend entry without a mark: the title of the group of entries below it."""
    return Line2D([], [], linestyle="none", marker="none"), label


class Plotter(AttentionFigures, ScaleFigures, SearchFigures):
    """Every figure of the report: the studies' and the best model's here, the attention, scale and search
    figures inherited (report/attention_plots.py, scale_plots.py, search_plots.py); drawn and saved through `Canvas` (report/canvas.py):
    `plotter.draw(plotter.confusion, cm, class_names, name)`. A new figure is one more method."""

    # ---------------------------------------------------------------- studies
    @staticmethod
    def _estimates(result: StudyResult) -> tuple[list, str]:
        """The runs a figure of the points draws: the confirmation runs, or the selection runs (at each
        point's chosen nuisance) of a study without any; and their name for the caption."""
        confirmed = result.confirmed()
        return (confirmed, "runs_confirm") if confirmed else (result.points(), "runs_select")

    def _trials_frame(self, result: StudyResult) -> pd.DataFrame:
        """One row per completed seed of each point (its confirmation runs, see `_estimates`), one labelled
        column per factor (a joint factor's values read "64/2") and the point's chosen nuisance setting."""
        rows = []
        for s in self._estimates(result)[0]:
            for t in s.trials:
                assert t.val_accuracy is not None, "a Summary holds completed trials, each with a validation accuracy"
                rows.append(
                    {
                        **{self.w.factor(k): self.w.factor_value(k, factor_value(s, k)) for k in factors(result)},
                        "acc": 100 * t.val_accuracy,
                        "chosen": self.w.point(s.nuisance) if s.nuisance else "",
                    }
                )
        return pd.DataFrame(rows)

    def _levels(self, result: StudyResult, key: str) -> list[str]:
        """A factor's (scientific or nuisance) values as labelled, in the spec's order; a numeric
        one-field factor's ascending."""
        values = {**result.spec.scientific, **result.spec.nuisance}[key]
        if "," not in key and all(isinstance(v, (int, float)) for v in values):
            values = sorted(values)
        return [self.w.factor_value(key, tuple(v) if "," in key else (v,)) for v in values]

    @staticmethod
    def _roles(result: StudyResult) -> list[str]:
        """Factors in the order they take x, hue and style: a joint "embed_dim,num_heads" is one x, so
        lines over model sizes are drawn per lr rather than one point per heads value."""
        rank = lambda key: next((i for i, n in enumerate(ROLE_ORDER) if n in key.split(",")), len(ROLE_ORDER))
        return sorted(factors(result), key=rank)

    @staticmethod
    def _series_style(hue: int, dash: int) -> dict[str, Any]:
        """A line's colour (its hue's), marker and dashes (its dash's): one look per (hue, dash)."""
        return {
            "color": style.color(hue),
            "marker": style.MARKERS[dash % len(style.MARKERS)],
            "linestyle": style.LINESTYLES[dash % len(style.LINESTYLES)],
        }

    def hyperparameters(self, result: StudyResult) -> FigureFile | None:
        """Validation accuracy per value of the first factor (x, in spec order), one line per value of the
        second (colour) and third (marker and dashes); each point at its chosen nuisance setting, written
        under it (the original manual's line plot)."""
        if not result.points():
            return None
        x, *groups = self._roles(result)[:3]  # groups: the colour's factor, then the markers' and dashes'
        frame, w = self._trials_frame(result), self.w
        xs = self._levels(result, x)
        levels = [self._levels(result, key) for key in groups] + [[""], [""]]
        hues, dashes = levels[0], levels[1]
        frame["hue"] = frame[w.factor(groups[0])] if groups else ""
        frame["dash"] = frame[w.factor(groups[1])] if len(groups) > 1 else ""
        series = [(h, d) for h in hues for d in dashes]
        fig, axes = self._figure(style.HALF_WIDTH + (1.4 if groups else 0.0), 4.2)
        ax = axes[0, 0]
        dodge = min(0.1, 0.5 / len(series))  # side by side, so that no error bar hides another
        for i, (h, d) in enumerate(series):
            rows = frame[(frame["hue"] == h) & (frame["dash"] == d)]
            found = [(j, rows[rows[w.factor(x)] == level]) for j, level in enumerate(xs)]
            found = [(j, r) for j, r in found if len(r)]
            if not found:
                continue
            pos = np.array([j for j, _ in found]) + (i - (len(series) - 1) / 2) * dodge
            means = np.array([r["acc"].mean() for _, r in found])
            bars = np.array([pct_errorbar(r["acc"]) for _, r in found])
            ax.errorbar(
                pos,
                means,
                yerr=[means - bars[:, 0], bars[:, 1] - means],
                capsize=4,
                label=f"{h} {d}".strip(),
                **self._series_style(hues.index(h), dashes.index(d)),
            )
            for p, low, (_, r) in zip(pos, bars[:, 0], found):  # the nuisance value this point was chosen at
                if r["chosen"].iloc[0]:
                    ax.annotate(
                        r["chosen"].iloc[0], (p, low), xytext=(0, -5), textcoords="offset points", ha="center",
                        va="top", fontsize="small", color="#555555",
                    )  # fmt: skip
        ax.set_xticks(range(len(xs)), xs)
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.margins(y=0.12)  # room for the chosen settings under the lowest error bar
        ax.set_xlabel(w.factor(x))
        ax.set_ylabel(f"{w['val_acc']} (%)")
        ax.set_title(result.name)
        entries: list[tuple[Line2D, str]] = []
        for g, key in enumerate(groups):  # colours (with the first marker), then markers and dashes (in grey)
            entries.append(heading(w.factor(key)))
            for i, level in enumerate(levels[g]):
                look = self._series_style(i, 0) if g == 0 else {**self._series_style(0, i), "color": "#444444"}
                entries.append((Line2D([], [], **look), level))
        if entries:
            handles, labels = zip(*entries)
            outside_legend(ax, list(handles), list(labels))
        notes = [w[self._estimates(result)[1]], w["errorbar_ci"]]
        if result.spec.nuisance:
            notes.append(w["at_chosen"].format(what=", ".join(map(w.factor, result.spec.nuisance))))
        return self._save(fig, f"{result.name}-hyperparameters", f"{w['impact']}: {result.name} ({'; '.join(notes)})")

    def lr_bars(self, result: StudyResult) -> FigureFile | None:
        """Mean validation accuracy per lr at each model size (the original manual's catplot), bars from 0:
        the confirmation runs of each (size, lr) point, or, where lr is chosen per size (a nuisance
        parameter), the selection runs that chose it — every lr tried, at every size."""
        keys = self._roles(result)
        chosen_per_size = "lr" in result.spec.parameter_names("nuisance")
        if not result.points() or not (chosen_per_size and keys or "lr" in keys and len(keys) >= 2):
            return None
        x = next(k for k in keys if k != "lr")
        w, lr_label = self.w, self.w.param("lr")
        if chosen_per_size:
            frame = pd.DataFrame(
                {
                    w.factor(x): w.factor_value(x, factor_value(s, x)),
                    lr_label: w.factor_value("lr", (s.nuisance["lr"],)),
                    "acc": 100 * t.val_accuracy,
                }
                for s in result.summaries()
                for t in s.trials
                if t.val_accuracy is not None
            )
            runs = w["runs_select"]
        else:
            frame = self._trials_frame(result)  # its lr column is labelled w.factor("lr") == w.param("lr")
            runs = w[self._estimates(result)[1]]
        lr_order = self._levels(result, "lr")
        fig, ax = self._figure(style.HALF_WIDTH + 1.2, 4.2)
        sns.barplot(
            data=frame,
            x=w.factor(x),
            y="acc",
            hue=lr_label,
            errorbar=pct_errorbar,
            capsize=0.1,
            err_kws={"linewidth": 1.4, "color": "#333333"},
            ax=ax[0, 0],
            order=self._levels(result, x),
            hue_order=lr_order,
            palette=[style.color(i) for i in range(len(lr_order))],
        )
        ax[0, 0].set_ylim(0, 100)  # bars from 0: their lengths are the accuracies
        sns.move_legend(ax[0, 0], "upper left", bbox_to_anchor=(1.02, 1), frameon=False, borderaxespad=0)
        ax[0, 0].set_ylabel(f"{w['val_acc']} (%)")
        ax[0, 0].set_title(result.name)
        caption = f"{w.param('lr')} × {w.factor(x)}: {result.name} ({runs}; {w['errorbar_ci']})"
        return self._save(fig, f"{result.name}-lr", caption)

    def _train_loss_column(self, runs: list[Summary]) -> tuple[str, str]:
        """The training loss to draw and its label: the plain cross-entropy (comparable with the validation
        loss) where every run recorded it, else the label-smoothed objective, said so."""
        rows = [h for s in runs for t in s.trials for h in t.history]
        if rows and all("train_loss_unsmoothed" in h for h in rows):
            return "train_loss_unsmoothed", self.w["train_loss"]
        return "train_loss", self.w["train_loss_smoothed"]

    def learning_curves(self, result: StudyResult) -> FigureFile | None:
        """The selection runs' curves, the ones the epochs were chosen on, as a mean over seeds with a
        ±1 sd band: of a grid, training loss, validation loss and accuracy per configuration (dashes: its
        lr, colour: its other settings); of an ablation study, `ablation_curves`."""
        if is_ablation_study(result):
            return self.ablation_curves(result)
        runs = [s for s in result.summaries() if any(t.history for t in s.trials)]
        if not runs:
            return None
        w = self.w
        # the lr (scientific or nuisance) takes the dashes, the other settings the colour
        split = lambda s: (
            {k: v for k, v in {**s.point, **s.nuisance}.items() if k != "lr"},
            {**s.point, **s.nuisance}.get("lr"),
        )
        colours = list(dict.fromkeys(str(split(s)[0]) for s in runs))
        lrs = list(dict.fromkeys(split(s)[1] for s in runs))
        train_loss, train_label = self._train_loss_column(runs)
        fig, axes = self._figure(style.FULL_WIDTH, 3.4 + 0.3 * math.ceil(len(runs) / 3), 1, 3)
        axes[0, 1].sharey(axes[0, 0])  # both losses on one scale: the gap between them is the overfitting
        panels = (
            (axes[0, 0], train_loss, train_label, 1.0),
            (axes[0, 1], "val_loss", w["val_loss"], 1.0),
            (axes[0, 2], "val_accuracy", f"{w['val_acc']} (%)", 100.0),
        )
        handles = []
        for s in runs:
            i = colours.index(str(split(s)[0]))
            color, marker = style.color(i), style.MARKERS[i // len(style.PALETTE) % len(style.MARKERS)]
            dashes = style.LINESTYLES[lrs.index(split(s)[1]) % len(style.LINESTYLES)]
            mark: dict[str, Any] = {"color": color, "linestyle": dashes, "marker": marker, "markersize": 3.5}
            for ax, column, _, scale in panels:
                curve = mean_band(s, column, scale)
                if curve.empty:
                    continue
                ax.plot(curve.index, curve["mean"], **mark)
                low, high = curve["mean"] - curve["sd"], curve["mean"] + curve["sd"]
                ax.fill_between(curve.index, low, high, color=color, alpha=style.BAND_ALPHA, linewidth=0)
            handles.append((Line2D([], [], **mark), w.point({**s.point, **s.nuisance})))
        for ax, _, label, _ in panels:
            ax.set_xlabel(w["epoch"])
            ax.set_title(label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0, 0].set_ylabel(w["loss"])
        axes[0, 2].set_ylabel("%")
        lines, labels = map(list, zip(*handles))
        fig.legend(lines, labels, loc="outside lower center", ncols=min(3, len(labels)), frameon=False)
        fig.suptitle(result.name)
        seeds = max(s.n for s in runs)
        caption = f"{w['curves']}: {result.name} ({w['runs_select']}; {w['band_sd'].format(n=seeds)})"
        return self._save(fig, f"{result.name}-curves", caption)

    def ablation_curves(self, result: StudyResult) -> FigureFile | None:
        """Small multiples: per variant (spec order), its validation accuracy per epoch in a panel of its
        own, over the baseline's in grey; each at its chosen nuisance setting, mean over the selection
        seeds with a ±1 sd band."""
        chosen = {s.point["ablation"]: s for s in result.points() if any(t.history for t in s.trials)}
        variants = [v for v in result.spec.choices("ablation") if v != BASELINE and v in chosen]
        if not variants:
            return None
        w, base = self.w, chosen.get(BASELINE)
        ncols = min(3, len(variants))
        nrows = math.ceil(len(variants) / ncols)
        fig, axes = self._figure(style.FULL_WIDTH, 2.3 * nrows + 1.2, nrows, ncols, sharex=True, sharey=True)
        reference = mean_band(base, "val_accuracy", 100.0) if base else None
        for i, ax in enumerate(axes.flat):
            if i >= len(variants):
                ax.set_visible(False)
                continue
            s = chosen[variants[i]]
            for curve, color, zorder in (
                (reference, style.REFERENCE, 1),
                (mean_band(s, "val_accuracy", 100.0), style.color(i), 2),
            ):
                if curve is None or curve.empty:
                    continue
                ax.plot(curve.index, curve["mean"], color=color, marker="o", markersize=3, zorder=zorder)
                low, high = curve["mean"] - curve["sd"], curve["mean"] + curve["sd"]
                ax.fill_between(curve.index, low, high, color=color, alpha=style.BAND_ALPHA, linewidth=0, zorder=zorder)
            ax.set_title(self._variant(s), color=style.color(i), fontsize="medium")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelbottom=True)  # every panel keeps its epochs: the rows' x axes are shared
            if i + ncols >= len(variants):  # the lowest panel of its column
                ax.set_xlabel(w["epoch"])
        fig.supylabel(f"{w['val_acc']} (%)", fontsize="medium")
        fig.suptitle(result.name)
        if base is not None:
            reference_line = Line2D([], [], color=style.REFERENCE, marker="o", markersize=3)
            fig.legend([reference_line], [self._variant(base)], loc="outside lower center", frameon=False)
        seeds = max(s.n for s in chosen.values())
        caption = f"{w['curves']}: {result.name} ({w['runs_select']}; {w['ablation_curves_note']}; {w['band_sd'].format(n=seeds)})"
        return self._save(fig, f"{result.name}-curves", caption)

    def _variant(self, s: Summary) -> str:
        """An ablation variant with its chosen nuisance setting: "no FFN (lr 0.001)"."""
        name = self.w.ablation(s.point["ablation"])
        return f"{name} ({self.w.point(s.nuisance)})" if s.nuisance else name

    def ablations(
        self,
        name: str,
        effects: list[VariantEffect],
        order: Sequence[str] = (),
        key: str = "ablation",
        reference: str = BASELINE,
    ) -> FigureFile | None:
        """Relative change against the reference level of `key` (the baseline of an ablation study) on the
        confirmation runs with the paired tests' (Bonferroni-adjusted) intervals, coloured by verdict; variants
        in `order` (the spec's), else as given. The title carries the reference's accuracy, the legend the
        verdicts drawn; a variant without a relative change (the reference scored 0) keeps its row, without a
        bar."""
        if not effects:
            return None
        rank = {v: i for i, v in enumerate(order)}
        rows = sorted(effects, key=lambda e: rank.get(e.name, len(rank)))  # stable: without an order, as given
        w = self.w
        fig, axes = self._figure(style.HALF_WIDTH + 1.0, 0.45 * len(rows) + 1.5)
        ax = axes[0, 0]
        present = []  # the verdicts of the bars drawn
        for y, e in enumerate(rows):
            change, interval = e.relative, e.relative_interval
            if change is None:
                continue
            xerr = None if interval is None else [[100 * (change - interval[0])], [100 * (interval[1] - change)]]
            ax.barh(y, 100 * change, xerr=xerr, capsize=4, color=VERDICT_COLORS[e.comparison.verdict])
            present.append(e.comparison.verdict)
        ax.set_yticks(range(len(rows)), [w.value(key, e.name) for e in rows])
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"{w['rel_change']} (%)")
        ax.invert_yaxis()
        present = [v for v in VERDICT_COLORS if v in present]
        if present:
            outside_legend(ax, [Patch(color=VERDICT_COLORS[v]) for v in present], [w.verdict(v) for v in present])
        label = w.value(key, reference)
        baseline = w["baseline_val"].format(acc=w.pct(effects[0].comparison.b.val_mean), reference=label)
        ax.set_title(f"{name} ({baseline})")
        tested = next((e.comparison.test for e in effects if isinstance(e.comparison.test, TestResult)), None)
        k = tested.family if tested is not None else len(effects)  # the family the tests were adjusted over
        note = w["ablation_ci"].format(level=w.level(family_level(k)), k=k, reference=label)
        title = w["ablations"] if key == "ablation" else w.param(key)
        return self._save(
            fig, f"{name}-{'ablations' if key == 'ablation' else 'variants'}", f"{title}: {name} ({baseline}). {note}"
        )

    # ---------------------------------------------------------------- best model
    def confusion(self, cm: np.ndarray, class_names: list[str], name: str) -> FigureFile:
        labels = [self.w.class_name(c) for c in class_names]
        fig, ax = self._figure(5.6, 4.4)
        sns.heatmap(
            cm,
            annot=True,
            fmt="d",
            cmap="Blues",
            xticklabels=labels,
            yticklabels=labels,
            ax=ax[0, 0],
            cbar_kws={"label": self.w["examples"]},
        )
        ax[0, 0].set_xlabel(self.w["predicted"])
        ax[0, 0].set_ylabel(self.w["true"])
        return self._save(fig, f"{name}-confusion", f"{self.w['best_model']}: {name}")
