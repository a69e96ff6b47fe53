"""`newslab manual`: the whole handbook, end to end and resumable.

Baseline run -> grid study -> ablation study at the grid's best configuration -> the preset's
chapters (the original manual's TODO list: other positional encodings, …), each a study at the
grid's best configuration -> attention analysis of the selected model -> report. The CLI and
notebooks/transformer_manual.ipynb call these same functions, step by step or all at once with
`run_manual`; what to run after the report (the follow-up specs, the original manual's TODO list)
is manual_next.py's.

Resuming: the studies live in Optuna storage, so a re-run only runs the trials that are not
complete; the baseline run has a fixed folder, which is not run again once it holds a completed
run of the same settings (newslab.runs.finished_result).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import RunConfig, data_dir_default, settable_in_studies
from .errors import ConfigError, NewslabError
from .report import ReportFiles, build_report
from .report.attention import AttentionAnalysis, SampleChoice, analyse_run, compared_run
from .report.bestmodel import best_run
from .report.i18n import Reason, Words
from .runs import RunResult, finished_result, run_path
from .study import StudyResult, StudySpec, default_storage, load_spec, open_storage, run_study, study_results
from .study.results import study_progress
from .train import train

Log = Callable[[str], None]


@dataclass(frozen=True)
class ManualPreset:
    grid: str  # study preset of the grid
    ablations: str  # study preset of the ablations (its base_study is replaced by the grid's name)
    name: str | None = None  # study name prefix when the studies differ from the presets
    seeds: int | None = None  # None: the presets' own (3)
    epochs: int | None = None  # None: the presets' own
    threads: int | None = None  # torch threads per worker; None: cores / workers
    workers: int = 1  # study workers unless --workers says otherwise
    chapters: tuple[str, ...] = ()  # study presets run after the ablations, each from the grid's best configuration


# the chapter presets of each grid preset, which `--chapter NAME` may add to any manual preset of that grid
CHAPTERS = {
    "quick-grid": ("quick-pos-enc", "quick-scale", "quick-pretraining", "quick-search"),
    "seed-grid": ("pos-enc", "scale", "pretraining", "search"),
}
MANUAL_PRESETS = {
    # tiny models, where a second thread costs more in synchronisation than it computes: one
    # single-threaded worker per core of a 2-core laptop; no chapter, to stay within ten minutes
    "quick": ManualPreset("quick-grid", "quick-ablations", threads=1, workers=2),
    "seed": ManualPreset("seed-grid", "seed-ablations"),  # the original manual's settings
    "full": ManualPreset(
        "seed-grid", "seed-ablations", name="full", seeds=5, epochs=10, chapters=CHAPTERS["seed-grid"]
    ),
}


@dataclass
class ManualPlan:
    preset: str
    baseline: RunConfig
    grid: StudySpec
    ablations: StudySpec
    chapters: list[StudySpec]  # run after the ablations, in this order
    out_dir: Path
    storage_url: str
    lang: str = "en"
    data_dir: str | None = None
    workers: int = 1
    threads: int | None = None
    sample: SampleChoice = field(default_factory=SampleChoice)  # the attention section's validation row
    added_chapters: tuple[str, ...] = ()  # chapter presets --chapter added to the preset's own

    @property
    def baseline_dir(self) -> Path:
        return run_path(self.baseline)

    @property
    def report_dir(self) -> Path:
        return self.out_dir / "report"

    @property
    def command(self) -> str:
        data_dir = self.data_dir or os.environ.get("NEWSLAB_DATA_DIR")
        data = f"NEWSLAB_DATA_DIR={data_dir} " if data_dir else ""
        added = "".join(f" --chapter {name}" for name in self.added_chapters)
        where = f"--out-dir {self.out_dir} --lang {self.lang}{self.sample.flags()}{added}"
        return f"{data}newslab manual --preset {self.preset} {where}"


def _with(spec: StudySpec, **changes) -> StudySpec:
    return StudySpec(**{**spec.to_dict(), **changes})


def manual_plan(
    preset: str = "quick",
    *,
    out_dir: str | Path = "outputs",
    storage_url: str | None = None,
    data_dir: str | Path | None = None,
    lang: str = "en",
    workers: int | None = None,
    threads: int | None = None,
    sample: SampleChoice | None = None,
    chapters: list[str] | None = None,
) -> ManualPlan:
    """What `newslab manual --preset PRESET` runs, without running anything; `chapters` (--chapter) adds chapter
    presets of the preset's grid (CHAPTERS) to the preset's own."""
    if preset not in MANUAL_PRESETS:
        raise ConfigError(f"--preset {preset!r} is not one of: {' | '.join(MANUAL_PRESETS)}")
    p = MANUAL_PRESETS[preset]
    offered = CHAPTERS.get(p.grid, ())
    for name in chapters or []:
        if name not in offered:
            raise ConfigError(f"--chapter {name!r} is not a chapter of --preset {preset}: {' | '.join(offered)}")
    added = tuple(name for name in dict.fromkeys(chapters or []) if name not in p.chapters)
    names = [*p.chapters, *added]
    grid, ablations = load_spec(p.grid, seeds=p.seeds), load_spec(p.ablations, seeds=p.seeds)
    extra = [load_spec(name) for name in names]
    extra = [c if c.search is not None or not p.seeds else _with(c, seeds=p.seeds) for c in extra]  # a search: 1 seed
    epochs = {"epochs": p.epochs} if p.epochs else {}
    if p.name:
        grid = _with(grid, name=f"{p.name}-grid", fixed={**grid.fixed, **epochs})
        ablations = _with(
            ablations, name=f"{p.name}-ablations", base_study=grid.name, fixed={**ablations.fixed, **epochs}
        )
    # a chapter starts from this manual's grid, under the preset's name ("full-pos-enc")
    extra = [
        _with(c, name=f"{p.name}-{c.name}" if p.name else c.name, base_study=grid.name, fixed={**c.fixed, **epochs})
        for c in extra
    ]
    out = Path(out_dir)
    # The baseline: newslab train's defaults under the grid's fixed settings (epochs, data subset).
    known = {*settable_in_studies(), "ablation"}  # what a spec may fix
    baseline = RunConfig.create(
        {k: v for k, v in grid.fixed.items() if k in known},
        source=f"manual preset {preset} (grid {grid.name})",
        run_name=f"manual-{preset}-baseline",
        out_dir=str(out),
        threads=threads or p.threads,
    )
    return ManualPlan(
        preset,
        baseline,
        grid,
        ablations,
        extra,
        out,
        storage_url or default_storage(out),
        lang,
        str(data_dir) if data_dir else None,
        workers or p.workers,
        threads or p.threads,
        sample or SampleChoice(),
        added,
    )


def run_baseline(plan: ManualPlan, log: Log = print, progress: bool = False) -> RunResult:
    """Train the baseline, unless its folder holds a completed run of the same settings (execution
    settings aside); an unfinished or different run there is replaced. `progress`: a bar over each
    epoch's batches (tqdm.auto: a widget in Jupyter) instead of timed progress lines."""
    done = finished_result(plan.baseline_dir, plan.baseline)
    if done is not None:
        log(f"baseline: already completed in {plan.baseline_dir} (not re-run)")
        return done
    with data_dir_default(plan.data_dir):
        return train(plan.baseline, run_dir=plan.baseline_dir, overwrite=True, log=log, progress=progress)


