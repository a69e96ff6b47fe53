"""One document model, two renderings: report.md (figures as files next to it) and a
self-contained report.html (figures inlined as data URIs, CSS inline, no script, no font or
anything else fetched from the network), so the HTML opens anywhere, offline, as one file.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from .plots import FigureFile


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str | None = None


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


def _md_block(block: Block, base: Path) -> str:
    if isinstance(block, Para):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
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
CSS = """
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "DejaVu Sans", Arial, sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; }
h1 { border-bottom: 2px solid #333; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; }
figcaption { font-style: italic; color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
nav ol { columns: 2; } .caption { font-style: italic; color: #555; }
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _html_block(block: Block) -> str:
    esc = html.escape
    if isinstance(block, Para):
        return f"<p>{esc(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Code):
        return f"<pre><code>{esc(block.text)}</code></pre>"
    if isinstance(block, Image):
        caption = esc(block.figure.caption)
        return (
            f'<figure><img src="{_data_uri(block.figure.png)}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    head = "".join(f"<th>{esc(str(h))}</th>" for h in block.headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in block.rows)
    caption = f'<p class="caption">{esc(block.caption)}</p>' if block.caption else ""
    return f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
