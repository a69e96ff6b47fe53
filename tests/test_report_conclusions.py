"""Conclusions follow the data: hand-built result sets with known effects (no training)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newslab.report import context, write_report
from newslab.report.conclusions import conclusions
from newslab.report.effects import factor_effects, lr_per_size
from newslab.report.i18n import Words
from newslab.report.render import Para, Table
from newslab.report.sections import ablation_section
from report_synthetic import TEST_LABELS, ablations, grid, study


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
    result = grid(
        "g",
        lambda p, n: (
            0.80 + (0.06 if p["embed_dim"] == 32 and p["lr"] == 3e-3 else 0.0) + (0.08 if p["embed_dim"] == 64 else 0.0)
        ),
    )
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
    assert "Bonferroni-adjusted" in by_subject(strong, "ablation")["no_pe"].text


def test_joint_factors_are_not_separated() -> None:
    result = study(
        "seedlike",
        {"embed_dim,num_heads": [[32, 2], [64, 4]], "lr": [1e-3]},
        lambda p, n: 0.8 + 0.02 * (p["embed_dim"] == 64),
    )
    factor = by_subject(conclusions([result], TEST_LABELS), "factor")["embed_dim,num_heads"]
    assert "vary together" in factor.text and "64/4 is best" in factor.text
    relation = by_subject(conclusions([result], TEST_LABELS), "relation")
    assert list(relation) == ["joint"] and relation["joint"].verdict == "untested"
    assert "varied together in this grid (32/2, 64/4), so their effects cannot be separated" in relation["joint"].text


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
    table = next(b for b in files.section("results").blocks if isinstance(b, Table))
    selected = next(row for row in table.rows if row[-1] == "★")
    assert selected[table.headers.index(Words().ci(0.95))] == "–"  # no interval with one seed, shown as a dash
    assert "| " + " | ".join(selected) + " |" in files.markdown.read_text()


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


@pytest.mark.parametrize(
    "lang, words", [("en", ["within noise", "Best configuration"]), ("zh", ["在噪声范围内", "最佳配置"])]
)
def test_conclusions_are_written_in_the_requested_language(lang: str, words: list[str]) -> None:
    text = " ".join(c.text for c in conclusions([grid("g", dims_matter)], TEST_LABELS, lang))
    assert all(word in text for word in words)
    assert ("Best configuration" in text) == (lang == "en")


def test_lr_and_factor_tests_are_adjusted_for_every_pair_they_pick_from() -> None:
    result = study("g3", {"embed_dim": [32, 64], "num_heads": [2, 4], "lr": [1e-3, 3e-3, 1e-2]}, dims_matter)
    per_size = lr_per_size(result, TEST_LABELS)
    assert len(per_size) == 4
    for e in per_size:  # best vs worst of 3 lrs at 4 sizes: one of 4 x 3 pairs
        assert e.comparison.family == 12
        for test in (e.comparison.over_seeds, e.comparison.on_test):
            assert test.p_adjusted == pytest.approx(min(1.0, 12 * test.p))
    effects = factor_effects(result)
    assert len(effects) == 3  # pairs of values: embed_dim 1, heads 1, lr 3
    assert all(e.test.p_adjusted == pytest.approx(min(1.0, 5 * e.test.p)) for e in effects)


def test_the_same_best_lr_everywhere_is_qualified_by_its_tests() -> None:
    def claim(gain: float):
        result = study(
            "lr", {"embed_dim": [32, 64], "lr": [1e-3, 3e-3]}, lambda p, n: 0.8 + gain * (p["lr"] == 1e-3), noise=0.001
        )
        return by_subject(conclusions([result], TEST_LABELS), "lr")["all"]

    slight, strong = claim(0.0015), claim(0.05)
    assert slight.verdict == "noise" and slight.text.startswith(
        "The best lr is 0.001 at every model size (within noise: no lr difference at any size is beyond"
    )
    assert strong.verdict == "info" and strong.text == "The best lr is 0.001 at every model size."


def test_which_of_dims_and_heads_matters_more_is_an_untested_point_estimate() -> None:
    result = grid("g", lambda p, n: 0.80 + 0.05 * (p["embed_dim"] == 64) + 0.02 * (p["num_heads"] == 4))
    both = by_subject(conclusions([result], TEST_LABELS), "relation")["both"]
    assert re.search(
        r"embed_dim has the larger point estimate \(embed_dim \+\d\.\d\d pts, heads \+\d\.\d\d pts\), "
        r"a difference that was not itself tested",
        both.text,
    )


def without(result, ablation: str, keep_seeds: int = 0):
    """The study with the trials of one ablation removed (or cut to `keep_seeds` seeds, without predictions)."""
    result.trials = [t for t in result.trials if t.point["ablation"] != ablation or t.seed < keep_seeds]
    for t in result.trials:
        if t.point["ablation"] == ablation:
            t.test_predictions = None
    return result


def test_ablation_summary_lists_what_could_not_be_tested() -> None:
    result = without(ablations("a", {"no_pe": 0.08}), "single_head", keep_seeds=1)  # one seed, no predictions
    claims = by_subject(conclusions([result], TEST_LABELS), "ablation")
    assert claims["single_head"].verdict == "untested"
    assert "significantly hurts for: no positional encoding" in claims["summary"].text
    assert claims["summary"].text.endswith("; cannot be tested for: single head.")
    untested = conclusions([ablations("a", {"no_pe": 0.08}, seeds=1)], None)  # one seed and no test labels
    assert "summary" not in by_subject(untested, "ablation")
    caveat = by_subject(untested, "caveat")["summary"]
    assert caveat.verdict == "untested" and caveat.text.startswith("No ablation of a could be tested")
    assert not any("hurts for: nothing" in c.text for c in untested)


def test_missing_ablation_variants_are_reported_not_dropped(tmp_path: Path) -> None:
    result = without(ablations("a", {"no_pe": 0.08}), "no_ffn")
    claims = by_subject(conclusions([result], TEST_LABELS), "ablation")
    assert claims["no_ffn"].verdict == "untested" and "no completed trial" in claims["no_ffn"].text
    assert "across the 5 compared ablations" in claims["ranking"].text
    assert claims["summary"].text.endswith("; cannot be tested for: no FFN.")
    table = next(b for b in ablation_section(context([result], tmp_path)).blocks if isinstance(b, Table))
    assert table.rows[-1][:3] == ["no FFN", "–", "0"] and table.rows[-1][-1] == "no completed trial"
    assert len(table.rows) == 7 and "Bonferroni-adjusted over the 5 compared ablations" in table.caption


def test_no_completed_baseline_differs_from_no_completed_variant(tmp_path: Path) -> None:
    no_base = without(ablations("no-base", {}), "none")
    only_base = ablations("only-base", {})
    only_base.trials = [t for t in only_base.trials if t.point["ablation"] == "none"]
    claims = conclusions([no_base, only_base], TEST_LABELS)
    caveats = by_subject(claims, "caveat")
    assert "has no completed baseline" in caveats["no-base"].text
    assert "has no completed ablation variant (only the baseline finished)" in caveats["only-base"].text
    assert {c.subject for c in claims if c.topic == "ablation" and c.verdict == "untested"} == {
        "no_pe",
        "single_head",
        "no_ffn",
        "freeze_emb",
        "no_dropout",
        "clip_grad",
    }  # only-base's six, each named
    section = ablation_section(context([no_base, only_base], tmp_path))
    paras = [b.text for b in section.blocks if isinstance(b, Para)]
    assert any(
        p.startswith("No completed baseline (ablation none), so no ablation can be compared: no-base") for p in paras
    )
    assert any(p.startswith("No completed ablation variant: only the baseline finished: only-base") for p in paras)
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert [row[-1] for row in table.rows] == ["–"] + ["no completed trial"] * 6
