"""The search chapter's figures (report/search.py computes what they show): the search's history and the
parameter importances. `Plotter` (report/plots.py) inherits them."""

from __future__ import annotations

from matplotlib.lines import Line2D

from . import style
from .canvas import Canvas, FigureFile
from .search import SearchAnalysis, reached


class SearchFigures(Canvas):
    """The search chapter's figures, drawn through `Canvas.draw`."""

    def search_history(self, name: str, analysis: SearchAnalysis) -> FigureFile | None:
        """Each search trial's validation accuracy in the order the trials were created: completed ones as
        dots, pruned ones as crosses at the best accuracy they reached, and the best so far as a step line."""
        values = [(i + 1, t.state, reached(t)) for i, t in enumerate(analysis.trials)]
        points = [(i, state, 100 * v) for i, state, v in values if v is not None]
        if not points:
            return None
        w = self.w
        fig, axes = self._figure(style.FULL_WIDTH, 3.8)
        ax = axes[0, 0]
        done = [(i, v) for i, state, v in points if state == "COMPLETE"]
        pruned = [(i, v) for i, state, v in points if state == "PRUNED"]
        if done:
            ax.scatter(*zip(*done), color=style.color(0), zorder=3)
        if pruned:
            ax.scatter(*zip(*pruned), color=style.color(1), marker="x", zorder=3)
        best, steps = float("-inf"), []
        for i, v in done:
            best = max(best, v)
            steps.append((i, best))
        if steps:
            steps.append((points[-1][0], best))  # held to the last trial drawn
            ax.step(*zip(*steps), where="post", color="black", linewidth=1.2)
        handles = [
            (Line2D([], [], color=style.color(0), marker="o", linestyle="none"), w["state_complete"]),
            (Line2D([], [], color=style.color(1), marker="x", linestyle="none"), w["state_pruned"]),
            (Line2D([], [], color="black"), w["best_so_far"]),
        ]
        ax.legend(*zip(*handles), loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
        ax.set_xlabel(w["search_trial"])
        ax.set_ylabel(f"{w['val_acc']} (%)")
        ax.set_title(f"{name}: {w['search_history']}")
        return self._save(fig, f"{name}-search", f"{name}: {w['search_history_caption']}")

    def importances(self, name: str, values: dict[str, float]) -> FigureFile | None:
        """fANOVA importance of each searched setting, largest first."""
        if not values:
            return None
        w = self.w
        ranked = sorted(values.items(), key=lambda kv: -kv[1])
        fig, axes = self._figure(style.HALF_WIDTH, 0.45 * len(ranked) + 1.4)
        ax = axes[0, 0]
        ax.barh(range(len(ranked)), [v for _, v in ranked], color=style.color(2))
        ax.set_yticks(range(len(ranked)), [w.param(k) for k, _ in ranked])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(w["importance"])
        ax.set_title(f"{name}: {w['importance']}")
        return self._save(fig, f"{name}-importance", f"{name}: {w['importance_caption']}")
