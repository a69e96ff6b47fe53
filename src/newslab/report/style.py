"""The one style of every report figure: a colour-blind-safe palette, sizes that read at 100% zoom.

The HTML report inlines each PNG in a column 1068 px wide (render.CSS: max-width 1100px, 1em
padding); at DPI 110 a figure FULL_WIDTH inches wide fills it without being scaled down, so a
10 pt label is drawn at about 15 px, the size of the page's own text. `rc()` is applied by
`Plotter.draw` around every figure (the language's font settings go on top of it).
"""

from __future__ import annotations

import seaborn as sns
from cycler import cycler

# Okabe & Ito's colour-blind-safe palette without its yellow (too pale on white), lower-case as
# matplotlib's to_hex writes colours back; series take it in order
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#000000")
REFERENCE = "#999999"  # what the data is compared with (an ablation's baseline), drawn behind it
MARKERS = ("o", "s", "D", "^", "v", "P", "X")
LINESTYLES = ("-", "--", ":", "-.")
VERDICT_COLORS = {"significant": PALETTE[3], "inconclusive": "#8c8c8c", "untested": "#d9d9d9"}
BAND_ALPHA = 0.18  # a spread band under its mean line

DPI = 110
FULL_WIDTH = 9.6  # inches: 1056 px at DPI, inside the page's 1068 px column
HALF_WIDTH = 6.4  # a figure with one small panel: 704 px


def color(i: int) -> str:
    """The i-th series' colour (the palette repeats past its seven colours)."""
    return PALETTE[i % len(PALETTE)]


def rc() -> dict:
    """matplotlib rc settings: seaborn's whitegrid look, the palette, readable font sizes."""
    return {
        **sns.axes_style("whitegrid"),
        "axes.prop_cycle": cycler(color=PALETTE),
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "legend.title_fontsize": 9,
        "figure.titlesize": 12,
        "lines.linewidth": 1.8,
        "lines.markersize": 6,
    }
