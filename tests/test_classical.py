"""The classical baselines (report/classical.py): the data layer's rows, C chosen on validation rows only,
the JSON cache, the comparison with the selected Transformer, and their place in the report."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import report_synthetic as synth
from conftest import make_data_dir, synthetic_rows, write_rows
from newslab.config import DataConfig
from newslab.data import load_dataset, split_rows
from newslab.errors import NewslabError
from newslab.report import classical, context
from newslab.report import effects as fx
from newslab.report.classical import C_GRID, BaselineFit, Baselines, against, as_summary, fit_baselines, standing
from newslab.report.sections import results_section
from newslab.study.results import Summary, TrialRecord

TINY = {"val_fraction": 0.2, "min_freq": 1, "vocab_size": 200}


def configs(data_dir: Path, split_seed: int = 0, **kw) -> tuple[DataConfig, DataConfig]:
    """The selection split and its confirmation split (split_seed + 1), as a study's runs use them."""
    selection = DataConfig(data_dir=str(data_dir), split_seed=split_seed, **{**TINY, **kw})
    return selection, dataclasses.replace(selection, split_seed=split_seed + 1)


def _relabel(rows: list[tuple[int, str, str]], share: float, seed: int) -> list[tuple[int, str, str]]:
    rng = random.Random(seed)
    return [(label % 4 + 1 if rng.random() < share else label, title, text) for label, title, text in rows]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Generated rows with 30% of the labels moved to the next class: no C separates them all, so the
    validation accuracies differ between C values and the choice means something."""
    root = make_data_dir(tmp_path_factory.mktemp("classical") / "data")
    write_rows(root / "train.csv", _relabel(synthetic_rows(60, 0), 0.3, 0))
    write_rows(root / "test.csv", _relabel(synthetic_rows(15, 1), 0.3, 1))
    return root


def recording_fit(monkeypatch) -> list[tuple]:
    """Patch the fit to record the rows it is given; returns the record."""
    seen: list[tuple] = []
    real = classical._fit

    def fit(selection, confirmation):
        seen.append((selection, confirmation))
        return real(selection, confirmation)

    monkeypatch.setattr(classical, "_fit", fit)
    return seen


# ----------------------------------------------------------------------------- rows
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(split_seed=st.integers(0, 50), val_fraction=st.sampled_from([0.1, 0.2, 0.3]), limit=st.sampled_from([None, 60]))
def test_the_rows_are_the_data_layers(data, tmp_path, monkeypatch, split_seed, val_fraction, limit):
    seen = recording_fit(monkeypatch)
    selection, confirmation = configs(data, split_seed, val_fraction=val_fraction, train_limit=limit)
    baselines = fit_baselines(selection, confirmation)
    ((fitted_selection, fitted_confirmation),) = seen
    for config, rows in ((selection, fitted_selection), (confirmation, fitted_confirmation)):
        dataset = load_dataset(config, tmp_path / f"cache-{split_seed}-{val_fraction}-{limit}", progress=False)
        assert rows.train.texts == dataset.train.texts and rows.val.texts == dataset.val.texts
        assert rows.train.labels == dataset.train.labels.tolist() and rows.val.labels == dataset.val.labels.tolist()
        assert rows.test.texts == dataset.test.texts
    assert baselines.rows == {
        "train": len(fitted_confirmation.train.texts),
        "val": len(fitted_confirmation.val.texts),
        "test": len(fitted_confirmation.test.texts),
    }
    for fit in baselines.fits:  # one 0/1 per confirmation validation row, in its order
        assert len(fit.val_correct) == baselines.rows["val"] and set(fit.val_correct) <= {"0", "1"}
        assert fit.val_accuracy == pytest.approx(fit.val_correct.count("1") / baselines.rows["val"])


def test_fits_both_models_and_chooses_c_by_selection_accuracy(data):
    baselines = fit_baselines(*configs(data))
    assert [f.model for f in baselines.fits] == list(C_GRID)
    for fit in baselines.fits:
        assert [C for C, _ in fit.selection] == list(C_GRID[fit.model])
        best = max(acc for _, acc in fit.selection)
        assert fit.C == next(C for C, acc in fit.selection if acc == best)  # the smallest C of the best
        assert 0.4 < fit.test_accuracy < 0.9  # topic words against 30% moved labels; chance is 0.25
    assert any(len({acc for _, acc in fit.selection}) > 1 for fit in baselines.fits)  # C matters here
    assert baselines.best.selection_accuracy == max(f.selection_accuracy for f in baselines.fits)


def test_test_labels_choose_nothing(data, tmp_path):
    """Relabelling every test row changes the test accuracy and nothing that was chosen or validated."""
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("train.csv", "classes.txt"):
        (moved / name).write_bytes((data / name).read_bytes())
    with open(data / "test.csv", newline="", encoding="utf-8") as fh:
        rows = [(int(label), title, text) for label, title, text in csv.reader(fh)]
    write_rows(moved / "test.csv", _relabel(rows, 0.5, 2))
    before, after = fit_baselines(*configs(data)), fit_baselines(*configs(moved))
    for a, b in zip(before.fits, after.fits):
        assert (a.C, a.selection, a.val_correct, a.val_accuracy) == (b.C, b.selection, b.val_correct, b.val_accuracy)
        assert a.test_accuracy != b.test_accuracy
    assert before.best.model == after.best.model


# ----------------------------------------------------------------------------- cache
def test_cache_hit_and_miss(data, tmp_path, monkeypatch):
    seen = recording_fit(monkeypatch)
    cache = tmp_path / "cache"
    first = fit_baselines(*configs(data), cache)
    assert not first.cached and first.cache_file is not None and first.cache_file.parent == cache
    assert json.loads(first.cache_file.read_text())["payload"]["version"] == classical.CACHE_VERSION
    again = fit_baselines(*configs(data), cache)
    assert again.cached and again.fits == first.fits and len(seen) == 1  # read, not refitted
    other = fit_baselines(*configs(data, split_seed=3), cache)  # other split settings: another entry
    assert not other.cached and other.cache_file != first.cache_file and len(seen) == 2
    with open(data / "train.csv", "a", encoding="utf-8") as fh:  # the same settings on changed data
        fh.write('"1","Minister","the minister said the treaty"\n')
    try:
        changed = fit_baselines(*configs(data), cache)
    finally:
        lines = (data / "train.csv").read_text(encoding="utf-8").splitlines(keepends=True)
        (data / "train.csv").write_text("".join(lines[:-1]), encoding="utf-8")
    assert not changed.cached and changed.cache_file != first.cache_file and len(seen) == 3


def _tampered(text: str) -> str:
    """Valid JSON whose payload no longer matches its checksum."""
    manifest = json.loads(text)
    manifest["payload"]["fits"][0]["val_accuracy"] = 0.123
    return json.dumps(manifest)


@pytest.mark.parametrize(
    "damage",
    [lambda text: text[: len(text) // 2], _tampered, lambda text: "not json"],
    ids=["cut-short", "tampered", "not-json"],
)
def test_a_damaged_cache_is_refitted_with_one_line_naming_it(data, tmp_path, damage):
    cache = tmp_path / "cache"
    first = fit_baselines(*configs(data), cache)
    assert first.cache_file is not None
    first.cache_file.write_text(damage(first.cache_file.read_text()), encoding="utf-8")
    messages: list[str] = []
    again = fit_baselines(*configs(data), cache, log=messages.append)
    same = lambda fits: [(f.model, f.C, f.selection, f.val_correct, f.test_accuracy) for f in fits]
    assert not again.cached and same(again.fits) == same(first.fits)
    damaged, fitting = messages  # the damaged file named in one line, then the refit's progress line
    assert "\n" not in damaged and str(first.cache_file) in damaged and "fitting the classical baselines" in fitting
    assert fit_baselines(*configs(data), cache).cached  # rewritten whole


def test_missing_data_is_one_line_naming_the_folder(tmp_path):
    with pytest.raises(NewslabError) as error:
        fit_baselines(*configs(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(error.value) and "\n" not in str(error.value)


# ----------------------------------------------------------------------- comparison
def fit_with(correct: str, C: float = 1.0, model: str = "tfidf_svm", test: float = 0.5) -> BaselineFit:
    accuracy = correct.count("1") / len(correct)
    return BaselineFit(model, C, ((C, accuracy),), accuracy, test, correct, 0.1)


def baselines_of(*fits: BaselineFit) -> Baselines:
    return Baselines(fits, {"train": 100, "val": len(fits[0].val_correct), "test": 50}, 1.0)


@settings(max_examples=40, deadline=None)
@given(seeds=st.integers(3, 6), rows=st.integers(2, 60), data=st.data())
def test_the_comparison_pairs_each_seed_with_the_same_classical_rows(seeds, rows, data):
    bits = st.lists(st.integers(0, 1), min_size=rows, max_size=rows)
    transformer = [data.draw(bits) for _ in range(seeds)]
    baseline = data.draw(bits)
    runs = [
        TrialRecord(
            i,
            "COMPLETE",
            {"embed_dim": 8},
            {},
            1000 + i,
            float(np.mean(r)),
            role="confirm",
            val_correct="".join(map(str, r)),
        )
        for i, r in enumerate(transformer)
    ]
    fit = fit_with("".join(map(str, baseline)))
    d = fx.differences(Summary({"embed_dim": 8}, {}, runs), as_summary(fit, [t.seed for t in runs]))
    assert not isinstance(d, fx.Untested)
    expected = np.asarray(transformer, dtype=float) - np.asarray(baseline, dtype=float)[None, :]
    assert np.array_equal(np.stack([d[s] for s in sorted(d)]), expected)
    comparison = fx.compare(Summary({"embed_dim": 8}, {}, runs), as_summary(fit, [t.seed for t in runs]))
    assert comparison.diff == pytest.approx(float(expected.mean()))


def grid_study(**kw):
    return synth.grid("g", lambda p, n: 0.85, **kw)


def random_correct(accuracy: float, rows: int = synth.N_VAL, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join("1" if rng.random() < accuracy else "0" for _ in range(rows))


def test_verdicts_against_a_weak_and_an_equal_baseline():
    result = grid_study()
    weak = against(result, baselines_of(fit_with(random_correct(0.6))))
    assert weak.comparison.verdict == "significant" and weak.comparison.diff > 0.2
    equal = against(result, baselines_of(fit_with(random_correct(0.85, seed=1))))
    assert equal.comparison.verdict == "inconclusive" and abs(equal.comparison.diff) < 0.03
    unconfirmed = against(grid_study(confirm=0), baselines_of(fit_with(random_correct(0.6))))
    assert unconfirmed.comparison.verdict == "untested" and unconfirmed.comparison.stage == "select"
    with pytest.raises(NewslabError, match="not the data the study ran on"):
        against(result, baselines_of(fit_with(random_correct(0.6, rows=synth.N_VAL - 1))))


# --------------------------------------------------------------------------- report
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reference_rows_and_the_conclusion_line(tmp_path, lang):
    result = grid_study()
    svm, logreg = fit_with(random_correct(0.6), C=0.3, test=0.61), fit_with(random_correct(0.55), 10.0, "tfidf_logreg")
    ctx = context([result], tmp_path, lang)
    ctx.__dict__["classical"] = against(result, baselines_of(svm, logreg))
    table = next(b for b in results_section(ctx).blocks if hasattr(b, "rows"))
    ranked, references = table.rows[: len(result.summaries())], table.rows[len(result.summaries()) :]
    name = {
        "en": ("TF-IDF + linear SVM", "TF-IDF + logistic regression"),
        "zh": ("TF-IDF + 线性 SVM", "TF-IDF + 逻辑回归"),
    }
    assert [r[0] for r in references] == [f"{name[lang][0]} (C=0.3)", f"{name[lang][1]} (C=10)"]
    assert all(r[-1] == ctx.w["reference"] for r in references) and all(r[-1] != ctx.w["reference"] for r in ranked)
    assert "61.00%" in references[0] and table.caption == ctx.w["classical_caption"]
    line = next(c for c in ctx.claims if c.topic == "baseline")
    assert line.verdict == "significant" and f"{name[lang][0]} (C=0.3)" in line.text
    assert ctx.w.verdict("significant") in line.text and ("Transformer" in line.text)
    topics = [c.topic for c in ctx.claims]
    assert topics.count("baseline") == 1 and topics.index("baseline") > topics.index("best")  # after the study's pick


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_without_the_data_the_results_say_why_in_the_reports_language(tmp_path, lang):
    ctx = context([grid_study()], tmp_path, lang)  # hand-built runs: no run folder says where their data were
    assert isinstance(ctx.classical, str) and "--data-dir" in ctx.classical
    texts = [getattr(b, "text", "") for b in results_section(ctx).blocks]
    said = ctx.w["classical_unavailable"].format(why=ctx.classical)
    assert said in texts and (lang == "en" or ("研究" in said and "study" not in said))
    assert all(c.topic != "baseline" for c in ctx.claims)


def test_standing_fits_on_the_studys_splits(data, tmp_path):
    """A study whose spec names its data: the baselines fit on its selection split and confirm on split_seed + 1,
    the rows its confirmation runs predicted."""
    confirm_rows = len(split_rows(data, configs(data)[1]).val.labels)
    result = synth.study(
        "tiny",
        {"embed_dim": [16, 32]},
        lambda p, n: 0.8,
        rows=confirm_rows,
        fixed={"epochs": 3, "data_dir": str(data), **TINY},
    )
    found = standing(result)
    assert found.study == "tiny" and found.baselines.rows["val"] == confirm_rows
    assert found.comparison.verdict in ("significant", "inconclusive")
    direct = fit_baselines(*configs(data))
    assert [f.val_correct for f in found.baselines.fits] == [f.val_correct for f in direct.fits]


@pytest.mark.realdata
def test_stand_in_linear_svm(stand_in_dir):
    baselines = fit_baselines(
        DataConfig(data_dir=str(stand_in_dir)), DataConfig(data_dir=str(stand_in_dir), split_seed=1)
    )
    svm = next(f for f in baselines.fits if f.model == "tfidf_svm")
    assert svm.test_accuracy >= 0.85 and svm.val_accuracy >= 0.8
    assert baselines.seconds < 120
