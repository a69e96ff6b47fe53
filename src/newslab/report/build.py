"""`newslab report`: read studies from storage, build every section, write report.md,
report.html and the figures (PNG + SVG) into one folder, and beside them the follow-up specs
(next-grid.yaml, next-ablations.yaml) when the studies' design limits their conclusions. Each file
is written beside and renamed over (newslab.files.atomic_write): a reader never sees half of one."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..files import atomic_write
from ..study.results import StudyResult, study_results
from ..study.storage import default_storage, mask_url, open_storage
from . import followup
from .attention import AttentionAnalysis, SampleChoice
from .conclusions import Claim, FollowUp
from .effects import is_ablation_study
from .i18n import Words
from .render import Document, Section, to_html, to_markdown
from .sections import SECTIONS, context


@dataclass
class ReportFiles:
    directory: Path
    markdown: Path
    html: Path
    document: Document
    claims: list[Claim]
    followups: list[FollowUp] = field(default_factory=list)  # the follow-up specs written (write_followups)
    where: str = ""  # the flags that locate the studies' storage (--out-dir, --storage), as its commands carry

    def section(self, key: str) -> Section:
        return next(s for s in self.document.sections if s.key == key)

    def _followup(self, name: str) -> Path | None:
        return next((f.path for f in self.followups if f.path.name == name), None)

    @property
    def next_grid(self) -> Path | None:
        """The follow-up spec of the first grid study, when it has warnings."""
        return self._followup(NEXT_SPECS[0])

    @property
    def next_ablations(self) -> Path | None:
        """The follow-up spec of the first ablation study, when it has warnings."""
        return self._followup(NEXT_SPECS[1])


def bases_first(results: list[StudyResult]) -> list[StudyResult]:
    """`results` in their order, except that a study's base study (if among them) comes before it."""
    by_name = {r.name: r for r in results}
    ordered: list[StudyResult] = []
    placed: set[str] = set()

    def place(result: StudyResult, path: frozenset[str]) -> None:
        if result.name in placed:
            return
        base = result.spec.base_study
        if base in by_name and base not in path:  # `path` stops a cycle (no run can make one)
            place(by_name[base], path | {result.name})
        placed.add(result.name)
        ordered.append(result)

    for result in results:
        place(result, frozenset())
    return ordered


NEXT_SPECS = ("next-grid.yaml", "next-ablations.yaml")  # (first grid study, first ablation study)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _write_yaml(path: Path, values: dict) -> None:
    _write_text(path, yaml.safe_dump(values, sort_keys=False, allow_unicode=True))


def write_followups(
    results: list[StudyResult], report_dir: Path, where: str = "", log: Callable[[str], None] | None = print
) -> dict[str, FollowUp]:
    """next-grid.yaml (from the first grid study with completed trials) and next-ablations.yaml (the first
    ablation study) in `report_dir`, each only when its study has warnings (followup.find_warnings); a file
    of an earlier report that is not written again is removed. Returns what was written, by file name."""
    grids = [r for r in results if r.points() and not is_ablation_study(r)]
    ablations = [r for r in results if r.points() and is_ablation_study(r)]
    written: dict[str, FollowUp] = {}
    for name, studies in zip(NEXT_SPECS, (grids, ablations)):
        path = report_dir / name
        try:
            spec = followup.next_spec(studies[0], followup.find_warnings(studies[0])) if studies else None
        except ConfigError as exc:  # a widened grid the trainer would refuse: proposed nowhere rather than broken
            if log:
                log(f"no {name} for {studies[0].name}: {exc}")
            spec = None
        if spec is None:
            path.unlink(missing_ok=True)  # an earlier report's proposal no longer holds
            continue
        _write_yaml(path, spec)
        written[name] = FollowUp(studies[0].name, path, f"newslab study run {shlex.quote(str(path))}{where}")
    return written


