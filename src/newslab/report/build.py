"""`newslab report`: read studies from storage, build every section, write report.md,
report.html and the figures (PNG + SVG) into one folder."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import yaml

from ..results import StudyResult, study_results
from ..study import default_storage, mask_url, open_storage
from .attention import AttentionAnalysis
from .conclusions import Claim
from .effects import is_ablation_study
from .i18n import Words
from .render import Bullets, Code, Document, Para, Section, to_html, to_markdown
from .sections import (ReportContext, ablation_section, attention_section, best_model_section, context,
                       conclusions_section, impact_section, results_section)
from .tables import data_table

PACKAGES = ("newslab", "torch", "tokenizers", "numpy", "optuna", "pandas", "scipy", "matplotlib", "seaborn")


@dataclass
class ReportFiles:
    directory: Path
    markdown: Path
    html: Path
    document: Document
    claims: list[Claim]

    def section(self, key: str) -> Section:
        return next(s for s in self.document.sections if s.key == key)


def environment() -> dict[str, str]:
    """This machine and the versions of what the results depend on."""
    import torch

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {"platform": platform.platform(), "cpu": f"{cpu} ({cores} cores available)",
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
            "python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def _baseline_line(run_dir: Path, w: Words) -> str:
    final = json.loads((run_dir / "final.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    settings = w.point({k: config[k] for k in ("embed_dim", "num_heads", "lr", "epochs")})
    return (f"{w['baseline_run']}: {settings}; {w['val_acc']} {w.pct(final.get('best_val_accuracy'))}, "
            f"{w['test_acc']} {w.pct(final.get('test_accuracy'))} ({final.get('status')}, {run_dir})")


def setup_section(ctx: ReportContext, commands: list[str], baseline: Path | None) -> Section:
    w = ctx.w
    section = Section("setup", w["setup"])
    studies = [f"{r.name}: {w.counts(r.counts())}; {w['seeds']} {r.spec.seed_list}; "
               f"{w['fixed']} {json.dumps(r.spec.fixed, sort_keys=True)}" for r in ctx.results]
    section.add(Para(w["studies"]), Bullets(studies))
    if baseline is not None and (baseline / "final.json").is_file():
        section.add(Para(_baseline_line(baseline, w)))
    best = ctx.best
    dataset = None if isinstance(best, str) else best.dataset
    if dataset is not None:
        rows = ", ".join(f"{k} {v}" for k, v in dataset.info["rows"].items())
        section.add(Para(f"{w['data']}: {dataset.info['data_dir']} ({rows})"), data_table(dataset.info, w),
                    Para(f"{w['tokenizer']}: {json.dumps(dataset.info['tokenizer'], sort_keys=True)}"))
    else:
        section.add(Para(f"{w['data']}: {w['unavailable']} ({best if isinstance(best, str) else best.data_error})"))
    machine = environment()
    if not isinstance(best, str) and (best.run_dir / "final.json").is_file():
        final = json.loads((best.run_dir / "final.json").read_text())
        machine["trained on"] = f"{final.get('device')} (torch {final.get('torch')})"
    section.add(Para(w["hardware"]), Bullets([f"{k}: {v}" for k, v in machine.items()]))
    return section.add(Para(w["reproduce"]), Code("\n".join(commands)))


def reproduce_commands(results: list[StudyResult], report_dir: Path, lang: str, data_dir: str | None,
                       extra: list[str], where: str = "") -> list[str]:
    """Commands that re-run each study from its exact stored spec (written next to the report)
    and rebuild this report; grids before the ablation studies that start from them. `where`
    holds the flags that locate the storage (--out-dir, --storage)."""
    specs = report_dir / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    env = f"NEWSLAB_DATA_DIR={shlex.quote(str(data_dir))} " if data_dir else ""
    lines = list(extra)
    for result in sorted(results, key=is_ablation_study):
        path = specs / f"{result.name}.yaml"
        path.write_text(yaml.safe_dump(result.spec.to_dict(), sort_keys=False, allow_unicode=True))
        lines.append(f"{env}newslab study run {shlex.quote(str(path))}{where}")
    names = " ".join(shlex.quote(r.name) for r in results)
    lines.append(f"{env}newslab report {names}{where} --lang {lang}")
    return lines


def write_report(results: list[StudyResult], report_dir: str | Path, *, lang: str = "en",
                 data_dir: str | Path | None = None, commands: list[str] | None = None,
                 baseline: str | Path | None = None, attention: AttentionAnalysis | None = None,
                 where: str = "", log: Callable[[str], None] | None = print) -> ReportFiles:
    """Build every section from `results` and write report.md, report.html and figures/."""
    report_dir = Path(report_dir)
    figures = report_dir / "figures"
    if figures.is_dir():  # figures of an earlier report (another study set) must not linger
        for old in [*figures.glob("*.png"), *figures.glob("*.svg")]:
            old.unlink()
    ctx = context(results, report_dir, lang, data_dir, attention)
    w = ctx.w
    data = data_dir or (None if isinstance(ctx.best, str) or ctx.best.dataset is None
                        else ctx.best.dataset.info["data_dir"])
    lines = reproduce_commands(results, report_dir, lang, data, commands or [], where)
    sections = [setup_section(ctx, lines, Path(baseline) if baseline else None),
                results_section(ctx), impact_section(ctx), ablation_section(ctx), best_model_section(ctx),
                attention_section(ctx), conclusions_section(ctx)]
    document = Document(w["title"], lang, sections, subtitle=", ".join(r.name for r in results))
    markdown, html_path = report_dir / "report.md", report_dir / "report.html"
    markdown.write_text(to_markdown(document, report_dir), encoding="utf-8")
    html_path.write_text(to_html(document), encoding="utf-8")
    if log:
        log(f"report: {html_path} and {markdown.name} ({len(list(figures.glob('*.png')))} figures)")
    return ReportFiles(report_dir, markdown, html_path, document, ctx.claims)


def build_report(studies: list[str], *, storage_url: str | None = None, out_dir: str | Path = "outputs",
                 report_dir: str | Path | None = None, lang: str = "en", data_dir: str | Path | None = None,
                 commands: list[str] | None = None, baseline: str | Path | None = None,
                 attention: AttentionAnalysis | None = None, log: Callable[[str], None] | None = print) -> ReportFiles:
    """Read the named studies from storage (NewslabError naming a missing one) and write the report
    to `report_dir` (default OUT_DIR/report)."""
    Words(lang)  # an unknown language fails before any work
    storage = open_storage(storage_url or default_storage(out_dir))
    results = [study_results(name, storage) for name in studies]
    where = f" --out-dir {shlex.quote(str(out_dir))}" + (f" --storage '{mask_url(storage_url)}'" if storage_url else "")
    return write_report(results, report_dir or Path(out_dir) / "report", lang=lang, data_dir=data_dir,
                        commands=commands, baseline=baseline, attention=attention, where=where, log=log)
