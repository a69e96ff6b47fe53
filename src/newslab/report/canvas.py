"""What every report figure is drawn on: a `Canvas` makes a matplotlib Figure, saves it as PNG and SVG
(a `FigureFile`), and draws each figure method inside the report's style and its language's fonts.

Figures are built on `matplotlib.figure.Figure` objects, never through pyplot: no global backend or
state is touched, so a notebook's inline plotting keeps working and nothing needs a display.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import matplotlib
from matplotlib.figure import Figure
from matplotlib.text import Text

from . import style
from .fonts import figure_rc
from .i18n import Words


@dataclass
class FigureFile:
    name: str
    png: Path
    svg: Path
    caption: str
    figure: Figure | None = field(default=None, repr=False, compare=False)  # what was drawn, to read back


# what a figure method returns: FigureFile, or FigureFile | None for one that may have nothing to draw
Drawn = TypeVar("Drawn", bound="FigureFile | None")


class Canvas:
    """Draws and saves figures into `out_dir` with the labels of `lang`.

    A figure is a method of a subclass returning a FigureFile (or None when there is nothing to draw);
    it is drawn through `draw`, which applies the style and this language's fonts:
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

    def _figure(self, width: float, height: float, nrows: int = 1, ncols: int = 1, **share):
        fig = Figure(figsize=(width, height), layout="constrained")
        return fig, fig.subplots(nrows, ncols, squeeze=False, **share)

    def _save(self, fig: Figure, name: str, caption: str) -> FigureFile:
        png, svg = self.out_dir / f"{name}.png", self.out_dir / f"{name}.svg"
        fig.savefig(png)
        fig.savefig(svg)
        self.drawn_text.update(t.get_text() for t in fig.findobj(Text) if t.get_text())
        return FigureFile(name, png, svg, caption, fig)

    def draw(self, figure: Callable[..., Drawn], *args, **kwargs) -> Drawn:
        """Call `figure` (one of the figure methods, bound to this canvas) with `args`
        inside the report's style and this language's rc settings."""
        # the style sets seaborn's font list: the language's rc settings must come after it
        with matplotlib.rc_context({**style.rc(), **self.rc}):
            return figure(*args, **kwargs)