class TrialBar:
    """A tqdm.auto bar over a study's trials (k/N, elapsed, ETA; a widget in Jupyter), moved on by the
    study run's log callback: each line re-reads the study's counts from storage, so trials finished
    earlier (a resumed study) and trials of worker processes count alike."""

    def __init__(self, name: str, storage_url: str, log: Log | None = None):
        self.name, self.url, self.log = name, storage_url, log
        self.storage: Any = None
        self.bar: Any = None

    def __call__(self, line: str) -> None:
        if self.log is not None:
            self.log(line)
        try:
            self.storage = self.storage or open_storage(self.url)
            result = study_results(self.name, self.storage)
        except NewslabError:  # not created yet; a storage opened before it existed stays empty: reopen
            self.storage = None
            return
        self.show(result)

    def show(self, result: StudyResult) -> None:
        from tqdm.auto import tqdm

        done, total = study_progress(result)  # the whole study's, as its log lines count
        if self.bar is None:  # `initial`: a resumed study's finished trials do not speed up the ETA
            self.bar = tqdm(total=total, initial=done, desc=f"study {self.name}", unit="trial", dynamic_ncols=True)
        self.bar.total = total
        failed = result.counts()["failed"]
        self.bar.set_postfix_str(f"{failed} failed" if failed else "", refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(plan: ManualPlan, spec: StudySpec, log: Log | None, progress: bool) -> StudyResult:
    bar = TrialBar(spec.name, plan.storage_url, log) if progress else None
    try:
        with data_dir_default(plan.data_dir):
            result = run_study(
                spec,
                workers=plan.workers,
                storage_url=plan.storage_url,
                out_dir=plan.out_dir,
                threads=plan.threads,
                log=bar or log or (lambda _line: None),
            )
        if bar is not None:
            bar.show(result)  # the final counts: the last line may have come before the last trial ended
        return result
    finally:
        if bar is not None:
            bar.close()


def run_grid(plan: ManualPlan, log: Log | None = print, progress: bool = False) -> StudyResult:
    """The grid study. `progress`: a bar over its trials (TrialBar); `log` None: no lines."""
    return _run(plan, plan.grid, log, progress)


def run_ablations(plan: ManualPlan, log: Log | None = print, progress: bool = False) -> StudyResult:
    """The ablation study, at the best configuration of the finished grid study (`log`, `progress`: run_grid's)."""
    return _run(plan, plan.ablations, log, progress)


def run_chapter(plan: ManualPlan, spec: StudySpec, log: Log | None = print, progress: bool = False) -> StudyResult:
    """A chapter's study (one of `plan.chapters`), at the best configuration of the finished grid study."""
    return _run(plan, spec, log, progress)


def analyse_attention(plan: ManualPlan, grid: StudyResult, ablations: StudyResult | None = None) -> AttentionAnalysis:
    """Attention of the selected model (the grid's best configuration, its confirmation run of the lowest seed)
    on the sample `plan.sample` names, with the heads of `ablations`' no_pe model beside its own when it ran one."""
    best = best_run([grid], plan.data_dir)
    if best.dataset is None:
        w = Words(plan.lang)  # the manual's language, as the report words why the data is missing
        raise NewslabError(f"{w['attention_needs_texts']}{w.colon}{w.say(best.data_error or Reason('why_no_data'))}")
    compared = compared_run([ablations]) if ablations is not None else None
    return analyse_run(best.run_dir, plan.data_dir, dataset=best.dataset, choice=plan.sample, compared_run=compared)


def write_manual_report(
    plan: ManualPlan, attention: AttentionAnalysis | None = None, log: Log = print, ablations: bool = True
) -> ReportFiles:
    """The report of the grid, and (unless `ablations` is False: never run) the ablation study and chapters."""
    studies = [plan.grid.name, plan.ablations.name, *(c.name for c in plan.chapters)] if ablations else [plan.grid.name]
    return build_report(
        studies,
        storage_url=plan.storage_url,
        out_dir=plan.out_dir,
        report_dir=plan.report_dir,
        lang=plan.lang,
        data_dir=plan.data_dir,
        commands=[plan.command],
        baseline=plan.baseline_dir,
        attention=attention,
        sample=plan.sample,
        log=log,
    )


@dataclass
class ManualOutcome:
    plan: ManualPlan
    baseline: RunResult
    grid: StudyResult
    ablations: StudyResult | None  # None when every grid trial failed (nothing to ablate)
    chapters: list[StudyResult]  # likewise empty then
    report: ReportFiles
    wall_time_s: float

    @property
    def failed(self) -> bool:
        """No grid trial completed: the report only says why (the CLI exits 1)."""
        return not self.grid.points()


def run_manual(preset: str = "quick", *, log: Log = print, **options) -> ManualOutcome:
    """Every step; `options` are manual_plan's (out_dir, storage_url, data_dir, lang, workers, threads, sample,
    chapters)."""
    started = time.time()
    plan = manual_plan(preset, **options)
    steps = [
        "baseline run",
        f"grid study {plan.grid.name}",
        f"ablation study {plan.ablations.name}",
        *(f"chapter study {c.name}" for c in plan.chapters),
        "attention analysis",
        "report",
    ]
    step = lambda i: log(f"== [{i}/{len(steps)}] {steps[i - 1]} ({time.time() - started:.0f} s) ==")
    step(1)
    baseline = run_baseline(plan, log)
    step(2)
    grid = run_grid(plan, log)
    ablations = attention = None
    chapters: list[StudyResult] = []
    if grid.points():
        step(3)
        ablations = run_ablations(plan, log)
        for i, spec in enumerate(plan.chapters):
            step(4 + i)
            chapters.append(run_chapter(plan, spec, log))
        step(len(steps) - 1)
        attention = analyse_attention(plan, grid, ablations)
    else:  # the ablations start from the grid's best configuration, and there is none
        log(
            f"every trial of grid study {plan.grid.name} failed: skipping the ablation study and the attention "
            "analysis; the report says why"
        )
    step(len(steps))
    report = write_manual_report(plan, attention, log, ablations=ablations is not None)
    outcome = ManualOutcome(plan, baseline, grid, ablations, chapters, report, time.time() - started)
    log(
        f"manual --preset {preset}: {'FAILED' if outcome.failed else 'done'} in {outcome.wall_time_s:.0f} s; "
        f"open {report.html}"
    )
    return outcome
