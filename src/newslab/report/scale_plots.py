"""The scale chapter's figures (report/scale.py computes what they show): the training split's token lengths
against each max_len studied, accuracy against time per run, and each batch size's best lr against the
scaling rules. `Plotter` (report/plots.py) inherits them."""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from . import style
from .canvas import Canvas, FigureFile
from .scale import RULES, Lengths, LrRule, ScaleAnalysis
from .stats import t_errorbar


class ScaleFigures(Canvas):
    """The scale chapter's figures, drawn through `Canvas.draw`."""

    def lengths(self, name: str, lengths: Lengths, max_lens: list[int]) -> FigureFile:
        """A histogram of the rows' token counts, each max_len studied as a line labelled with the share of
        rows it truncates."""
        w = self.w
        fig, axes = self._figure(style.FULL_WIDTH, 3.4)
        ax = axes[0, 0]
        counts = lengths.counts
        ax.hist(counts, bins=min(80, max(10, int(counts.max()) // 4)), color=style.color(0), alpha=0.8)
        for i, n in enumerate(sorted(set(max_lens))):
            label = f"{w.param('max_len')} {n}{w.colon}{w.pct(lengths.rows_cut(n), 1)} {w['rows_cut']}"
            ax.axvline(n, color=style.color(i + 1), linestyle="--", linewidth=1.4, label=label)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
        ax.set_xlabel(w["tokens_per_row"])
        ax.set_ylabel(w["rows"])
        ax.set_title(f"{name}: {w['length_distribution']}")
        return self._save(fig, f"{name}-lengths", f"{name}: {w['length_distribution']}")

    def scale_time(self, name: str, analysis: ScaleAnalysis) -> FigureFile | None:
        """Validation accuracy (mean and 95% t interval over the seeds) against the mean time per run; the
        points varying max_len joined in one colour, those varying the batch size in another, the reference
        in both."""
        points = [p for p in analysis.points if p.seconds is not None]
        if not points:
            return None
        w = self.w
        ref_len, ref_batch = analysis.reference
        fig, axes = self._figure(style.FULL_WIDTH, 4.2)
        ax = axes[0, 0]
        series = (
            ("max_len", [p for p in points if p.batch_size == ref_batch], lambda p: p.max_len),
            ("batch_size", [p for p in points if p.max_len == ref_len], lambda p: p.batch_size),
        )
        handles = []
        for i, (param, members, value) in enumerate(series):
            members = sorted(members, key=value)
            if not members:
                continue
            x = [p.seconds for p in members]
            y = [100 * p.estimate.val_mean for p in members]
            bounds = np.array([t_errorbar(p.estimate.val_accuracies, within=(0, 1)) for p in members]).T * 100
            err = np.abs(bounds - np.array(y))  # (2, n): below and above the mean
            color, marker = style.color(i), style.MARKERS[i]
            ax.errorbar(x, y, yerr=err, color=color, marker=marker, capsize=3, linewidth=1.2)
            for p, xi, yi in zip(members, x, y):
                ax.annotate(str(value(p)), (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8, color=color)
            handles.append((Line2D([], [], color=color, marker=marker), f"{w['varying']} {w.param(param)}"))
        ax.set_xlim(left=0)
        ax.set_xlabel(w["seconds_per_run"])
        ax.set_ylabel(f"{w['val_acc']} (%)")
        ax.set_title(f"{name}: {w['accuracy_vs_time']}")
        ax.legend(*zip(*handles), loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
        return self._save(fig, f"{name}-time", f"{name}: {w['accuracy_vs_time_caption']}")

    def lr_rule(self, name: str, rule: LrRule) -> FigureFile | None:
        """Each batch size's best lr (filled: inside the lr grid; open: at its edge) on log-log axes, the
        fitted line, and each rule's line through the points' geometric centre."""
        if len(rule.batch_sizes) < 2:
            return None
        w = self.w
        fig, axes = self._figure(style.HALF_WIDTH, 4.0)
        ax = axes[0, 0]
        b, lr = np.array(rule.batch_sizes, dtype=float), np.array(rule.lrs)
        ax.scatter(b[rule.inside], lr[rule.inside], color="black", zorder=3)
        edge = ~np.array(rule.inside)
        ax.scatter(b[edge], lr[edge], facecolors="none", edgecolors="black", zorder=3)
        cx, cy = np.exp(np.log(b).mean()), np.exp(np.log(lr).mean())
        span = np.geomspace(b.min(), b.max(), 20)
        for i, (rule_name, k) in enumerate(RULES.items()):
            ax.plot(span, cy * (span / cx) ** k, color=style.color(i + 1), linestyle=":", label=w[f"rule_{rule_name}"])
        if rule.exponent is not None:
            label = f"{w['fitted']}: k = {rule.exponent:.2f} [{rule.low:.2f}, {rule.high:.2f}]"
            ax.plot(span, cy * (span / cx) ** rule.exponent, color="black", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(w.param("batch_size"))
        ax.set_ylabel(w["best_lr"])
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(f"{name}: {w['lr_rule']}")
        return self._save(fig, f"{name}-lr-rule", f"{name}: {w['lr_rule_caption']}")
