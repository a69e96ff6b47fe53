"""The report's sections, each built from a ReportContext (the studies, the words of one
language, the figure maker). Each can be built alone, as the notebook does step by step."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ..config import NewslabError
from ..results import StudyResult
from . import effects as fx
from . import tables
from .attention import AttentionAnalysis, analyse_run
from .bestmodel import BestRun, best_run
from .conclusions import Claim, conclusions
from .i18n import Words
from .plots import Plotter
from .render import Bullets, Image, Para, Section


@dataclass
class ReportContext:
    results: list[StudyResult]
    plotter: Plotter
    data_dir: str | None = None

    @property
    def w(self) -> Words:
        return Words(self.lang)

    @property
    def lang(self) -> str:
        return self.plotter.requested_lang

    @functools.cached_property
    def labels(self) -> list[int] | None:
        return fx.test_labels(self.results)

    @functools.cached_property
    def best(self) -> BestRun | str:
        """The selected model's run, or the reason it cannot be analysed."""
        try:
            return best_run(self.results, self.data_dir)
        except NewslabError as exc:
            return str(exc)

    @functools.cached_property
    def attention(self) -> AttentionAnalysis | str:
        if isinstance(self.best, str):
            return self.best
        if self.best.dataset is None:
            return self.best.data_error or "no data"
        try:
            return analyse_run(self.best.run_dir, self.data_dir, dataset=self.best.dataset)
        except NewslabError as exc:
            return str(exc)

    @functools.cached_property
    def claims(self) -> list[Claim]:
        return conclusions(self.results, self.labels, self.lang)


def context(results: list[StudyResult], report_dir: str | Path, lang: str = "en", data_dir: str | Path | None = None,
            attention: AttentionAnalysis | None = None) -> ReportContext:
    """Everything the sections share; `attention` takes an analysis already made (newslab manual's step 4)."""
    ctx = ReportContext(results, Plotter(Path(report_dir) / "figures", lang), str(data_dir) if data_dir else None)
    if attention is not None:
        ctx.__dict__["attention"] = attention  # fills the cached_property
    return ctx


def results_section(ctx: ReportContext) -> Section:
    w = ctx.w
    section = Section("results", w["results"]).add(Para(w["results_intro"]))
    for result in ctx.results:
        section.add(Para(f"{result.name} ({w.counts(result.counts())})"))
        if not result.points():
            section.add(Para(f"{w['no_completed']}: {result.name}."), tables.failures_table(result, w))
            continue
        selected = None if fx.is_ablation_study(result) else Para(tables.selected_line(result, w))
        section.add(tables.results_table(result, w), selected, tables.failures_table(result, w))
    return section


def impact_section(ctx: ReportContext) -> Section:
    w, draw = ctx.w, ctx.plotter.draw
    section = Section("impact", w["impact"]).add(Para(w["impact_intro"]))
    grids = [r for r in ctx.results if r.points() and not fx.is_ablation_study(r)]
    if not grids:
        return section.add(Para(w["no_grid_study"]))
    for result in grids:
        for figure in (draw("hyperparameters", result), draw("lr_bars", result), draw("learning_curves", result)):
            section.add(Image(figure) if figure else None)
    return section


def ablation_section(ctx: ReportContext) -> Section:
    w, draw = ctx.w, ctx.plotter.draw
    section = Section("ablations", w["ablations"])
    studies = [r for r in ctx.results if fx.is_ablation_study(r)]
    if not studies:
        return section.add(Para(w["no_ablation_study"]))
    section.add(Para(w["ablation_intro"]))
    for result in studies:
        ablations = fx.ablation_effects(result, ctx.labels)
        if ablations.base is None:
            section.add(Para(f"{w['no_completed_baseline']}: {result.name} ({w.counts(result.counts())})."))
            continue
        if not ablations.effects:
            section.add(Para(f"{w['no_completed_variant']}: {result.name} ({w.counts(result.counts())})."))
        figure = draw("ablations", result.name, ablations.effects)
        curves = draw("learning_curves", result)
        section.add(tables.ablation_table(ablations, w), Image(figure) if figure else None,
                    Image(curves) if curves else None)
    return section


def best_model_section(ctx: ReportContext) -> Section:
    w = ctx.w
    section = Section("best-model", w["best_model"])
    best = ctx.best
    if isinstance(best, str):
        return section.add(Para(f"{w['unavailable']}: {best}."))
    config = w.point({**best.summary.point, **best.summary.nuisance})
    section.add(Para(f"{w['best_intro']} {best.study}: {config}, seed {best.trial.seed}, {best.run_dir}"))
    cm = best.confusion().numpy()
    section.add(Image(ctx.plotter.draw("confusion", cm, best.class_names, best.study)),
                tables.per_class_table(best, w))
    examples = tables.misclassified_table(best, w)
    if examples is not None:
        examples.caption = w["misclassified"]
    return section.add(examples or Para(f"{w['misclassified']}: {best.data_error or '–'}"))


def attention_section(ctx: ReportContext) -> Section:
    w, draw = ctx.w, ctx.plotter.draw
    section = Section("attention", w["attention"])
    analysis = ctx.attention
    if isinstance(analysis, str):
        return section.add(Para(f"{w['unavailable']}: {analysis}."))
    sample = analysis.sample
    names = analysis.class_names
    section.add(Para(w["attention_intro"]), Para(
        f"{w['sample']} #{sample.index}: \u201c{sample.text}\u201d ({w['true']}: {w.class_name(names[sample.label])}, "
        f"{w['predicted']}: {w.class_name(names[sample.predicted])})"))
    section.add(Image(draw("attention_head", sample.tokens, sample.weights[0][0].numpy(), 0, 0)),
                Image(draw("attention_grid", sample.tokens, [lw.numpy() for lw in sample.weights])))
    heads = analysis.heads
    section.add(Para(w["heads_intro"].format(n=heads.samples, u=heads.uniform_entropy)),
                Image(draw("head_summary", heads.entropy.numpy(), heads.distance.numpy(), heads.uniform_entropy)),
                tables.head_table(heads, w))
    return section


def conclusions_section(ctx: ReportContext) -> Section:
    return Section("conclusions", ctx.w["conclusions"]).add(Bullets([c.text for c in ctx.claims]))
