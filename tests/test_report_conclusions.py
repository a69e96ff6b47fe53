"""Conclusions follow the data: hand-built two-stage result sets with known effects (no training)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newslab.report import context, write_report
from newslab.report import effects as fx
from newslab.report.conclusions import claim_bullets, conclusions
from newslab.report.i18n import Words
from newslab.report.render import Bullets, Document, Para, Section, Table, to_html, to_markdown
from newslab.report.sections import ablation_section
from newslab.report.stats import TestResult as Paired
from newslab.report.stats import Untested
from newslab.study import load_spec
from report_synthetic import ablations, grid, study

EN = Words("en")
INTERVAL = r"between [-+]\d+\.\d\d and [-+]\d+\.\d\d pts \((\d+(\.\d+)?)% interval"
DETECTABLE = r"differences smaller than \d+\.\d\d pts could not have been detected \(80% power\)"


def by_subject(claims, topic: str) -> dict:
    return {c.subject: c for c in claims if c.topic == topic}


def dims_matter(p, n) -> float:
    return 0.80 + (0.05 if p["embed_dim"] == 64 else 0.0)


def heads_matter(p, n) -> float:
    return 0.80 + (0.05 if p["num_heads"] == 4 else 0.0)


def span(test: Paired) -> str:
    return EN.span(test.low, test.high)


def test_conclusions_say_which_of_dims_and_heads_matters() -> None:
    dims = conclusions([grid("g", dims_matter)])
    heads = conclusions([grid("g", heads_matter)])
    assert by_subject(dims, "factor")["embed_dim"].verdict == "significant"
    assert by_subject(dims, "factor")["num_heads"].verdict == "inconclusive"
    assert by_subject(heads, "factor")["embed_dim"].verdict == "inconclusive"
    assert by_subject(heads, "factor")["num_heads"].verdict == "significant"
    significant, inconclusive = (
        by_subject(dims, "factor")["embed_dim"].text,
        by_subject(dims, "factor")["num_heads"].text,
    )
    assert re.search(
        r"significant: " + INTERVAL + r", Bonferroni-adjusted over 3 comparisons\), adjusted p", significant
    )
    assert re.search(r"inconclusive: " + INTERVAL + r".*\); " + DETECTABLE, inconclusive)
    assert re.search(DETECTABLE, significant)  # a significant comparison states it too
    relation = by_subject(dims, "relation")["dims_vs_heads"]
    assert relation.verdict == "significant" and relation.text.startswith("embed_dim changes accuracy more")
    assert by_subject(heads, "relation")["dims_vs_heads"].text.startswith("The number of heads changes accuracy more")
    assert "embed_dim 64" in next(c for c in dims if c.topic == "best").text
    assert "heads 4" in next(c for c in heads if c.topic == "best").text


def test_which_of_dims_and_heads_matters_more_is_a_test_of_their_difference() -> None:
    # both significant, equally large: only a test of the difference can say neither is larger
    result = grid("g", lambda p, n: 0.80 + 0.05 * (p["embed_dim"] == 64) + 0.05 * (p["num_heads"] == 4))
    claims = conclusions([result])
    assert {c.verdict for c in by_subject(claims, "factor").values()} == {"significant"}
    effects = {e.key: e for e in fx.factor_effects(result)}
    test = fx.factor_difference(effects["embed_dim"], effects["num_heads"])
    assert isinstance(test, Paired) and test.verdict == "inconclusive"
    relation = by_subject(claims, "relation")["dims_vs_heads"]
    assert relation.verdict == "inconclusive" and relation.text.startswith(
        "Whether embed_dim or the number of heads changes accuracy more is not decided"
    )
    assert span(test) in relation.text and "could not have been detected" in relation.text


def test_lr_is_described_per_model_size() -> None:
    # lr 3e-3 helps the small model a lot and the large one not at all
    result = grid(
        "g",
        lambda p, n: (
            0.80 + (0.06 if p["embed_dim"] == 32 and p["lr"] == 3e-3 else 0.0) + (0.08 if p["embed_dim"] == 64 else 0.0)
        ),
        confirm=5,  # 3 seeds leave the seed term 2 degrees of freedom: a 6-point effect is not always decided
    )
    claims = [c for c in conclusions([result]) if c.topic == "lr" and c.subject != "all"]
    small = [c for c in claims if "embed_dim 32" in c.subject]
    large = [c for c in claims if "embed_dim 64" in c.subject]
    assert small and all(c.verdict == "significant" and "lr 0.003 is best" in c.text for c in small)
    assert large and all(c.verdict == "inconclusive" and "inconclusive: between" in c.text for c in large)
    assert all("on the confirmation runs" in c.text for c in claims)  # lr is scientific here: its points are confirmed


def test_lr_as_nuisance_is_tested_among_the_choices_on_the_selection_runs() -> None:
    result = study(
        "n",
        {"embed_dim": [32, 64]},
        lambda p, n: 0.80 + 0.06 * (n["lr"] == 3e-3),
        nuisance={"lr": [1e-3, 3e-3]},
    )
    per_size = fx.lr_per_size(result)
    assert [e.comparison.stage for e in per_size] == ["select", "select"]
    assert all(t.role == "select" for e in per_size for t in e.comparison.a.trials)
    claims = [c for c in conclusions([result]) if c.topic == "lr" and c.subject != "all"]
    assert len(claims) == 2 and all(c.verdict == "significant" for c in claims)
    assert all("on the selection runs (the runs that chose lr: a test among the choices)" in c.text for c in claims)


def test_ablation_ranking_separates_significant_effects_from_inconclusive_ones() -> None:
    result = ablations("a", {"no_pe": 0.08, "no_ffn": 0.05})
    strong = by_subject(conclusions([result]), "ablation")
    assert strong["no_pe"].verdict == "significant" and strong["no_ffn"].verdict == "significant"
    assert strong["no_dropout"].verdict == "inconclusive"
    ranked = [s for s in strong if s not in ("ranking", "summary")]
    assert ranked[:2] == ["no_pe", "no_ffn"]  # most harmful first
    found = {e.name: e for e in fx.ablation_effects(result).effects}
    base = fx.ablation_effects(result).base
    assert f"against the baseline ({EN.pct(base.val_mean)} over 5 confirmation seeds)" in strong["ranking"].text
    for name, claim in strong.items():
        if claim.verdict == "inconclusive":  # its interval and what could not have been detected; never "no effect"
            test = found[name].comparison.test
            assert "inconclusive" in claim.text and span(test) in claim.text and re.search(DETECTABLE, claim.text)
            assert "no effect" not in claim.text and "noise" not in claim.text
            assert (
                f"{EN.ablation(name)} ({100 * test.low:+.2f} to {100 * test.high:+.2f} pts)" in strong["summary"].text
            )
    assert "Bonferroni-adjusted over 6 comparisons" in strong["no_pe"].text
    assert strong["summary"].text.startswith(
        "Removing or changing a component significantly hurts for: no positional encoding, no FFN; is inconclusive for:"
    )
    flat = by_subject(conclusions([ablations("a", {})]), "ablation")
    assert all(c.verdict == "inconclusive" for s, c in flat.items() if s not in ("ranking", "summary"))
    assert "significantly hurts for: nothing; is inconclusive for:" in flat["summary"].text


def test_joint_factors_are_not_separated_and_say_so_once() -> None:
    result = study(
        "seedlike",
        {"embed_dim,num_heads": [[32, 2], [64, 4]], "lr": [1e-3]},
        lambda p, n: 0.8 + 0.02 * (p["embed_dim"] == 64),
    )
    claims = conclusions([result])
    factor = by_subject(claims, "factor")["embed_dim,num_heads"]
    assert "64/4 (best on the selection runs) against 32/2" in factor.text and "one factor" in factor.text
    assert factor.text.startswith("embed_dim and heads vary together in this grid (64/4, 32/2), so the effect")
    assert by_subject(claims, "relation") == {}  # the factor's claim says it; no second sentence repeats it
    assert sum("together" in c.text or "cannot be" in c.text for c in claims) == 1


def test_too_few_confirmation_seeds_leave_every_comparison_untested_and_say_why(tmp_path: Path) -> None:
    result = grid("one-seed", dims_matter, confirm=1)
    claims = conclusions([result])
    for claim in [*by_subject(claims, "factor").values(), next(c for c in claims if c.topic == "best")]:
        assert claim.verdict == "untested" and "untested: a test needs at least 3 confirmation seeds" in claim.text
    seeds = by_subject(claims, "warning")["one-seed/seeds"]
    assert seeds.text.startswith("one-seed: 1 confirmation seed(s) leave its comparisons inconclusive or untested")
    files = write_report([result], tmp_path / "report", log=None)
    for text in (files.markdown.read_text(), files.html.read_text()):
        assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    table = next(b for b in files.section("results").blocks if isinstance(b, Table))
    selected = next(row for row in table.rows if row[-1] == "★")
    assert selected[table.headers.index(EN.ci(0.95))] == "–"  # no interval with one seed, shown as a dash
    assert "| " + " | ".join(selected) + " |" in files.markdown.read_text()


def test_a_study_without_confirmation_is_not_tested_and_says_why() -> None:
    claims = conclusions([grid("unconfirmed", dims_matter, confirm=0)])
    caveat = by_subject(claims, "caveat")["unconfirmed"]
    assert caveat.verdict == "untested" and "has no confirmation stage (confirm_seeds: 0)" in caveat.text
    best = next(c for c in claims if c.topic == "best")
    assert "It has no confirmation run, so" in best.text and "untested: not confirmed" in best.text
    assert all(c.verdict == "untested" for c in by_subject(claims, "factor").values()) or not by_subject(
        claims, "factor"
    )


def test_an_older_study_without_row_predictions_is_untested() -> None:
    claims = conclusions([grid("old", dims_matter, predictions_recorded=False)])
    factor = by_subject(claims, "factor")["embed_dim"]
    assert factor.verdict == "untested"
    assert "untested: no per-row validation predictions were recorded (a study from an older newslab)" in factor.text


def test_identical_predictions_are_untested_for_zero_variance() -> None:
    result = ablations("same", {})
    base = {t.seed: t.val_correct for t in result.trials if t.role == "confirm" and t.point["ablation"] == "none"}
    for t in result.trials:
        if t.role == "confirm" and t.point["ablation"] == "no_pe":
            t.val_correct = base[t.seed]
    claim = by_subject(conclusions([result]), "ablation")["no_pe"]
    assert claim.verdict == "untested" and "zero variance" in claim.text


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
    assert files.next_grid is None and not (tmp_path / "report" / "next-grid.yaml").exists()


@pytest.mark.parametrize(
    "lang, words", [("en", ["inconclusive", "Best configuration"]), ("zh", ["无定论", "最佳配置", "确认运行"])]
)
def test_conclusions_are_written_in_the_requested_language(lang: str, words: list[str]) -> None:
    text = " ".join(c.text for c in conclusions([grid("g", dims_matter)], lang))
    assert all(word in text for word in words)
    assert ("Best configuration" in text) == (lang == "en")


def test_lr_tests_are_adjusted_for_every_pair_they_pick_from_and_factor_tests_per_factor() -> None:
    result = study("g3", {"embed_dim": [32, 64], "num_heads": [2, 4], "lr": [1e-3, 3e-3, 1e-2]}, dims_matter)
    per_size = fx.lr_per_size(result)
    assert len(per_size) == 4
    for e in per_size:  # best vs worst of 3 lrs at 4 sizes: one of 4 x 3 pairs
        test = e.comparison.test
        assert isinstance(test, Paired) and test.family == 12
        alone = fx.test_of(fx.differences(e.comparison.a, e.comparison.b), 1)
        assert test.p == pytest.approx(min(1.0, 12 * alone.p))
    effects = fx.factor_effects(result)
    # each factor's contrast is fixed by the selection runs before the confirmation runs test it: 3 tests
    assert len(effects) == 3 and all(e.test.family == 3 for e in effects)
    claims = by_subject(conclusions([result]), "lr")
    assert all("Bonferroni-adjusted over 12 comparisons" in c.text for s, c in claims.items() if s != "all")


def test_the_same_best_lr_everywhere_is_qualified_by_its_tests() -> None:
    def claim(gain: float, confirm: int):
        result = study(
            "lr",
            {"embed_dim": [32, 64], "lr": [1e-3, 3e-3]},
            lambda p, n: 0.8 + gain * (p["lr"] == 1e-3),
            noise=0.001,
            confirm=confirm,
        )
        return by_subject(conclusions([result]), "lr")["all"]

    slight, strong = claim(0.01, confirm=3), claim(0.08, confirm=5)
    assert slight.verdict == "inconclusive" and slight.text.startswith(
        "The best lr is 0.001 in every configuration (inconclusive: no lr difference at any size is significant"
    )
    assert strong.verdict == "info" and strong.text == "The best lr is 0.001 in every configuration."


def test_the_best_configuration_is_chosen_on_selection_and_estimated_on_confirmation() -> None:
    result = grid("g", dims_matter)
    best = next(c for c in conclusions([result]) if c.topic == "best")
    pick = fx.selected(result)
    assert pick is not None and pick.confirmation is not None
    assert (
        f"chosen on the selection runs ({EN.pct(pick.selection.val_mean)} mean validation accuracy over seeds [0, 1, 2])"
        in best.text
    )
    epoch = pick.confirmation.trials[0].stop_epoch
    assert (
        f"On 5 fresh confirmation seeds ([1000, 1001, 1002, 1003, 1004]), trained to epoch {epoch}, it reaches "
        in best.text
    )
    assert f"{EN.pct(pick.confirmation.val_mean)} validation accuracy" in best.text
    assert f"and {EN.pct(pick.confirmation.test_mean)} test accuracy" in best.text
    race = fx.runner_up(result)
    assert race is not None and f"Against the runner-up ({EN.point({**race.b.point, **race.b.nuisance})})" in best.text
    assert all(t.role == "confirm" for t in race.a.trials + race.b.trials)


def without(result, ablation: str):
    """The study with the confirmation runs of one ablation removed: it was never confirmed."""
    result.trials = [t for t in result.trials if t.point["ablation"] != ablation or t.role == "select"]
    return result


def test_ablation_summary_lists_what_could_not_be_tested() -> None:
    result = ablations("a", {"no_pe": 0.08})
    for t in result.trials:
        if t.point["ablation"] == "single_head":
            t.val_correct = None  # recorded before per-row predictions were kept
    claims = by_subject(conclusions([result]), "ablation")
    assert (
        claims["single_head"].verdict == "untested"
        and "no per-row validation predictions" in claims["single_head"].text
    )
    assert "significantly hurts for: no positional encoding" in claims["summary"].text
    assert claims["summary"].text.endswith("; is untested for: single head.")
    untested = conclusions([ablations("a", {"no_pe": 0.08}, confirm=2)])
    assert "summary" not in by_subject(untested, "ablation")
    caveat = by_subject(untested, "caveat")["summary"]
    assert caveat.verdict == "untested" and caveat.text.startswith(
        "No ablation of a could be tested (a test needs at least 3 confirmation seeds)"
    )
    assert not any("hurts for: nothing" in c.text for c in untested)


def test_missing_ablation_variants_are_reported_not_dropped(tmp_path: Path) -> None:
    result = without(ablations("a", {"no_pe": 0.08}), "no_ffn")
    claims = by_subject(conclusions([result]), "ablation")
    assert claims["no_ffn"].verdict == "untested" and "no completed confirmation run" in claims["no_ffn"].text
    assert "across the study's 6 ablations" in claims["ranking"].text  # the missing one counts: planned
    assert claims["summary"].text.endswith("; is untested for: no FFN.")
    table = next(b for b in ablation_section(context([result], tmp_path)).blocks if isinstance(b, Table))
    assert table.rows[-1][:3] == ["no FFN", "–", "0"] and table.rows[-1][-1] == "not confirmed"
    assert len(table.rows) == 7 and "Bonferroni-adjusted over the study's 6 variants" in table.caption


def test_no_confirmed_baseline_differs_from_no_confirmed_variant(tmp_path: Path) -> None:
    no_base = without(ablations("no-base", {}), "none")
    only_base = ablations("only-base", {})
    only_base.trials = [t for t in only_base.trials if t.point["ablation"] == "none" or t.role == "select"]
    claims = conclusions([no_base, only_base])
    caveats = by_subject(claims, "caveat")
    assert "has no confirmed baseline" in caveats["no-base"].text
    assert (
        "has no confirmed ablation variant (only the baseline has completed confirmation runs)"
        in caveats["only-base"].text
    )
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
        p.startswith("No confirmed baseline (ablation none without a completed confirmation run)") for p in paras
    )
    assert any(p.startswith("No confirmed ablation variant: only the baseline") for p in paras)
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert [row[-1] for row in table.rows] == ["–"] + ["not confirmed"] * 6


# ------------------------------------------------------------------ warnings and follow-up specs
def test_warnings_name_the_edge_the_last_epoch_and_the_seeds() -> None:
    # lr 1e-3 is best and the lowest tried; the curves still rise at the last epoch
    result = study(
        "edge",
        {"embed_dim": [32, 64]},
        lambda p, n: 0.8 + 0.01 * (n["lr"] == 1e-3),
        nuisance={"lr": [1e-3, 3e-3]},
        peak=3,
    )
    warnings = by_subject(conclusions([result]), "warning")
    assert warnings["edge/edge/lr"].text == (
        "edge: the chosen lr (0.001) is at the low end of the values tried (0.001, 0.003), so a better value may "
        "lie beyond it: widen the grid towards lower values."
    )
    assert warnings["edge/last_epoch"].text == (
        "edge: the chosen epoch (3) is the last one trained (`epochs: 3`), so the validation curve may still be "
        "rising: train longer."
    )
    assert re.fullmatch(
        r"edge: 5 confirmation seed\(s\) leave its comparisons inconclusive or untested; about \d+ would decide "
        r"effects of the observed size.*\.",
        warnings["edge/seeds"].text,
    )
    assert all(c.verdict == "info" for c in warnings.values())
    assert "next-specs" not in warnings  # no file was written by `conclusions` alone


def test_follow_up_specs_are_written_named_and_run_as_they_are(tmp_path: Path) -> None:
    grid_result = grid("g", dims_matter, peak=3)
    ablation_result = ablations("a", {"no_pe": 0.08}, confirm=2)
    report = tmp_path / "report"
    files = write_report([grid_result, ablation_result], report, log=None)
    assert files.next_grid == report / "next-grid.yaml" and files.next_ablations == report / "next-ablations.yaml"
    spec = load_spec(files.next_grid)  # as it is: the command the report names runs it
    assert spec.name == "g-next" and spec.fixed["epochs"] == 6  # the curve was still rising: twice the epochs
    assert len(spec.scientific["lr"]) == 3 and spec.scientific["embed_dim"] == [32, 64, 128]
    chosen_lr = fx.selected(grid_result).selection.point["lr"]
    assert chosen_lr not in (min(spec.scientific["lr"]), max(spec.scientific["lr"]))  # widened beyond the edge
    assert spec.trials()
    abl = load_spec(files.next_ablations)
    assert abl.base_study is None and abl.confirm_seed_list == [1000, 1001, 1002] and abl.fixed["embed_dim"] == 64
    sentence = by_subject(files.claims, "warning")["next-specs"].text
    assert "next-grid.yaml (from g)" in sentence and "next-ablations.yaml (from a)" in sentence
    assert (
        f"`newslab study run {files.next_grid}`" in sentence
        and f"`newslab study run {files.next_ablations}`" in sentence
    )
    assert sentence in files.markdown.read_text()
    # a later report without warnings takes the proposal back
    middle = study("mid", {"lr": [1e-3, 3e-3, 1e-2]}, lambda p, n: 0.85 if p["lr"] == 3e-3 else 0.70)
    later = write_report([middle], report, log=None)
    assert not by_subject(later.claims, "warning") and later.next_grid is None
    assert not files.next_grid.exists() and not files.next_ablations.exists()


# ------------------------------------------------------------------ the report as a whole
def test_the_report_seals_test_accuracy_and_never_says_no_effect(tmp_path: Path) -> None:
    grid_result, ablation_result = grid("g", dims_matter), ablations("a", {"no_pe": 0.08})
    files = write_report([grid_result, ablation_result], tmp_path / "report", log=None)
    markdown, html = files.markdown.read_text(), files.html.read_text()
    pick = fx.selected(grid_result)
    assert pick is not None and pick.confirmation is not None
    shown = EN.pct(pick.confirmation.test_mean)
    # test accuracies are TEST_OFFSET below every validation number: a percentage in their range is one of them
    tests = [t.test_accuracy for r in (grid_result, ablation_result) for t in r.trials if t.test_accuracy is not None]
    low, high = 100 * min(tests) - 1, 100 * max(tests) + 1
    assert high < 100 * min(t.val_accuracy for t in grid_result.trials if t.val_accuracy is not None)
    for text in (markdown, html):
        printed = {m for m in re.findall(r"\d+\.\d\d%", text) if low <= float(m[:-1]) <= high}
        assert printed == {shown}  # the selected configuration's test accuracy, and no other
    assert "no effect" not in markdown.lower() and "within noise" not in markdown
    assert markdown.count("| sealed |") == len(grid_result.summaries()) - 1 + len(ablation_result.summaries())


def test_the_method_section_names_the_selection_and_confirmation_seeds(tmp_path: Path) -> None:
    files = write_report([grid("g", dims_matter, seeds=2, confirm=4)], tmp_path / "report", log=None)
    section = files.section("method")
    text = " ".join(
        b.text if isinstance(b, Para) else " ".join(b.items) for b in section.blocks if isinstance(b, (Para, Bullets))
    )
    assert "g: selection seeds [0, 1]" in text and "confirmation seeds [1000, 1001, 1002, 1003]" in text
    assert "--stop-epoch" in text and "Satterthwaite" in text and "Bonferroni" in text and "sealed" in text
    zh = write_report([grid("g", dims_matter)], tmp_path / "zh", lang="zh", log=None).section("method")
    assert zh.title == "方法" and any(
        "确认种子 [1000, 1001, 1002, 1003, 1004]" in b.items[0] for b in zh.blocks if isinstance(b, Bullets)
    )


def test_untested_reasons_are_worded_in_both_languages() -> None:
    for reason in ("too_few_seeds", "zero_variance", "no_predictions", "no_confirmation"):
        for lang in ("en", "zh"):
            words = Words(lang).reason(Untested(reason).reason)
            assert words and "{" not in words and "reason_" not in words


def test_the_ablation_ranking_is_one_claim_with_its_components_nested_under_it() -> None:
    result = ablations("a", {"no_pe": 0.08})
    bullets = claim_bullets(conclusions([result]))
    at = next(i for i, item in enumerate(bullets.items) if str(item).startswith("Components ranked"))
    nested = bullets.items[at + 1]
    assert isinstance(nested, Bullets) and len(nested.items) == len(fx.ablation_effects(result).effects)
    assert all(isinstance(item, str) for item in bullets.items[at + 2 :])  # the summary is top-level again
    doc = Document("t", "en", [Section("conclusions", "Conclusions", [bullets])])
    markdown, html = to_markdown(doc, Path(".")), to_html(doc)
    assert f"\n  - {EN.ablation('no_pe')}: " in markdown and markdown.count("\n  - ") == len(nested.items)
    assert re.search(r"<li>Components ranked[^<]*<ul><li>no positional encoding: ", html)
