"""The report's sections, each built from a ReportContext (the studies, the words of one
language, the figure maker). Each can be built alone, as the notebook does step by step.

SECTIONS lists the report's sections in reading order; the report builds exactly these. A new
section is one function `(ReportContext) -> Section` and one entry in SECTIONS.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import names
from ..errors import NewslabError
from ..runs import RunFolder
from ..study.results import StudyResult
from . import effects as fx
from . import tables
from .attention import (
    BROAD_ENTROPY,
    COMPARED_ABLATION,
    FOCUSED_ENTROPY,
    POSITIONAL_DISTANCE,
    SAMPLE_TOKENS,
    SELF_SHARE,
    AttentionAnalysis,
    SampleChoice,
    SampleChoiceError,
    analyse_run,
    compared_run,
)
from .bestmodel import BestRun, best_run
from .classical import Standing, standing
from .conclusions import Claim, FollowUp, claim_bullets, conclusions
from .i18n import Reason, Words
from .plots import Plotter
from .positional import KEY, EncodingComparison, compare_encodings, encoding_studies
from .pretraining import PretrainingAnalysis, analyse_pretraining, pretraining_studies
from .render import Bullets, Code, Image, Para, Section
from .scale import Lengths, ScaleAnalysis, analyse_scale, scale_studies
from .search import SearchAnalysis, analyse_search, is_search, search_studies
from .stats import MIN_SEEDS

PACKAGES = (
    "newslab",
    "torch",
    "tokenizers",
    "numpy",
    "optuna",
    "pandas",
    "scipy",
    "matplotlib",
    "seaborn",
    "scikit-learn",
)


@dataclass
class ReportContext:
    results: list[StudyResult]
    plotter: Plotter
    data_dir: str | None = None
    commands: list[str] = field(default_factory=list)  # the setup section's "reproduce" commands
    baseline: Path | None = None  # a baseline run folder the setup section describes
    followups: list[FollowUp] = field(default_factory=list)  # follow-up specs written beside the report
    sample: SampleChoice = field(default_factory=SampleChoice)  # the attention section's validation row

    @property
    def w(self) -> Words:
        return Words(self.lang)

    @property
    def lang(self) -> str:
        return self.plotter.requested_lang

    @functools.cached_property
    def best(self) -> BestRun | str:
        """The selected model's run, or the reason it cannot be analysed."""
        try:
            return best_run(self.results, self.data_dir)
        except NewslabError as exc:
            return self.w.say(exc.args[0]) if exc.args else str(exc)

    @functools.cached_property
    def attention(self) -> AttentionAnalysis | str:
        if isinstance(self.best, str):
            return self.best
        if self.best.dataset is None:
            return self.w.say(self.best.data_error or Reason("why_no_data"))
        try:
            return analyse_run(
                self.best.run_dir,
                self.data_dir,
                dataset=self.best.dataset,
                choice=self.sample,
                compared_run=compared_run(self.results),
            )
        except SampleChoiceError:
            raise  # a flag naming no row fails the command: the report must not show another sample silently
        except NewslabError as exc:  # worded for the reader; the English cause shows in the English report only
            cause = exc.args[0] if exc.args else None
            reason = cause if isinstance(cause, Reason) else Reason("attention_failed", run=self.best.run_dir, why=exc)
            return self.w.say(reason)

    @functools.cached_property
    def classical(self) -> Standing | str | None:
        """The classical baselines of `classical_study`, or why they are missing; None without such a study."""
        grid = classical_study(self.results)
        if grid is None:
            return None
        try:
            return standing(grid, self.data_dir)
        except NewslabError as exc:
            return self.w.say(exc.args[0]) if exc.args else str(exc)

    @functools.cached_property
    def encodings(self) -> list[EncodingComparison]:
        """Every positional-encoding study's comparison (report/positional.py)."""
        return [compare_encodings(result, self.data_dir) for result in encoding_studies(self.results)]

    @functools.cached_property
    def scales(self) -> list[ScaleAnalysis]:
        """Every sequence-length and batch-size study's analysis (report/scale.py)."""
        return [analyse_scale(result, self.data_dir) for result in scale_studies(self.results)]

    @functools.cached_property
    def pretrainings(self) -> list[PretrainingAnalysis]:
        """Every pretraining study's analysis (report/pretraining.py)."""
        return [analyse_pretraining(result) for result in pretraining_studies(self.results)]

    @functools.cached_property
    def searches(self) -> list[SearchAnalysis]:
        """Every search study's analysis (report/search.py)."""
        return [analyse_search(result) for result in search_studies(self.results)]

    @functools.cached_property
    def claims(self) -> list[Claim]:
        attention = self.attention if isinstance(self.attention, AttentionAnalysis) else None
        classical = self.classical if isinstance(self.classical, Standing) else None
        chapters = (self.encodings, self.scales, self.pretrainings, self.searches)
        return conclusions(self.results, self.lang, self.followups, attention, classical, *chapters)


