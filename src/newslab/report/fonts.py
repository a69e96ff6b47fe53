"""A CJK font for Chinese figure labels, found on this system through matplotlib's font manager.

matplotlib's default font (DejaVu Sans) has no Chinese glyphs: every label turns into boxes,
which is what happened to the original manual's plots. A font is accepted only if its
character map covers the text actually drawn (checked with FreeType, not guessed from names).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

# A sample of the characters the Chinese report draws; the final check covers the real labels.
CJK_SAMPLE = "验证准确率学习率嵌入维度注意力头数消融基线混淆矩阵真实预测轮次损失层熵距离"
# Tried first when present: common, complete Simplified-Chinese sans fonts (Debian: fonts-noto-cjk,
# fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-uming); any other covering font is accepted after.
PREFERRED = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
)

# Fonts whose character map claims every code point but whose glyphs are placeholder boxes
# (matplotlib ships "Last Resort" as its final fallback): a charmap check must skip them.
PLACEHOLDER_FONTS = ("Last Resort",)


@dataclass(frozen=True)
class Font:
    name: str
    path: str


@functools.cache
def charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):  # an unreadable or unsupported font file
        return frozenset()


def missing_characters(path: str, text: str) -> set[str]:
    """Characters of `text` (whitespace aside) that the font at `path` has no glyph for."""
    codes = charmap(path)
    return {c for c in text if not c.isspace() and ord(c) not in codes}


@functools.cache
def find_cjk_font(sample: str = CJK_SAMPLE) -> Font | None:
    """The first installed font covering `sample`, preferred names first; None if there is none."""
    from matplotlib import font_manager

    def covering(entries):
        entries = [e for e in entries if not e.name.startswith(PLACEHOLDER_FONTS)]
        ranked = sorted(entries, key=lambda e: PREFERRED.index(e.name) if e.name in PREFERRED else len(PREFERRED))
        for entry in ranked:
            if not missing_characters(entry.fname, sample):
                return Font(entry.name, entry.fname)
        return None

    manager = font_manager.fontManager
    found = covering(manager.ttflist)
    if found:
        return found
    # matplotlib caches its font list once; a font installed after that (e.g. by apt in CI) is
    # missing from it until it is added by path.
    known = {entry.fname for entry in manager.ttflist}
    for path in font_manager.findSystemFonts():
        if path not in known and not missing_characters(path, sample):
            manager.addfont(path)
            known.add(path)
    return covering(manager.ttflist)


def figure_rc(lang: str) -> tuple[dict, str]:
    """matplotlib rc settings for figures in `lang`, and the language figures will really use:
    "en" when Chinese was asked for but no CJK font exists (labels readable, never boxes)."""
    rc = {"svg.fonttype": "path", "figure.dpi": 110}  # SVG glyphs as paths: no font needed to view
    if lang != "zh":
        return rc, lang
    font = find_cjk_font()
    if font is None:
        warnings.warn(
            "--lang zh: no CJK font found (install fonts-noto-cjk or fonts-wqy-microhei); "
            "figure labels fall back to English",
            RuntimeWarning,
            stacklevel=2,
        )
        return rc, "en"
    # CJK fonts often lack U+2212 (the typographic minus): use '-' so negative ticks are not boxes.
    return {
        **rc,
        "font.family": "sans-serif",
        "font.sans-serif": [font.name, "DejaVu Sans"],
        "axes.unicode_minus": False,
    }, "zh"