def reproduce_commands(
    results: list[StudyResult],
    report_dir: Path,
    lang: str,
    data_dir: str | Path | None,
    extra: list[str],
    where: str = "",
    sample: SampleChoice | None = None,
) -> list[str]:
    """Commands that re-run each study from its exact stored spec (written next to the report)
    and rebuild this report; a study after the study it starts from (its `base_study`), otherwise
    in the order given. `where` holds the flags that locate the storage (--out-dir, --storage)."""
    specs = report_dir / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    env = f"NEWSLAB_DATA_DIR={shlex.quote(str(data_dir))} " if data_dir else ""
    lines = list(extra)
    for result in bases_first(results):
        path = specs / f"{result.name}.yaml"
        _write_yaml(path, result.spec.to_dict())
        lines.append(f"{env}newslab study run {shlex.quote(str(path))}{where}")
    names = " ".join(shlex.quote(r.name) for r in results)
    lines.append(f"{env}newslab report {names}{where} --lang {lang}{(sample or SampleChoice()).flags()}")
    return lines


def write_report(
    results: list[StudyResult],
    report_dir: str | Path,
    *,
    lang: str = "en",
    data_dir: str | Path | None = None,
    commands: list[str] | None = None,
    baseline: str | Path | None = None,
    attention: AttentionAnalysis | None = None,
    sample: SampleChoice | None = None,
    where: str = "",
    log: Callable[[str], None] | None = print,
) -> ReportFiles:
    """Build every section of SECTIONS from `results` and write report.md, report.html, figures/ and the
    follow-up specs (see write_followups)."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    ctx = context(results, report_dir, lang, data_dir, attention, baseline, sample)
    if sample is not None and sample != SampleChoice():
        _ = ctx.attention  # an --attention-sample/-class naming no row fails here, before any file changes
    figures = report_dir / "figures"
    if figures.is_dir():  # figures of an earlier report (another study set) must not linger
        for old in [*figures.glob("*.png"), *figures.glob("*.svg")]:
            old.unlink()
    data = data_dir or (
        None if isinstance(ctx.best, str) or ctx.best.dataset is None else ctx.best.dataset.info["data_dir"]
    )
    ctx.commands = reproduce_commands(results, report_dir, lang, data, commands or [], where, sample)
    followups = write_followups(results, report_dir, where, log)
    ctx.followups = list(followups.values())
    sections = [build(ctx) for build in SECTIONS]
    document = Document(ctx.w["title"], lang, sections, subtitle=", ".join(r.name for r in results))
    markdown, html_path = report_dir / "report.md", report_dir / "report.html"
    _write_text(markdown, to_markdown(document, report_dir))
    _write_text(html_path, to_html(document))
    if log:
        log(f"report: {html_path} and {markdown.name} ({len(list(figures.glob('*.png')))} figures)")
        for f in followups.values():
            log(f"follow-up spec for {f.study}: {f.path} (run: {f.command})")
    return ReportFiles(report_dir, markdown, html_path, document, ctx.claims, ctx.followups, where)


def build_report(
    studies: list[str],
    *,
    storage_url: str | None = None,
    out_dir: str | Path = "outputs",
    report_dir: str | Path | None = None,
    lang: str = "en",
    data_dir: str | Path | None = None,
    commands: list[str] | None = None,
    baseline: str | Path | None = None,
    attention: AttentionAnalysis | None = None,
    sample: SampleChoice | None = None,
    log: Callable[[str], None] | None = print,
) -> ReportFiles:
    """Read the named studies from storage (NewslabError naming a missing one) and write the report
    to `report_dir` (default OUT_DIR/report)."""
    Words(lang)  # an unknown language fails before any work
    storage = open_storage(storage_url or default_storage(out_dir))
    results = [study_results(name, storage) for name in studies]
    where = f" --out-dir {shlex.quote(str(out_dir))}" + (f" --storage '{mask_url(storage_url)}'" if storage_url else "")
    return write_report(
        results,
        report_dir or Path(out_dir) / "report",
        lang=lang,
        data_dir=data_dir,
        commands=commands,
        baseline=baseline,
        attention=attention,
        sample=sample,
        where=where,
        log=log,
    )