def context(
    results: list[StudyResult],
    report_dir: str | Path,
    lang: str = "en",
    data_dir: str | Path | None = None,
    attention: AttentionAnalysis | None = None,
    baseline: str | Path | None = None,
    sample: SampleChoice | None = None,
) -> ReportContext:
    """Everything the sections share; `attention` takes an analysis already made (newslab manual's step 4),
    `sample` the validation row the attention section shows (default: the first suitable one)."""
    ctx = ReportContext(
        results,
        Plotter(Path(report_dir) / "figures", lang),
        str(data_dir) if data_dir else None,
        baseline=Path(baseline) if baseline else None,
        sample=sample or SampleChoice(),
    )
    if attention is not None:
        ctx.__dict__["attention"] = attention  # fills the cached_property
    return ctx


def environment() -> dict[str, str | int | None]:
    """This machine and the versions of what the results depend on (None: no GPU, a package not installed)."""
    import torch

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        models = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    info: dict[str, str | int | None] = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": sys.version.split()[0],
    }
    for package in PACKAGES:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    return info


def _machine_lines(info: dict[str, str | int | None], trained_on: str | None, w: Words) -> list[str]:
    """The environment in the report's words: package names as they are, the rest translated."""
    lines = [
        f"{w['env_platform']}{w.colon}{info['platform']}",
        f"{w['env_cpu']}{w.colon}{info['cpu']} ({w['env_cores'].format(n=info['cores'])})",
        f"{w['env_gpu']}{w.colon}{info['gpu'] or w['none']}",
        f"{w['env_python']}{w.colon}{info['python']}",
    ]
    lines += [f"{package}{w.colon}{info[package] or w['not_installed']}" for package in PACKAGES]
    return lines + ([f"{w['env_trained_on']}{w.colon}{trained_on}"] if trained_on else [])


def _baseline_line(folder: RunFolder, w: Words) -> str:
    final, config = folder.final(), folder.config()
    settings = w.point({k: config[k] for k in ("embed_dim", "num_heads", "lr", "epochs")})
    # no test accuracy: the baseline run is not the selected configuration, and test stays sealed
    return (
        f"{w['baseline_run']}: {settings}; {w['val_acc']} {w.pct(final.get('best_val_accuracy'))} "
        f"({names.state(str(final.get('status')), w.lang)}, {folder.path})"
    )


def setup_section(ctx: ReportContext) -> Section:
    w = ctx.w
    section = Section("setup", w["setup"])
    studies = [
        f"{r.name}{w.colon}{w.counts(r.counts())}{w.semicolon}{w['selection_seeds']} {r.spec.seed_list}{w.comma}"
        f"{w['confirmation_seeds']} {r.spec.confirm_seed_list}{w.semicolon}"
        f"{w['fixed']} {w.point(dict(sorted(r.spec.fixed.items())))}"
        for r in ctx.results
    ]
    section.add(Para(w["studies"]), Bullets(studies))
    baseline = RunFolder(ctx.baseline) if ctx.baseline is not None else None
    if baseline is not None and baseline.final_file.is_file():
        section.add(Para(_baseline_line(baseline, w)))
    best = ctx.best
    dataset = None if isinstance(best, str) else best.dataset
    if dataset is not None:
        rows = w.point({f"split_{k}": v for k, v in dataset.info["rows"].items()})
        section.add(
            Para(f"{w['data']}{w.colon}{dataset.info['data_dir']} ({rows})"),
            tables.data_table(dataset.info, w),
            Para(f"{w['tokenizer']}{w.colon}{w.point(dict(sorted(dataset.info['tokenizer'].items())))}"),
        )
    else:
        why = best if isinstance(best, str) else w.say(best.data_error or Reason("why_no_data"))
        section.add(Para(f"{w['data']}{w.colon}{w['unavailable']} ({why})"))
    trained = None if isinstance(best, str) else RunFolder(best.run_dir)
    trained_on = None
    if trained is not None and trained.final_file.is_file():
        final = trained.final()
        trained_on = f"{final.get('device')} (torch {final.get('torch')})"
    section.add(Para(w["hardware"]), Bullets(_machine_lines(environment(), trained_on, w)))
    return section.add(Para(w["reproduce"]), Code("\n".join(ctx.commands)))


