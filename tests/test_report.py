"""`newslab report` on real (tiny) studies: every section, attention maths, the best-model numbers,
Chinese figures, bad input, and the HTML in a real browser."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch

from browser import check_in_browser
from conftest import make_data_dir
from newslab.cli import main
from newslab.data import EncodedSplit, Split, collate, split_rows
from newslab.metrics import macro_f1
from newslab.report import build_report, context, fonts
from newslab.report import effects as fx
from newslab.report.attention import HEAD_ROWS, analyse_run
from newslab.report.bestmodel import best_run
from newslab.report.i18n import Reason, Words
from newslab.report.plots import Plotter
from newslab.report.render import Table
from newslab.report.scale import training_lengths
from newslab.report.sections import environment
from newslab.runs import load_run
from newslab.study import StudySpec, load_spec, open_storage, run_study, study_results
from newslab.study.results import chosen_epoch
from test_report_zh import english_words

SECTIONS = [
    "Setup",
    "Method",
    "Results",
    "Hyperparameter impact",
    "Ablations",
    "Positional encodings",
    "Sequence length and batch size",
    "Pretraining and fine-tuning",
    "Search beyond the grid",
    "Best model",
    "Attention",
    "Conclusions",
]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> SimpleNamespace:
    """A finished 2 x 2 grid and a 3-variant ablation study on generated data, each selected on 2 seeds and
    confirmed on 3 fresh ones, and 4 positional encodings selected on 1 seed and confirmed on 3 (~90 s)."""
    root = tmp_path_factory.mktemp("report")
    data, out = make_data_dir(root / "data"), root / "out"
    url = f"sqlite:///{out / 'studies.db'}"
    tiny = {
        "epochs": 2,
        "batch_size": 16,
        "num_layers": 2,
        "vocab_size": 200,
        "min_freq": 1,
        "val_fraction": 0.2,
        "warmup": 0.0,
        "data_dir": str(data),
    }
    grid = StudySpec(
        name="tiny-grid",
        fixed=tiny,
        scientific={"embed_dim,num_heads": [[16, 2], [32, 4]], "lr": [3e-3, 1e-2]},
        seeds=2,
        confirm_seeds=3,
    )
    ablations = StudySpec(
        name="tiny-ablations",
        base_study="tiny-grid",
        fixed={"epochs": 2},
        scientific={"ablation": ["none", "no_pe", "no_ffn"]},
        seeds=2,
        confirm_seeds=3,
    )
    encodings = StudySpec(
        name="tiny-pos-enc",
        base_study="tiny-grid",
        fixed={"epochs": 2},
        scientific={"pos_encoding": ["sinusoidal", "rope", "alibi", "none"]},
        seeds=1,
        confirm_seeds=3,
    )
    pretraining = StudySpec(
        name="tiny-pretraining",
        base_study="tiny-grid",
        fixed={"epochs": 2, "pretrain_epochs": 2},
        scientific={"init_from,finetune": [[None, "full"], ["pretrain", "full"]]},
        seeds=1,
        confirm_seeds=3,
    )
    for spec in (grid, ablations, encodings, pretraining):
        run_study(spec, storage_url=url, out_dir=out, threads=1, log=lambda _line: None)
    names = ["tiny-grid", "tiny-ablations", "tiny-pos-enc", "tiny-pretraining"]
    return SimpleNamespace(data=data, out=out, url=url, names=names)


def results(studies: SimpleNamespace):
    storage = open_storage(studies.url)
    return [study_results(name, storage) for name in studies.names]


def test_report_has_every_section_and_a_self_contained_html(studies, tmp_path: Path) -> None:
    files = build_report(studies.names, storage_url=studies.url, report_dir=tmp_path / "report", log=None)
    markdown, html = files.markdown.read_text(), files.html.read_text()
    assert [line[3:] for line in markdown.splitlines() if line.startswith("## ")] == SECTIONS
    images = re.findall(r'<img src="([^"]*)"', html)
    assert len(images) >= 9 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"<script|<link rel=\"stylesheet|@import|url\(|src=\"http", html)  # nothing to fetch
    pngs = sorted(p.stem for p in (tmp_path / "report" / "figures").glob("*.png"))
    assert pngs == sorted(p.stem for p in (tmp_path / "report" / "figures").glob("*.svg")) and len(pngs) == len(images)
    for figure in re.findall(r"\]\((figures/[^)]+\.(?:png|svg))\)", markdown):
        assert (tmp_path / "report" / figure).is_file()
    assert not re.search(r"\bnan\b", markdown + html, re.IGNORECASE)
    assert "newslab study run" in markdown and (tmp_path / "report" / "specs" / "tiny-ablations.yaml").is_file()
    for name in ("train.csv", "test.csv"):  # the data files and their checksums
        digest = hashlib.md5((studies.data / name).read_bytes()).hexdigest()
        assert f"| {name} |" in markdown and digest in markdown
    assert any(c.topic == "ablation" and c.subject == "no_pe" for c in files.claims)
    method = "\n".join(markdown.split("## Method")[1].split("## Results")[0].splitlines())
    assert "tiny-grid: selection seeds [0, 1]" in method and "confirmation seeds [1000, 1001, 1002]" in method
    verdicts = {c.verdict for c in files.claims if c.topic in ("best", "factor", "ablation")}
    assert verdicts <= {"significant", "inconclusive", "untested", "info"} and "within noise" not in markdown
    if files.next_grid is not None:  # the follow-up spec runs as it is
        assert load_spec(files.next_grid).name == "tiny-grid-next" and files.next_grid.name in markdown
    assert files.where == f" --out-dir outputs --storage '{studies.url}'"  # as every command of the report
    for followup in files.followups:  # what it wrote, each with the command the report names
        assert followup.path.parent == files.directory and followup.command in markdown
        assert followup.command == f"newslab study run {followup.path}{files.where}"
    assert [f.path for f in files.followups] == [p for p in (files.next_grid, files.next_ablations) if p]


def test_the_positional_chapter_compares_every_encoding_and_reads_its_heads(studies, tmp_path: Path) -> None:
    files = build_report(studies.names, storage_url=studies.url, report_dir=tmp_path, log=None)
    chapter = files.markdown.read_text().split("## Positional encodings")[1].split("## Sequence length")[0]
    table, heads = (section for section in files.section("positional").blocks if isinstance(section, Table))
    assert [row[0] for row in table.rows] == [
        "sinusoidal",
        "RoPE",
        "ALiBi",
        "none",
    ]  # the reference, then the spec's order
    assert "Bonferroni-adjusted over the study's 3 variants" in table.caption
    assert [row[:2] for row in heads.rows] == [
        ["sinusoidal", "added to the embeddings"],
        ["RoPE", "in every attention layer"],
        ["ALiBi", "in every attention layer"],
        ["none", "nowhere"],
    ]
    storage = open_storage(studies.url)
    study = study_results("tiny-pos-enc", storage)
    for row, name in zip(heads.rows, ["sinusoidal", "rope", "alibi", "none"]):  # the numbers of that encoding's run
        point = next(s for s in study.points() if s.point["pos_encoding"] == name)
        run = min(study.confirmation(point).trials, key=lambda t: t.seed).run_dir
        summary = analyse_run(run).heads
        assert row[4] == f"{float(summary.distance_ratio.mean(0).mean()):.2f}"
        assert sum(int(part.split()[-1]) for part in row[5].split(", ")) == summary.shape[0] * summary.shape[1]
    assert "tiny-pos-enc-variants.png" in chapter and "tiny-pos-enc-encoding-heads.png" in chapter
    claims = [c for c in files.claims if c.topic == "positional"]
    assert {c.subject for c in claims} >= {"tiny-pos-enc", "rope", "alibi", "none", "tiny-pos-enc/heads"}
    assert all(c.verdict in ("significant", "inconclusive", "untested") for c in claims if c.under == "tiny-pos-enc")
    assert "against sinusoidal" in claims[0].text and "attends nearest" in claims[-1].text


def test_the_pretraining_chapter_compares_with_training_from_scratch_and_counts_the_cost(
    studies, tmp_path: Path
) -> None:
    files = build_report(studies.names, storage_url=studies.url, report_dir=tmp_path, log=None)
    (table,) = [b for b in files.section("pretraining").blocks if isinstance(b, Table)]
    assert [row[0] for row in table.rows] == ["from scratch", "pretrained, fine-tuning full"]
    assert table.rows[0][6] == "reference" and table.rows[0][8] == "–"
    assert table.rows[1][6] in ("significant", "inconclusive") and table.rows[1][8].endswith("× 2")  # one per split
    encoders = sorted((studies.out / "pretrained").glob("*/final.json"))
    assert len(encoders) == 2 and all(json.loads(p.read_text())["status"] == "completed" for p in encoders)
    seconds = [json.loads(p.read_text())["train_seconds"] for p in encoders]
    assert table.rows[1][8] == f"{sum(seconds) / 2:.0f} × 2"
    (claim,) = [c for c in files.claims if c.topic == "pretraining" and c.under == "tiny-pretraining"]
    assert claim.text.startswith("pretrained, fine-tuning full: ") and "held-out masked-token accuracy" in claim.text


def test_the_scale_chapter_reads_the_training_rows_lengths_under_the_studys_tokenizer(studies) -> None:
    grid = results(studies)[0]
    lengths = training_lengths(grid)
    run = load_run(next(t.run_dir for t in grid.trials if t.run_dir))
    rows = split_rows(studies.data, run.config.data).train  # the same rows, tokenized again here
    expected = [len(ids) for ids in run.tokenizer.encode_batch(rows.texts)]
    assert sorted(lengths.counts.tolist()) == sorted(expected) and lengths.percentile(100) == max(expected)


@pytest.mark.parametrize("copied", [copy.copy, copy.deepcopy, *(
    lambda r, p=p: pickle.loads(pickle.dumps(r, p)) for p in range(pickle.HIGHEST_PROTOCOL + 1))])  # fmt: skip
def test_a_reason_keeps_its_translation_when_copied_or_pickled(copied) -> None:
    reason = Reason("why_data_missing", folder="/data", files="train.csv, test.csv")
    again = copied(reason)
    assert type(again) is Reason and again == reason and (again.key, again.values) == (reason.key, reason.values)
    assert Words("zh").say(again) == Words("zh").say(reason) != str(reason) and CJK.search(Words("zh").say(again))


def test_the_report_estimates_on_confirmation_runs(studies) -> None:
    grid = results(studies)[0]
    assert {t.role for t in grid.trials} == {"select", "confirm"}
    confirmed = grid.confirmed()
    assert len(confirmed) == 4 and all(s.n == 3 and {t.seed for t in s.trials} == {1000, 1001, 1002} for s in confirmed)
    for s in confirmed:  # trained to the epoch its selection runs chose, with per-row predictions for the test
        assert {t.stop_epoch for t in s.trials} == {chosen_epoch(next(p for p in grid.points() if p.point == s.point))}
        assert all(t.val_correct and set(t.val_correct) <= {"0", "1"} for t in s.trials)
    race = fx.runner_up(grid)
    assert race is not None and race.verdict in ("significant", "inconclusive")  # tested, on the confirmation runs


def test_attention_rows_sum_to_one_over_real_tokens(studies) -> None:
    best = best_run(results(studies))
    analysis = analyse_run(best.run_dir, dataset=best.dataset)
    sample, length = analysis.sample, len(analysis.sample.tokens)
    assert "[PAD]" not in sample.tokens and len(sample.weights) == 2  # both layers
    for weights in sample.weights:
        assert weights.shape == (weights.shape[0], length, length)
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    # computed in a padded batch, the sample's weights equal those of the sample run alone
    run = load_run(best.run_dir)  # the checkpoint's own tokenizer: a retrained one may number tokens differently
    val = EncodedSplit.build(run.tokenizer, Split(best.dataset.val.texts, best.dataset.val.labels.tolist()))
    assert int(val.lengths(128).max()) > length  # the batch's longest row really padded the sample
    alone = collate(val, torch.tensor([sample.index]), 128)
    with torch.inference_mode():
        _, weights_alone = run.model(alone.ids, alone.pad_mask, need_weights=True)
    for padded, unpadded in zip(sample.weights, weights_alone):
        torch.testing.assert_close(padded, unpadded[0].float())
    heads = analysis.heads  # per row (every row has 2 tokens or more), layer and head
    assert heads.entropy.shape == (heads.samples, 2, sample.weights[0].shape[0])
    assert heads.samples == min(HEAD_ROWS, len(val))
    assert (heads.entropy >= 0).all() and (heads.entropy_ratio <= 1 + 1e-4).all()
    assert (heads.distance >= 0).all() and (heads.distance < 128).all()


def test_best_model_numbers_agree_with_the_run(studies) -> None:
    best = best_run(results(studies))
    assert best.trial.seed == min(t.seed for t in best.summary.trials)  # not picked by accuracy: no more choosing
    assert best.trial.role == "confirm" and best.trial.stop_epoch is not None  # a run that took no part in choosing
    cm = best.confusion()
    assert int(cm.sum()) == len(best.dataset.test) and cm.diag().sum() / cm.sum() == pytest.approx(
        best.trial.test_accuracy
    )
    f1 = macro_f1(torch.tensor(best.test_predictions), torch.tensor(best.test_labels), len(best.class_names))
    assert sum(best.scores()["f1"]) / len(best.class_names) == pytest.approx(f1)
    for text, true, predicted in best.misclassified():
        row = best.dataset.test.texts.index(text)
        assert true == best.test_labels[row] != predicted == best.test_predictions[row]


def test_chinese_figures_use_a_font_that_has_every_glyph(studies, tmp_path: Path) -> None:
    font = fonts.find_cjk_font()
    assert font is not None, "no CJK font: apt-get install -y fonts-wqy-microhei (CI installs it)"
    ctx = context(results(studies), tmp_path, lang="zh")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from newslab.report import sections

        for build in (
            sections.impact_section,
            sections.ablation_section,
            sections.best_model_section,
            sections.attention_section,
        ):
            build(ctx)
    drawn = "".join(ctx.plotter.drawn_text)
    assert CJK.search(drawn) and "验证准确率" in drawn
    assert not fonts.missing_characters(font.path, drawn)
    assert not [w for w in caught if "missing from font" in str(w.message)]


def test_without_a_cjk_font_figure_labels_fall_back_to_english(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fonts, "find_cjk_font", lambda sample=fonts.CJK_SAMPLE: None)
    with pytest.warns(RuntimeWarning, match="no CJK font found"):
        plotter = Plotter(tmp_path, "zh")
    plotter.draw(
        plotter.confusion, torch.eye(4, dtype=torch.long).numpy(), ["World", "Sports", "Business", "Sci/Tech"], "x"
    )
    assert plotter.lang == "en" and plotter.requested_lang == "zh" and not CJK.search("".join(plotter.drawn_text))


def test_cli_report_in_chinese(studies, tmp_path: Path) -> None:
    code = main(["report", *studies.names, "--storage", studies.url, "--report-dir", str(tmp_path), "--lang", "zh"])
    html = (tmp_path / "report.html").read_text()
    assert code == 0 and '<html lang="zh-CN">' in html and "结论" in html and "消融实验" in html
    # every section of a real report (best model, attention too) in Chinese; the headlines are data
    headlines = " ".join(p.read_text() for p in studies.data.glob("*.csv"))
    data = f"{headlines} {' '.join(str(v) for v in environment().values())} {' '.join(studies.names)}"
    assert english_words((tmp_path / "report.md").read_text(), data) == set()


def test_cli_report_on_a_missing_study_is_one_line(studies, capsys) -> None:
    assert main(["report", "no-such-study", "--storage", studies.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("newslab: error: study 'no-such-study' not found") and err.count("\n") == 1


def test_cli_report_on_empty_and_failed_studies_says_nothing_can_be_concluded(
    studies, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("NEWSLAB_DOWNLOAD_URL", "http://127.0.0.1:9/")  # the missing data fails fast, offline
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    broken = StudySpec(
        name="broken",
        fixed={"epochs": 1, "data_dir": str(tmp_path / "no-data")},
        scientific={"lr": [1e-3]},
        seeds=2,
        max_retries=0,
    )
    run_study(broken, storage_url=url, out_dir=tmp_path, log=lambda _line: None)
    empty = optuna.create_study(study_name="empty", storage=open_storage(url))
    empty.set_user_attr("spec", StudySpec(name="empty", scientific={"lr": [1e-3]}).to_dict())
    code = main(["report", "broken", "empty", "--storage", url, "--report-dir", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 0 and "Study broken has no completed trial" in err and "Study empty has no completed trial" in err
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "failed 2" in markdown and "missing train.csv" in markdown and "nothing can be concluded" in markdown


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_opens_in_headless_chromium(studies, tmp_path: Path, lang: str) -> None:
    files = build_report(studies.names, storage_url=studies.url, report_dir=tmp_path, lang=lang, log=None)
    page = check_in_browser(files.html, f"report-tiny-{lang}.png")
    assert len(page["images"]) >= 9 and ("结论" in page["text"]) == (lang == "zh")
