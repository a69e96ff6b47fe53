"""`newslab report`: read studies from storage, build every section, write report.md,
report.html and the figures (PNG + SVG) into one folder."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..study.results import StudyResult, study_results
from ..study.storage import default_storage, mask_url, open_storage
from .attention import AttentionAnalysis
from .conclusions import Claim
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

    def section(self, key: str) -> Section:
        return next(s for s in self.document.sections if s.key == key)


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


def reproduce_commands(
    results: list[StudyResult],
    report_dir: Path,
    lang: str,
    data_dir: str | Path | None,
    extra: list[str],
    where: str = "",
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
        path.write_text(yaml.safe_dump(result.spec.to_dict(), sort_keys=False, allow_unicode=True))
        lines.append(f"{env}newslab study run {shlex.quote(str(path))}{where}")
    names = " ".join(shlex.quote(r.name) for r in results)
    lines.append(f"{env}newslab report {names}{where} --lang {lang}")
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
    where: str = "",
    log: Callable[[str], None] | None = print,
) -> ReportFiles:
    """Build every section of SECTIONS from `results` and write report.md, report.html and figures/."""
    report_dir = Path(report_dir)
    figures = report_dir / "figures"
    if figures.is_dir():  # figures of an earlier report (another study set) must not linger
        for old in [*figures.glob("*.png"), *figures.glob("*.svg")]:
            old.unlink()
    ctx = context(results, report_dir, lang, data_dir, attention, baseline)
    data = data_dir or (
        None if isinstance(ctx.best, str) or ctx.best.dataset is None else ctx.best.dataset.info["data_dir"]
    )
    ctx.commands = reproduce_commands(results, report_dir, lang, data, commands or [], where)
    sections = [build(ctx) for build in SECTIONS]
    document = Document(ctx.w["title"], lang, sections, subtitle=", ".join(r.name for r in results))
    markdown, html_path = report_dir / "report.md", report_dir / "report.html"
    markdown.write_text(to_markdown(document, report_dir), encoding="utf-8")
    html_path.write_text(to_html(document), encoding="utf-8")
    if log:
        log(f"report: {html_path} and {markdown.name} ({len(list(figures.glob('*.png')))} figures)")
    return ReportFiles(report_dir, markdown, html_path, document, ctx.claims)


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
        where=where,
        log=log,
    )