METHOD: dict[str, tuple[str, str]] = {
    "study": (
        "{study}: selection seeds {seeds}: every configuration ({configs}) on each, to choose {chosen}; "
        "confirmation seeds {confirm}: each point once more at its chosen settings, trained exactly to its chosen "
        "epoch, on a fresh validation split.",
        "{study}：选择种子 {seeds}：每个配置（{configs}）在每个种子上运行，用于选出{chosen}；确认种子 {confirm}："
        "每个点以其选定的设置再运行一次，恰好训练到选定的轮次，并使用新的验证集划分。",
    ),
    "chosen": (
        "per point its {nuisance} and epoch, and the best point",
        "每个点的{nuisance}和轮次，以及最佳的点",
    ),
    "chosen_epoch_only": ("per point its epoch, and the best point", "每个点的轮次，以及最佳的点"),
    "configs": ("{points} points × {values} {nuisance} values", "{points} 个点 × {values} 个{nuisance}取值"),
    "configs_points": ("{points} points", "{points} 个点"),
    "study_unconfirmed": (
        "{study}: selection seeds {seeds}: every configuration ({configs}) on each, to choose {chosen}; no "
        "confirmation seeds (confirm_seeds: 0): nothing is confirmed, so its accuracies are optimistic and none of "
        "its comparisons is tested.",
        "{study}：选择种子 {seeds}：每个配置（{configs}）在每个种子上运行，用于选出{chosen}；没有确认种子"
        "（confirm_seeds: 0）：没有任何确认，因此其准确率偏乐观，且不检验任何比较。",
    ),
    "stages": (
        "Every study runs in two stages, so that no verdict rests on the runs that chose. Selection: every "
        "configuration runs on the selection seeds; per point, the nuisance value (lr) and the epoch with the best "
        "mean validation accuracy are chosen, and the best point overall. Confirmation: every point runs again at "
        "its chosen values on fresh seeds and a fresh validation split (--split-seed + 1: the rows that chose do "
        "not judge), trained to the chosen epoch and kept there (--stop-epoch, no early stopping). Every estimate, interval and verdict of this report comes from the confirmation runs, unless "
        "it says it comes from the selection runs.",
        "每个研究分两个阶段运行，使任何判断都不依赖做出选择的那些运行。选择阶段：每个配置在选择种子上运行；"
        "对每个点，选出平均验证准确率最高的干扰参数取值（学习率）和轮次，并选出整体最佳的点。确认阶段："
        "每个点以其选定的取值在新种子和新的验证集划分上再运行一次（--split-seed + 1：做出选择的验证样本不参与评判），"
        "训练到选定的轮次并保留该轮的模型（--stop-epoch，不提前停止）。"
        "除非另有说明，本报告的每个估计、区间和判断都来自确认运行。",
    ),
    "test": (
        "The test: two configurations trained on the same seed see the data in the same order, and every run "
        "predicts the same validation rows. A comparison therefore takes the per-row difference of correctness, "
        "paired by seed and validation row, and tests its mean with a two-way random-effects ANOVA (seed × row): "
        "its interval covers a new draw of seeds and of validation rows (the validation set is finite), not "
        "only seed-to-seed noise, with Satterthwaite's degrees of freedom. Comparisons made together form a "
        "family (the ablations against the baseline; the factors of a grid, each its best against its worst value "
        "as the selection runs rank them; the pairs of lrs at every size): "
        "within it p is multiplied by the family size (Bonferroni) and the interval widened to match, so an "
        "interval excludes 0 exactly when the verdict is significant. A test needs at least {min_seeds} seeds.",
        "检验方法：在同一种子上训练的两个配置以相同顺序看到数据，而每次运行都预测同样的验证样本。因此比较时取按种子和验证样本"
        "配对的逐样本正确性之差，用双因素随机效应方差分析（种子 × 样本）检验其均值：区间同时涵盖种子和验证样本的重新抽取"
        "（验证集是有限的），而不只是种子间的噪声，自由度按 Satterthwaite 方法计算。一起进行的比较构成一个比较族"
        "（各消融与基线的比较；网格的各因素，各自按选择运行排出的最好值对最差值；各规模下学习率的两两比较）：族内 p 值乘以族的大小（Bonferroni），区间相应放宽，"
        "因此区间不含 0 当且仅当判断为显著。检验至少需要 {min_seeds} 个种子。",
    ),
    "verdicts": (
        "Verdicts: significant (the interval excludes 0); inconclusive (it does not: the interval bounds the "
        "difference, and the smallest detectable difference, at 80% power, says how large a difference these runs "
        "could have missed; an inconclusive result is not evidence that the difference is absent); untested (no "
        "test was possible, and the reason is given).",
        "判断：显著（区间不含 0）；无定论（区间含 0：区间给出差异的范围，80% 功效下的最小可检测差异说明这些运行可能漏掉多大的"
        "差异；无定论并不说明差异不存在）；未检验（无法进行检验，并说明原因）。",
    ),
    "sealed": (
        "Test accuracy is sealed: it is never used to choose, and it is shown only for the selected configuration "
        "(from its confirmation runs) and, in the best-model section, for its model. Tests among the choices "
        "themselves (does lr matter at a given size?) use the selection runs that made those choices: best "
        "against worst is the most extreme of all their pairs, and the family adjustment counts every pair.",
        "测试准确率是封存的：它从不用于选择，只对选中的配置（来自其确认运行）以及最佳模型部分中的该模型给出。"
        "对候选值本身的检验（在某个规模下学习率是否重要？）使用做出这些选择的选择运行：最佳与最差之比是所有两两比较中"
        "最极端的一个，族校正计入了所有两两比较。",
    ),
}


