"""The report's sections, each built from a ReportContext (the studies, the words of one
language, the figure maker). Each can be built alone, as the notebook does step by step.

SECTIONS lists the report's sections in reading order; the report builds exactly these. A new
section is one function `(ReportContext) -> Section` and one entry in SECTIONS.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from ..errors import NewslabError
from ..runs import RunFolder
from ..study.results import StudyResult
from . import effects as fx
from . import tables
from .attention import AttentionAnalysis, analyse_run
from .bestmodel import BestRun, best_run
from .conclusions import Claim, conclusions
from .i18n import Words
from .plots import Plotter
from .render import Bullets, Code, Image, Para, Section

PACKAGES = ("newslab", "torch", "tokenizers", "numpy", "optuna", "pandas", "scipy", "matplotlib", "seaborn")


@dataclass
class ReportContext:
    results: list[StudyResult]
    plotter: Plotter
    data_dir: str | None = None
    commands: list[str] = field(default_factory=list)  # the setup section's "reproduce" commands
    baseline: Path | None = None  # a baseline run folder the setup section describes

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


def context(
    results: list[StudyResult],
    report_dir: str | Path,
    lang: str = "en",
    data_dir: str | Path | None = None,
    attention: AttentionAnalysis | None = None,
    baseline: str | Path | None = None,
) -> ReportContext:
    """Everything the sections share; `attention` takes an analysis already made (newslab manual's step 4)."""
    ctx = ReportContext(
        results,
        Plotter(Path(report_dir) / "figures", lang),
        str(data_dir) if data_dir else None,
        baseline=Path(baseline) if baseline else None,
    )
    if attention is not None:
        ctx.__dict__["attention"] = attention  # fills the cached_property
    return ctx


def environment() -> dict[str, str]:
    """This machine and the versions of what the results depend on."""
    import torch

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "platform": platform.platform(),
        "cpu": f"{cpu} ({cores} cores available)",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "python": sys.version.split()[0],
    }
    for package in PACKAGES:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def _baseline_line(folder: RunFolder, w: Words) -> str:
    final, config = folder.final(), folder.config()
    settings = w.point({k: config[k] for k in ("embed_dim", "num_heads", "lr", "epochs")})
    return (
        f"{w['baseline_run']}: {settings}; {w['val_acc']} {w.pct(final.get('best_val_accuracy'))}, "
        f"{w['test_acc']} {w.pct(final.get('test_accuracy'))} ({final.get('status')}, {folder.path})"
    )


def setup_section(ctx: ReportContext) -> Section:
    w = ctx.w
    section = Section("setup", w["setup"])
    studies = [
        f"{r.name}: {w.counts(r.counts())}; {w['seeds']} {r.spec.seed_list}; "
        f"{w['fixed']} {json.dumps(r.spec.fixed, sort_keys=True)}"
        for r in ctx.results
    ]
    section.add(Para(w["studies"]), Bullets(studies))
    baseline = RunFolder(ctx.baseline) if ctx.baseline is not None else None
    if baseline is not None and baseline.final_file.is_file():
        section.add(Para(_baseline_line(baseline, w)))
    best = ctx.best
    dataset = None if isinstance(best, str) else best.dataset
    if dataset is not None:
        rows = ", ".join(f"{k} {v}" for k, v in dataset.info["rows"].items())
        section.add(
            Para(f"{w['data']}: {dataset.info['data_dir']} ({rows})"),
            tables.data_table(dataset.info, w),
            Para(f"{w['tokenizer']}: {json.dumps(dataset.info['tokenizer'], sort_keys=True)}"),
        )
    else:
        section.add(Para(f"{w['data']}: {w['unavailable']} ({best if isinstance(best, str) else best.data_error})"))
    machine = environment()
    trained = None if isinstance(best, str) else RunFolder(best.run_dir)
    if trained is not None and trained.final_file.is_file():
        final = trained.final()
        machine["trained on"] = f"{final.get('device')} (torch {final.get('torch')})"
    section.add(Para(w["hardware"]), Bullets([f"{k}: {v}" for k, v in machine.items()]))
    return section.add(Para(w["reproduce"]), Code("\n".join(ctx.commands)))


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
    w, plotter = ctx.w, ctx.plotter
    draw = plotter.draw
    section = Section("impact", w["impact"]).add(Para(w["impact_intro"]))
    grids = [r for r in ctx.results if r.points() and not fx.is_ablation_study(r)]
    if not grids:
        return section.add(Para(w["no_grid_study"]))
    for result in grids:
        for figure in (
            draw(plotter.hyperparameters, result),
            draw(plotter.lr_bars, result),
            draw(plotter.learning_curves, result),
        ):
            section.add(Image(figure) if figure else None)
    return section


def ablation_section(ctx: ReportContext) -> Section:
    w, plotter = ctx.w, ctx.plotter
    draw = plotter.draw
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
        figure = draw(plotter.ablations, result.name, ablations.effects)
        curves = draw(plotter.learning_curves, result)
        section.add(
            tables.ablation_table(ablations, w), Image(figure) if figure else None, Image(curves) if curves else None
        )
    return section


def best_model_section(ctx: ReportContext) -> Section:
    w, plotter = ctx.w, ctx.plotter
    section = Section("best-model", w["best_model"])
    best = ctx.best
    if isinstance(best, str):
        return section.add(Para(f"{w['unavailable']}: {best}."))
    config = w.point({**best.summary.point, **best.summary.nuisance})
    section.add(Para(f"{w['best_intro']} {best.study}: {config}, seed {best.trial.seed}, {best.run_dir}"))
    cm = best.confusion().numpy()
    section.add(
        Image(plotter.draw(plotter.confusion, cm, best.class_names, best.study)), tables.per_class_table(best, w)
    )
    examples = tables.misclassified_table(best, w)
    if examples is not None:
        examples.caption = w["misclassified"]
    return section.add(examples or Para(f"{w['misclassified']}: {best.data_error or '–'}"))


def attention_section(ctx: ReportContext) -> Section:
    w, plotter = ctx.w, ctx.plotter
    draw = plotter.draw
    section = Section("attention", w["attention"])
    analysis = ctx.attention
    if isinstance(analysis, str):
        return section.add(Para(f"{w['unavailable']}: {analysis}."))
    sample = analysis.sample
    names = analysis.class_names
    section.add(
        Para(w["attention_intro"]),
        Para(
            f"{w['sample']} #{sample.index}: \u201c{sample.text}\u201d ({w['true']}: {w.class_name(names[sample.label])}, "
            f"{w['predicted']}: {w.class_name(names[sample.predicted])})"
        ),
    )
    section.add(
        Image(draw(plotter.attention_head, sample.tokens, sample.weights[0][0].numpy(), 0, 0)),
        Image(draw(plotter.attention_grid, sample.tokens, [lw.numpy() for lw in sample.weights])),
    )
    heads = analysis.heads
    section.add(
        Para(w["heads_intro"].format(n=heads.samples, u=heads.uniform_entropy)),
        Image(draw(plotter.head_summary, heads.entropy.numpy(), heads.distance.numpy(), heads.uniform_entropy)),
        tables.head_table(heads, w),
    )
    return section


def conclusions_section(ctx: ReportContext) -> Section:
    return Section("conclusions", ctx.w["conclusions"]).add(Bullets([c.text for c in ctx.claims]))


# The report's sections in reading order: build.write_report builds each of these, and only these.
SECTIONS: list[Callable[[ReportContext], Section]] = [
    setup_section,
    results_section,
    impact_section,
    ablation_section,
    best_model_section,
    attention_section,
    conclusions_section,
]
