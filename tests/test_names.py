"""One registry of names for people (newslab.names): every setting and ablation the report or
`newslab study results` can print is named in English and Chinese, and both say the same name."""

from __future__ import annotations

import re

import pytest

from newslab import names
from newslab.config import ABLATIONS, BASELINE, settable_in_studies
from newslab.positions import POSITIONAL_ENCODINGS
from newslab.report import tables
from newslab.report.i18n import Words
from newslab.study.results import format_results
from report_synthetic import ablations, grid

CJK = re.compile(r"[\u4e00-\u9fff]")
PRINTABLE = [*settable_in_studies(), "ablation", "seed"]  # what a spec can vary, and what a row names


@pytest.mark.parametrize("name", PRINTABLE)
def test_every_setting_a_study_can_vary_has_an_english_and_a_chinese_name(name: str) -> None:
    en, zh = names.parameter(name, "en"), names.parameter(name, "zh")
    assert en and not CJK.search(en) and CJK.search(zh) and en != zh


@pytest.mark.parametrize("name", [BASELINE, *ABLATIONS])
def test_every_ablation_has_an_english_and_a_chinese_name(name: str) -> None:
    en, zh = names.ablation(name, "en"), names.ablation(name, "zh")
    assert en != name and not CJK.search(en) and CJK.search(zh)


@pytest.mark.parametrize("name", sorted(POSITIONAL_ENCODINGS))
def test_every_positional_encoding_has_an_english_and_a_chinese_name(name: str) -> None:
    en, zh = names.value("pos_encoding", name, "en"), names.value("pos_encoding", name, "zh")
    assert set(names.ENCODINGS) == set(POSITIONAL_ENCODINGS) and en and not CJK.search(en) and CJK.search(zh)


def test_combined_ablations_join_their_names_and_unknown_names_stay_as_given() -> None:
    assert names.ablation("no_pe+no_ffn") == "no positional encoding + no FFN"
    assert names.value("ablation", ["no_pe", "no_ffn"], "zh") == "无位置编码 + 无前馈网络"
    assert names.ablation("from_the_future") == "from_the_future" and names.parameter("mystery") == "mystery"
    assert [names.state(s, "zh") for s in ("complete", "running", "failed", "waiting")] == [
        "完成",
        "运行中",
        "失败",
        "等待",
    ]


def _markdown_column(text: str, header: str) -> list[str]:
    lines = [line.strip("|").split(" | ") for line in text.splitlines()]
    rows = [[cell.strip() for cell in line] for line in lines]
    at = rows[0].index(header)
    return [row[at] for row in rows[2:]]


@pytest.fixture(scope="module")
def ablation_study():
    return ablations("a", {"no_pe": 0.05, "no_ffn": 0.02})


@pytest.mark.parametrize("name", [BASELINE, *ABLATIONS])
def test_study_results_and_the_report_call_each_ablation_the_same(name: str, ablation_study) -> None:
    result = ablation_study
    shown = _markdown_column(format_results(result, "markdown"), names.parameter("ablation"))
    report = tables.results_table(result, Words("en"))
    in_report = {row[0] for row in report.rows}
    assert names.ablation(name) in shown and names.ablation(name) in in_report
    assert name not in shown  # the raw name stays in csv and json
    raw = format_results(result, "csv").splitlines()
    assert any(line.startswith(f"{name},") for line in raw[1:])


def test_study_results_and_the_report_name_the_parameters_alike() -> None:
    result = grid("g", lambda p, n: 0.8)
    markdown = format_results(result, "markdown")
    headers = [cell.strip() for cell in markdown.splitlines()[0].strip("|").split(" | ")]
    report = tables.results_table(result, Words("en"))
    params = [*result.spec.parameter_names("scientific"), *result.spec.parameter_names("nuisance")]
    assert headers[: len(params)] == report.headers[: len(params)] == [names.parameter(p) for p in params]
    assert "heads" in headers and "num_heads" not in headers