def _method_line(result: StudyResult, w: Words) -> str:
    i = 0 if w.lang == "en" else 1
    spec = result.spec
    nuisance = spec.parameter_names("nuisance")
    points = math.prod(len(values) for values in spec.scientific.values())
    named = "/".join(w.param(n) for n in nuisance)
    values = math.prod(len(choices) for choices in spec.nuisance.values())
    configs = (
        METHOD["configs"][i].format(points=points, nuisance=named, values=values)
        if nuisance
        else METHOD["configs_points"][i].format(points=points)
    )
    chosen = METHOD["chosen"][i].format(nuisance=named) if nuisance else METHOD["chosen_epoch_only"][i]
    template = METHOD["study"] if spec.confirm_seed_list else METHOD["study_unconfirmed"]
    return template[i].format(
        study=result.name, seeds=spec.seed_list, configs=configs, chosen=chosen, confirm=spec.confirm_seed_list
    )


def method_section(ctx: ReportContext) -> Section:
    """The protocol in plain words: which runs chose, which confirmed, how a comparison is tested."""
    w = ctx.w
    i = 0 if w.lang == "en" else 1
    section = Section("method", w["method"]).add(Para(METHOD["stages"][i]))
    if ctx.results:
        section.add(Bullets([_method_line(r, w) for r in ctx.results]))
    return section.add(
        Para(METHOD["test"][i].format(min_seeds=MIN_SEEDS)), Para(METHOD["verdicts"][i]), Para(METHOD["sealed"][i])
    )


def classical_study(results: list[StudyResult]) -> StudyResult | None:
    """The study whose selected Transformer the classical baselines are compared with: the first grid."""
    return next((r for r in results if r.points() and not fx.is_ablation_study(r)), None)


def results_section(ctx: ReportContext) -> Section:
    w = ctx.w
    section = Section("results", w["results"]).add(Para(w["results_intro"]))
    for result in ctx.results:
        section.add(Para(f"{result.name} ({w.counts(result.counts())})"))
        if not result.points():
            section.add(Para(f"{w['no_completed']}: {result.name}."), tables.failures_table(result, w))
            continue
        selected = None if fx.is_ablation_study(result) else Para(tables.selected_line(result, w))
        ours = result is classical_study(ctx.results)  # the study the classical baselines stand beside
        references = ctx.classical.baselines if ours and isinstance(ctx.classical, Standing) else None
        section.add(tables.results_table(result, w, references), selected)
        if ours and isinstance(ctx.classical, str):
            section.add(Para(w["classical_unavailable"].format(why=ctx.classical)))
        section.add(tables.failures_table(result, w))
    return section


