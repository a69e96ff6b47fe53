"""The Chinese report is Chinese: apart from code, paths, numbers, names of studies and packages and a
short list of technical terms, no English word reaches it; and its tables do not break CJK words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newslab.report import effects as fx
from newslab.report import write_report
from newslab.report.render import CSS, SHORT_CELL, Document, Para, Section, _html_cell, to_html, width
from newslab.report.sections import PACKAGES, environment
from report_synthetic import ablations, grid

# terms a Chinese technical text keeps in Latin letters: units, acronyms, method names, file kinds
ALLOWED = {
    *(word for package in PACKAGES for word in re.findall(r"[A-Za-z]+", package)),  # scikit-learn: two words
    *("Python", "CPU", "GPU", "F1", "md5", "sha256", "SVG", "CI", "ANOVA", "Bonferroni", "Satterthwaite"),
    *("UNK", "PAD", "L", "log", "p", "n", "t", "csv", "yaml", "txt", "cpu", "cuda", "word"),
    *("INDEX", "NAME", "LxHy", "x", "y"),  # metavars of flags, the layer/head notation
    *("TF", "IDF", "SVM", "C", "Transformer"),  # the classical baselines: method names and their parameter
    *("RoPE", "ALiBi", "i", "j", "k", "BERT"),  # method names, the offset j − i, the lr rule's batch^k
    *(
        "TPE",
        "CMA",
        "ES",
        "Hyperband",
        "fANOVA",
    ),  # Optuna's samplers, pruners, importance evaluator  # positional encodings, offsets j − i, the lr rule batch^k
}


def english_words(markdown: str, data: str = "") -> set[str]:
    """ASCII words of `markdown` that are not code, a path, a flag, an identifier, a number, or in `data`
    (what the machine and the studies are called: values, not words of the report)."""
    text = re.sub(r"```.*?```|`[^`]*`|!\[[^\]]*\]\([^)]*\)|\]\([^)]*\)", " ", markdown, flags=re.S)
    tokens = [t for t in re.split(r"[\s，。；：、（）()\[\]“”\"'|*,;:]+", text) if t]
    plain = [t for t in tokens if not re.search(r"[\d/_=.@\\]|--|-\w+-", t)]  # paths, identifiers, numbers
    seen = {w for t in plain for w in re.findall(r"[A-Za-z]{1,}", t)}
    known = ALLOWED | set(re.findall(r"[A-Za-z]+", data))
    return {w for w in seen if w not in known and w.lower() not in known}


@pytest.fixture(scope="module")
def studies():
    return grid("g", lambda p, n: 0.80 + 0.04 * (p["embed_dim"] == 64)), ablations("a", {"no_pe": 0.05})


def test_the_chinese_report_has_no_english_left(studies, tmp_path: Path) -> None:
    grid_result, ablation_result = studies
    pick = fx.selected(grid_result)
    assert pick is not None
    for trial in pick.estimate.trials:  # recorded on another machine: its folder is not here
        trial.run_dir = str(tmp_path / "elsewhere" / f"trial-{trial.number}")
    try:
        files = write_report([grid_result, ablation_result], tmp_path / "zh", lang="zh", log=None)
    finally:
        for trial in pick.estimate.trials:
            trial.run_dir = None
    markdown = files.markdown.read_text()
    assert "不在这台机器上" in markdown and "not on this machine" not in markdown
    data = " ".join(str(v) for v in environment().values()) + " g a"
    assert english_words(markdown, data) == set()


def test_the_checker_finds_english_words(studies) -> None:
    """The check above can fail: the English report is full of the words it looks for."""
    assert {"seed", "trained", "baseline"} & english_words("seed 1000, trained on cpu; baseline 87%")
    assert english_words("`newslab study run x.yaml` /tmp/a_b --out-dir 种子 1000 torch") == set()


def test_cjk_table_cells_never_break_inside_a_word() -> None:
    """Chromium breaks CJK text between any two characters; short cells keep theirs on one line and wide
    tables scroll instead of squeezing columns (tests/test_report.py looks at the page in a browser)."""
    rules = {m.group(1).strip(): m.group(2) for m in re.finditer(r"([^{}]+)\{([^}]*)\}", CSS)}
    cells = next(body for selector, body in rules.items() if "th" in selector.split(",")[0] and "td" in selector)
    assert "word-break: keep-all" in cells
    assert any("overflow-x: auto" in body for selector, body in rules.items() if ".table" in selector)


ASCII = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
HAN = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=12)


@given(ASCII, HAN, st.text(max_size=20))
def test_a_body_cell_stays_on_one_line_exactly_when_it_is_short(latin: str, han: str, other: str) -> None:
    assert width(latin) == len(latin) and width(han) == 2 * len(han)  # a Han character takes two columns
    text = latin + han + other
    assert width(text) == width(latin) + width(han) + width(other) and len(text) <= width(text) <= 2 * len(text)
    assert ('class="short"' in _html_cell("td", text)) == (width(text) <= SHORT_CELL)
    assert 'class="short"' not in _html_cell("th", text)  # headers wrap at their spaces


def test_code_spans_are_set_as_code_and_escaped() -> None:
    html = to_html(Document("t", "zh", [Section("s", "S", [Para("运行 `newslab study run <spec>` 即可")])]))
    assert "运行 <code>newslab study run &lt;spec&gt;</code> 即可" in html
