"""One document model, two renderings: report.md (figures as files next to it) and a
self-contained report.html (figures inlined as data URIs, CSS inline, no script, no font or
anything else fetched from the network), so the HTML opens anywhere, offline, as one file.
"""

from __future__ import annotations

import base64
import html
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .canvas import FigureFile


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    """A list; an item that is itself Bullets is nested under the item before it."""

    items: Sequence[str | Bullets]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str | None = None

    def frame(self) -> pd.DataFrame:
        """The table as a pandas DataFrame (for a notebook): one column per header, the cells as the report
        prints them (intervals, "–" for a missing value), the caption in `attrs["caption"]`."""
        frame = pd.DataFrame([list(row) for row in self.rows], columns=list(self.headers), dtype=object)
        frame.attrs["caption"] = self.caption
        return frame


@dataclass
class Image:
    figure: FigureFile


@dataclass
class Code:
    text: str


Block = Para | Bullets | Table | Image | Code


@dataclass
class Section:
    key: str  # stable anchor, the same in every language
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block | None) -> Section:
        self.blocks += [b for b in blocks if b is not None]
        return self


@dataclass
class Document:
    title: str
    lang: str
    sections: list[Section]
    subtitle: str = ""


# ---------------------------------------------------------------------- markdown
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_bullets(bullets: Bullets, indent: str = "") -> str:
    return "\n".join(
        _md_bullets(item, indent + "  ") if isinstance(item, Bullets) else f"{indent}- {item}" for item in bullets.items
    )


def _md_block(block: Block, base: Path) -> str:
    if isinstance(block, Para):
        return block.text
    if isinstance(block, Bullets):
        return _md_bullets(block)
    if isinstance(block, Code):
        return f"```\n{block.text}\n```"
    if isinstance(block, Image):
        path = Path(os.path.relpath(block.figure.png, base)).as_posix()
        svg = Path(os.path.relpath(block.figure.svg, base)).as_posix()
        return f"![{block.figure.caption}]({path})\n\n*{block.figure.caption}* ([SVG]({svg}))"
    lines = ["| " + " | ".join(map(_md_cell, block.headers)) + " |", "|" + "---|" * len(block.headers)]
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block.rows]
    return (f"*{block.caption}*\n\n" if block.caption else "") + "\n".join(lines)


def to_markdown(doc: Document, base: Path) -> str:
    """Markdown with figure links relative to `base` (the folder report.md is written to)."""
    parts = [f"# {doc.title}", doc.subtitle] if doc.subtitle else [f"# {doc.title}"]
    for section in doc.sections:
        parts.append(f"## {section.title}")
        parts += [_md_block(b, base) for b in section.blocks]
    return "\n\n".join(parts) + "\n"


# -------------------------------------------------------------------------- html
# CJK text may break between any two characters: keep-all breaks it only where Latin text would break (a
# one-word cell such as 体育 stays whole), short cells never wrap, and a wide table scrolls sideways.
CSS = """
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "DejaVu Sans", Arial, sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; }
h1 { border-bottom: 2px solid #333; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
.table { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.45em; text-align: left; vertical-align: top;
         word-break: keep-all; overflow-wrap: break-word; }
.short { white-space: nowrap; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
li > ul { margin: 0.3em 0; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; }
figcaption { font-style: italic; color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
code { background: #f3f3f3; padding: 0 0.2em; overflow-wrap: anywhere; }
pre code { background: none; padding: 0; }
nav ol { columns: 2; } .caption { font-style: italic; color: #555; }
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _html_block(block: Block) -> str:
    esc = html.escape
    if isinstance(block, Para):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return _html_bullets(block)
    if isinstance(block, Code):
        return f"<pre><code>{esc(block.text)}</code></pre>"
    if isinstance(block, Image):
        caption = esc(block.figure.caption)
        return (
            f'<figure><img src="{_data_uri(block.figure.png)}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    head = "".join(_html_cell("th", h) for h in block.headers)
    body = "".join("<tr>" + "".join(_html_cell("td", c) for c in row) + "</tr>" for row in block.rows)
    caption = f'<p class="caption">{esc(block.caption)}</p>' if block.caption else ""
    return f'{caption}<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


SHORT_CELL = 16  # columns (a CJK character takes two): a number with its interval, a class; kept on one line


def width(text: str) -> int:
    """Columns `text` takes in a monospaced view: two for a wide (CJK) character, one for the others."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _html_cell(tag: str, text: object) -> str:
    """A header wraps where it must; a short body cell never."""
    text = str(text)
    short = ' class="short"' if tag == "td" and width(text) <= SHORT_CELL else ""
    return f"<{tag}{short}>{html.escape(text)}</{tag}>"


def _inline(text: str) -> str:
    """Escaped text with `code` spans (commands, flags, spec lines) set as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html_bullets(bullets: Bullets) -> str:
    """<ul>; a nested Bullets goes inside the <li> of the item before it."""
    items: list[str] = []
    for item in bullets.items:
        if isinstance(item, Bullets) and items:
            items[-1] = items[-1].removesuffix("</li>") + _html_bullets(item) + "</li>"
        else:
            items.append(_html_bullets(item) if isinstance(item, Bullets) else f"<li>{_inline(item)}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def section_html(section: Section) -> str:
    """One section as an HTML fragment (for the report, and for display in a notebook)."""
    return (
        f'<section id="{section.key}"><h2>{html.escape(section.title)}</h2>'
        + "\n".join(_html_block(b) for b in section.blocks)
        + "</section>"
    )


def to_html(doc: Document) -> str:
    lang = "zh-CN" if doc.lang == "zh" else "en"
    nav = "".join(f'<li><a href="#{s.key}">{html.escape(s.title)}</a></li>' for s in doc.sections)
    subtitle = f"<p>{html.escape(doc.subtitle)}</p>" if doc.subtitle else ""
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,">'  # no favicon request: the page fetches nothing
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(doc.title)}</h1>{subtitle}<nav><ol>{nav}</ol></nav>\n"
        + "\n".join(section_html(s) for s in doc.sections)
        + "</body></html>\n"
    )