def impact_section(ctx: ReportContext) -> Section:
    w, plotter = ctx.w, ctx.plotter
    draw = plotter.draw
    section = Section("impact", w["impact"]).add(Para(w["impact_intro"]))
    # a search's points are its sampler's draws, not levels to plot: its own chapter shows it
    grids = [r for r in ctx.results if r.points() and not fx.is_ablation_study(r) and not is_search(r)]
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
        ablations = fx.ablation_effects(result)
        if ablations.base is None:
            section.add(Para(f"{w['no_completed_baseline']}: {result.name} ({w.counts(result.counts())})."))
            continue
        if not ablations.effects:
            section.add(Para(f"{w['no_completed_variant']}: {result.name} ({w.counts(result.counts())})."))
        figure = draw(plotter.ablations, result.name, ablations.effects, result.spec.choices("ablation"))
        curves = draw(plotter.learning_curves, result)
        section.add(
            tables.ablation_table(ablations, w), Image(figure) if figure else None, Image(curves) if curves else None
        )
    return section


def _chapter(ctx: ReportContext, key: str, analyses: list, add: Callable[[Section, Any], None]) -> Section:
    """A chapter of the original manual's TODO list: its title, a line when no study of it is in the report,
    else its introduction and, per study, its name and counts followed by what `add(section, analysis)` adds."""
    w = ctx.w
    section = Section(key, w[key])
    if not analyses:
        return section.add(Para(w[f"no_{key}_study"]))
    section.add(Para(w[f"{key}_intro"]))
    for analysis in analyses:
        result = analysis.study
        section.add(Para(f"{result.name} ({w.counts(result.counts())})"))
        add(section, analysis)
    return section


def positional_section(ctx: ReportContext) -> Section:
    w, plotter = ctx.w, ctx.plotter

    def add(section: Section, comparison: EncodingComparison) -> None:
        result, accuracy = comparison.study, comparison.accuracy
        if accuracy.base is None:
            reference = w.value(KEY, accuracy.reference)
            section.add(Para(f"{w['no_reference_encoding'].format(reference=reference)}."))
        else:
            order, reference = result.spec.choices(KEY), accuracy.reference
            chart = plotter.draw(plotter.ablations, result.name, accuracy.effects, order, key=KEY, reference=reference)
            section.add(tables.ablation_table(accuracy, w), Image(chart) if chart else None)
        heads = [(w.value(KEY, m.name), m.heads) for m in comparison.heads if m.heads is not None]
        figure = plotter.draw(plotter.encoding_heads, result.name, heads)
        section.add(
            Para(w["positional_heads_intro"]),
            tables.encoding_heads_table(comparison, w),
            Image(figure) if figure else None,
        )

    return _chapter(ctx, "positional", ctx.encodings, add)


def scale_section(ctx: ReportContext) -> Section:
    w, plotter = ctx.w, ctx.plotter

    def add(section: Section, analysis: ScaleAnalysis) -> None:
        name = analysis.study.name
        max_lens = [p.max_len for p in analysis.points]
        if isinstance(analysis.lengths, Lengths):
            figure = plotter.draw(plotter.lengths, name, analysis.lengths, max_lens)
            section.add(tables.lengths_table(analysis.lengths, max_lens, w), Image(figure))
        else:
            section.add(Para(f"{w['lengths_unavailable']}{w.colon}{w.say(analysis.lengths)}"))
        time_figure = plotter.draw(plotter.scale_time, name, analysis)
        rule_figure = plotter.draw(plotter.lr_rule, name, analysis.rule)
        section.add(
            tables.scale_table(analysis, w),
            Image(time_figure) if time_figure else None,
            Para(w["lr_rule_intro"]),
            Image(rule_figure) if rule_figure else None,
        )

    return _chapter(ctx, "scale", ctx.scales, add)


def pretraining_section(ctx: ReportContext) -> Section:
    # a pretraining study's learning curves are the hyperparameter section's, as every grid's
    add = lambda section, analysis: section.add(tables.pretraining_table(analysis, ctx.w))
    return _chapter(ctx, "pretraining", ctx.pretrainings, add)


def search_section(ctx: ReportContext) -> Section:
    w, plotter = ctx.w, ctx.plotter

    def add(section: Section, analysis: SearchAnalysis) -> None:
        name = analysis.study.name
        history = plotter.draw(plotter.search_history, name, analysis)
        section.add(Image(history) if history else None)
        if isinstance(analysis.importances, dict):
            figure = plotter.draw(plotter.importances, name, analysis.importances)
            section.add(Image(figure) if figure else None)
        else:
            section.add(Para(f"{w['importance']}{w.colon}{w.say(analysis.importances)}."))

    return _chapter(ctx, "search", ctx.searches, add)


