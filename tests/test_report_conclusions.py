"""Conclusions follow the data: hand-built result sets with known effects (no training)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_synthetic import TEST_LABELS, ablations, grid, study

from newslab.report import write_report
from newslab.report.conclusions import conclusions
from newslab.report.effects import factor_effects


def by_subject(claims, topic: str) -> dict:
    return {c.subject: c for c in claims if c.topic == topic}


def dims_matter(p, n) -> float:
    return 0.80 + (0.05 if p["embed_dim"] == 64 else 0.0)


def heads_matter(p, n) -> float:
    return 0.80 + (0.05 if p["num_heads"] == 4 else 0.0)


def test_conclusions_say_which_of_dims_and_heads_matters() -> None:
    dims = conclusions([grid("g", dims_matter)], TEST_LABELS)
    heads = conclusions([grid("g", heads_matter)], TEST_LABELS)
    assert by_subject(dims, "factor")["embed_dim"].verdict == "significant"
    assert by_subject(dims, "factor")["num_heads"].verdict == "noise"
    assert by_subject(heads, "factor")["embed_dim"].verdict == "noise"
    assert by_subject(heads, "factor")["num_heads"].verdict == "significant"
    assert "embed_dim" in by_subject(dims, "relation") and "num_heads" in by_subject(heads, "relation")
    assert "within noise" in by_subject(dims, "factor")["num_heads"].text
    assert "Welch's t over seeds" in by_subject(dims, "factor")["embed_dim"].text
    assert "embed_dim 64" in next(c for c in dims if c.topic == "best").text
    assert "heads 4" in next(c for c in heads if c.topic == "best").text


def test_lr_is_described_per_model_size() -> None:
    # lr 3e-3 helps the small model a lot and the large one not at all
    result = grid("g", lambda p, n: 0.80 + (0.06 if p["embed_dim"] == 32 and p["lr"] == 3e-3 else 0.0)
                  + (0.08 if p["embed_dim"] == 64 else 0.0))
    claims = [c for c in conclusions([result], TEST_LABELS) if c.topic == "lr" and c.subject != "all"]
    small = [c for c in claims if "embed_dim 32" in c.subject]
    large = [c for c in claims if "embed_dim 64" in c.subject]
    assert small and all(c.verdict == "significant" and "lr 0.003 is best" in c.text for c in small)
    assert large and all(c.verdict == "noise" for c in large)


def test_ablation_ranking_separates_real_effects_from_noise() -> None:
    strong = conclusions([ablations("a", {"no_pe": 0.08, "no_ffn": 0.05})], TEST_LABELS)
    flat = conclusions([ablations("a", {})], TEST_LABELS)
    assert by_subject(strong, "ablation")["no_pe"].verdict == "significant"
    assert by_subject(strong, "ablation")["no_ffn"].verdict == "significant"
    assert by_subject(strong, "ablation")["no_dropout"].verdict == "noise"
    ranked = [c.subject for c in strong if c.topic == "ablation" and c.subject not in ("ranking", "summary")]
    assert ranked[:2] == ["no_pe", "no_ffn"]  # most harmful first
    assert all(c.verdict == "noise" for c in by_subject(flat, "ablation").values() if c.verdict != "info")
    assert "significantly hurts for: nothing" in by_subject(flat, "ablation")["summary"].text
    assert "Holm-adjusted" in by_subject(strong, "ablation")["no_pe"].text


def test_joint_factors_are_not_separated() -> None:
    result = study("seedlike", {"embed_dim,num_heads": [[32, 2], [64, 4]], "lr": [1e-3]},
                   lambda p, n: 0.8 + 0.02 * (p["embed_dim"] == 64))
    factor = by_subject(conclusions([result], TEST_LABELS), "factor")["embed_dim,num_heads"]
    assert "vary together" in factor.text and "64/4 is best" in factor.text


def test_a_single_seed_says_what_cannot_be_concluded(tmp_path: Path) -> None:
    result = grid("one-seed", dims_matter, seeds=1)
    claims = conclusions([result], TEST_LABELS)
    caveat = by_subject(claims, "caveat")["one-seed"]
    assert caveat.verdict == "untested" and "cannot be tested over seeds" in caveat.text
    assert all(e.test is None for e in factor_effects(result))
    assert by_subject(claims, "factor")["embed_dim"].verdict == "untested"
    # pairwise claims fall back to McNemar on the single runs' test predictions
    assert "McNemar" in next(c for c in claims if c.topic == "best").text
    files = write_report([result], tmp_path / "report", log=None)
    for text in (files.markdown.read_text(), files.html.read_text()):
        assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    assert "| – |" in files.markdown.read_text()  # no interval with one seed, shown as a dash


def test_failed_and_empty_studies_give_a_report_that_says_so(tmp_path: Path) -> None:
    failed = study("all-failed", {"lr": [1e-3, 3e-3]}, lambda p, n: 0.8, seeds=2, failed=4)
    failed.trials = [t for t in failed.trials if t.state == "FAIL"]
    empty = study("empty", {"lr": [1e-3]}, lambda p, n: 0.8, seeds=1)
    empty.trials = []
    files = write_report([failed, empty], tmp_path / "report", log=None)
    claims = by_subject(files.claims, "caveat")
    assert "nothing can be concluded" in claims["all-failed"].text and "loss became nan" in claims["all-failed"].text
    assert "nothing can be concluded" in claims["empty"].text
    markdown = files.markdown.read_text()
    assert "No completed trial: all-failed" in markdown and "TrainingDiverged" in markdown
    assert "Not available: no study has a completed trial" in markdown
    assert not re.search(r"\bnan\b(?! at epoch)", markdown, re.IGNORECASE)


@pytest.mark.parametrize("lang, words", [("en", ["within noise", "Best configuration"]),
                                         ("zh", ["在噪声范围内", "最佳配置"])])
def test_conclusions_are_written_in_the_requested_language(lang: str, words: list[str]) -> None:
    text = " ".join(c.text for c in conclusions([grid("g", dims_matter)], TEST_LABELS, lang))
    assert all(word in text for word in words)
    assert ("Best configuration" in text) == (lang == "en")
