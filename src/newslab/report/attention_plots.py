"""The attention figures of the report: one head's weights over the sample, every layer and head on one
scale, and each head's entropy and attended distance against uniform attention (report/attention.py
computes them). `Plotter` (report/plots.py) inherits them, so `plotter.draw(plotter.attention_grid, ...)`
draws one like any other figure.
"""

from __future__ import annotations

import math

import numpy as np
import seaborn as sns
from matplotlib.colors import PowerNorm
from matplotlib.lines import Line2D

from . import style
from .attention import BROAD_ENTROPY, FOCUSED_ENTROPY, POSITIONAL_DISTANCE, HeadSummary, mean_sd
from .canvas import Canvas, FigureFile


class AttentionFigures(Canvas):
    """The attention figures, drawn through `Canvas.draw`."""

    @staticmethod
    def _token_ticks(tokens: list[str], inches: float) -> tuple[np.ndarray, list[str], float]:
        """Tick positions, labels and font size (pt) for tokens along a heatmap side `inches` long: 80% of a
        row, 5..9 pt; past what 5 pt fits (a long --attention-sample), every k-th token only."""
        row = 72 * inches / max(1, len(tokens))  # pt per token
        step = max(1, math.ceil(6.0 / row))
        keep = np.arange(0, len(tokens), step)
        return keep + 0.5, [tokens[i] for i in keep], max(5.0, min(9.0, 0.8 * row * step))

    def attention_head(self, tokens: list[str], weights: np.ndarray, layer: int, head: int) -> FigureFile:
        """One head's query x key weights over the sample's tokens."""
        side = min(7.0, max(3.5, 0.22 * len(tokens)))  # the heatmap's side, inches
        fig, ax = self._figure(side + 2.6, side + 1.8)
        sns.heatmap(
            weights,
            cmap="viridis",
            square=True,
            ax=ax[0, 0],
            vmin=0,
            cbar_kws={"shrink": 0.7, "label": self.w["attention_weight"]},
        )
        ticks, labels, size = self._token_ticks(tokens, side)
        ax[0, 0].set_xticks(ticks, labels, rotation=90)
        ax[0, 0].set_yticks(ticks, labels, rotation=0)
        ax[0, 0].tick_params(axis="both", labelsize=size, length=0)
        ax[0, 0].set_xlabel(self.w["key"])
        ax[0, 0].set_ylabel(self.w["query"])
        ax[0, 0].set_title(f"{self.w['layer']} {layer + 1} / {self.w['head']} {head + 1}")
        return self._save(fig, f"attention-l{layer + 1}h{head + 1}", ax[0, 0].get_title())

    def attention_grid(self, tokens: list[str], weights: list[np.ndarray]) -> FigureFile:
        """Every layer and head on the sample, on one shared colour scale. The longer of (layers, heads)
        runs down the page so that panels stay large enough for their tokens; the tokens label the outer
        panels (keys on the top and bottom rows, queries on the left column)."""
        layers, heads = len(weights), weights[0].shape[0]
        heads_down = heads > layers
        nrows, ncols = (heads, layers) if heads_down else (layers, heads)
        side = min(3.4, max(1.6, (style.FULL_WIDTH - 2.4) / ncols))  # a panel's side, inches
        fig, axes = self._figure(ncols * side + 2.4, nrows * (side + 0.35) + 2.2, nrows, ncols)
        # one scale for every panel; square-root colours, or the one hottest cell would leave the rest dark
        norm = PowerNorm(0.5, vmin=0, vmax=max(float(w.max()) for w in weights))
        ticks, labels, size = self._token_ticks(tokens, side)
        for layer in range(layers):
            for head in range(heads):
                row, col = (head, layer) if heads_down else (layer, head)
                ax = axes[row, col]
                sns.heatmap(weights[layer][head], cmap="viridis", norm=norm, cbar=False, square=True, ax=ax)
                blank = [""] * len(labels)
                ax.set_xticks(ticks, labels if row in (0, nrows - 1) else blank, rotation=90)
                ax.set_yticks(ticks, labels if col == 0 else blank, rotation=0)
                ax.tick_params(axis="both", labelsize=size, length=0, labeltop=row == 0, labelbottom=row == nrows - 1)
                ax.set_title(f"{self.w['layer']} {layer + 1} / {self.w['head']} {head + 1}", fontsize="small")
        fig.supxlabel(self.w["key"])
        fig.supylabel(self.w["query"])
        mappable = axes[0, 0].collections[0]
        fig.colorbar(mappable, ax=axes, shrink=min(1.0, 4.0 / (nrows * side)), label=self.w["attention_weight_sqrt"])
        return self._save(fig, "attention-grid", f"{self.w['layer']} × {self.w['head']}: {self.w['grid_caption']}")

    def head_summary(self, summaries: list[tuple[str, HeadSummary]]) -> FigureFile:
        """Entropy and attended distance of every head, each divided by uniform attention's over the
        same row, as mean ± sd over the rows; one panel per (measure, model). A diverging scale centred
        at 1 (white = uniform attention) keeps every head's colour meaningful: blue = more focused or
        nearer than uniform, red = farther."""
        layers, heads = (max(s.shape[i] for _, s in summaries) for i in (0, 1))  # a variant may have fewer heads
        cell = min(0.95, (style.FULL_WIDTH - 2.0) / heads)  # inches per head: room for "0.84 / ±0.05"
        panels = [
            (self.w[label], title, getter)
            for label, getter in (("entropy_rel", "entropy_ratio"), ("distance_rel", "distance_ratio"))
            for title, _ in summaries
        ]
        fig, axes = self._figure(heads * cell + 2.4, len(panels) * (0.5 * layers + 0.95) + 0.4, len(panels), 1)
        models = dict(summaries)
        top = 2.0  # the scale reaches as far above uniform as 0 is below it
        for ax, (label, title, getter) in zip(axes[:, 0], panels):
            mean, sd = mean_sd(getattr(models[title], getter))  # (layers, heads) of this model
            notes = np.array([[f"{m:.2f}\n±{s:.2f}" for m, s in zip(*rows)] for rows in zip(mean, sd)])
            sns.heatmap(
                mean.numpy(), annot=notes, fmt="", annot_kws={"fontsize": 8}, cmap="vlag", center=1.0, vmin=0,
                vmax=top, cbar=False, ax=ax, linewidths=0.5, linecolor="white",
                xticklabels=range(1, mean.shape[1] + 1), yticklabels=range(1, mean.shape[0] + 1),
            )  # fmt: skip
            ax.set_xlabel(self.w["head"])
            ax.set_ylabel(self.w["layer"])
            ax.tick_params(axis="y", rotation=0)
            ax.set_title(f"{label}{self.w.colon}{title}", fontsize="medium")
        highest = max(float(s.distance_ratio.mean(0).max()) for _, s in summaries)  # entropy never passes 1
        fig.colorbar(
            axes[0, 0].collections[0],
            ax=axes,
            label=self.w["ratio_uniform"],
            extend="max" if highest > top else "neither",
        )
        return self._save(fig, "attention-heads", self.w["heads_caption"])

    def encoding_heads(self, name: str, models: list[tuple[str, HeadSummary]]) -> FigureFile | None:
        """Each model's heads (one model per positional encoding, in the given order): entropy and attended
        distance over uniform attention's, one dot per head (its mean over the rows; colour = layer), the
        models' mean as a bar, uniform attention at 1 and the head kinds' thresholds dotted."""
        if not models:
            return None
        w = self.w
        fig, axes = self._figure(style.FULL_WIDTH, 3.9, 1, 2)
        layers = max(s.shape[0] for _, s in models)
        panels = (
            ("entropy_rel", "entropy_ratio", (BROAD_ENTROPY, FOCUSED_ENTROPY)),
            ("distance_rel", "distance_ratio", (POSITIONAL_DISTANCE,)),
        )
        for ax, (label, getter, thresholds) in zip(axes[0], panels):
            for x, (_, summary) in enumerate(models):
                mean = mean_sd(getattr(summary, getter))[0]  # (layers, heads)
                heads = mean.shape[1]
                for layer, row in enumerate(mean.tolist()):
                    offsets = np.linspace(-0.25, 0.25, heads) if heads > 1 else np.zeros(1)
                    ax.scatter(x + offsets, row, s=22, color=style.color(layer), zorder=3)
                ax.hlines(float(mean.mean()), x - 0.35, x + 0.35, color="black", linewidth=1.6, zorder=4)
            ax.axhline(1.0, color=style.REFERENCE, linestyle="--", linewidth=1.0)
            for t in thresholds:
                ax.axhline(t, color=style.REFERENCE, linestyle=":", linewidth=0.9)
            ax.set_xticks(range(len(models)), [title for title, _ in models], rotation=30, ha="right")
            ax.set_ylabel(w[label])
            ax.set_ylim(bottom=0)
        handles = [Line2D([], [], linestyle="none", marker="o", color=style.color(i)) for i in range(layers)] + [
            Line2D([], [], color="black"),
            Line2D([], [], color=style.REFERENCE, linestyle="--"),
        ]
        labels = [f"{w['layer']} {i + 1}" for i in range(layers)] + [w["mean_of_heads"], w["uniform"]]
        axes[0, 1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
        return self._save(fig, f"{name}-encoding-heads", f"{name}: {w['encoding_heads_caption']}")