def best_model_section(ctx: ReportContext) -> Section:
    w, plotter = ctx.w, ctx.plotter
    section = Section("best-model", w["best_model"])
    best = ctx.best
    if isinstance(best, str):
        return section.add(Para(f"{w['unavailable']}: {best}."))
    config = w.point({**best.summary.point, **best.summary.nuisance})
    where = f"{w.param('seed')} {best.trial.seed}{w.comma}{w['run_folder']} {best.run_dir}"
    section.add(Para(f"{w['best_intro']} {best.study}{w.colon}{config}{w.comma}{where}"))
    cm = best.confusion().numpy()
    section.add(
        Image(plotter.draw(plotter.confusion, cm, best.class_names, best.study)), tables.per_class_table(best, w)
    )
    examples = tables.misclassified_table(best, w)
    if examples is not None:
        examples.caption = w["misclassified"]
    return section.add(examples or Para(f"{w['misclassified']}{w.colon}{w.say(best.data_error or '–')}"))


def _sample_line(analysis: AttentionAnalysis, w: Words) -> str:
    """The sample shown: which row, why it was chosen, its classes and its [UNK] share."""
    sample, names, choice = analysis.sample, analysis.class_names, analysis.choice
    low, high = SAMPLE_TOKENS
    if choice.index is not None:
        why = w["sample_chosen_index"]
    elif choice.class_name is not None:
        why = w["sample_chosen_class"].format(name=w.class_name(names[sample.label]), low=low, high=high)
    else:
        why = w["sample_chosen_default"].format(low=low, high=high)
    unknown = sample.tokens.count("[UNK]")
    c, (o, e) = w.colon, ("（", "）") if w.lang == "zh" else (" (", ")")  # Chinese takes full-width brackets
    return (
        f"{w['sample']} #{sample.index}{o}{why}{e}{c}\u201c{sample.text}\u201d{o}{w['true']}{c}"
        f"{w.class_name(names[sample.label])}{w.comma}{w['predicted']}{c}{w.class_name(names[sample.predicted])}"
        f"{w.semicolon}{w['unknown_share']} {w.pct(sample.unknown_share, 1)}{c}{unknown}/{len(sample.tokens)}{e}"
    )


def attention_section(ctx: ReportContext) -> Section:
    w, plotter = ctx.w, ctx.plotter
    draw = plotter.draw
    section = Section("attention", w["attention"])
    analysis = ctx.attention
    if isinstance(analysis, str):
        return section.add(Para(f"{w['unavailable']}{w.colon}{analysis}"))
    sample = analysis.sample
    section.add(
        Para(w["attention_intro"]),
        Para(_sample_line(analysis, w)),
        Image(draw(plotter.attention_head, sample.tokens, sample.weights[0][0].numpy(), 0, 0)),
        Image(draw(plotter.attention_grid, sample.tokens, [lw.numpy() for lw in sample.weights])),
    )
    heads, compared = analysis.heads, analysis.compared
    name = w.ablation(COMPARED_ABLATION)
    section.add(
        Para(w["heads_intro"].format(n=heads.samples, unk=w.pct(heads.unknown_share, 1))),
        Para(
            w["heads_kinds"].format(
                self=SELF_SHARE, positional=POSITIONAL_DISTANCE, broad=BROAD_ENTROPY, focused=FOCUSED_ENTROPY
            )
        ),
    )
    if compared is not None:
        rows = w["rows_same" if analysis.same_rows else "rows_own"].format(n=compared.samples)
        unk = w.pct(compared.unknown_share, 1)
        text = w["heads_compared"].format(name=name, run=compared.run_dir, rows=rows, unk=unk)
        section.add(Para(text))
    elif analysis.compared_note:
        section.add(Para(w["heads_compared_missing"].format(name=name, why=w.say(analysis.compared_note))))
    summaries = [(w["selected_model"], heads)] + ([(name, compared)] if compared is not None else [])
    return section.add(Image(draw(plotter.head_summary, summaries)), tables.head_table(heads, w, compared))


def conclusions_section(ctx: ReportContext) -> Section:
    return Section("conclusions", ctx.w["conclusions"]).add(claim_bullets(ctx.claims))


# The report's sections in reading order: build.write_report builds each of these, and only these.
SECTIONS: list[Callable[[ReportContext], Section]] = [
    setup_section,
    method_section,
    results_section,
    impact_section,
    ablation_section,
    positional_section,
    scale_section,
    pretraining_section,
    search_section,
    best_model_section,
    attention_section,
    conclusions_section,
]
