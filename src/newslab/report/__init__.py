"""The report: tables, figures, attention analysis and conclusions written from stored results.

`build_report(["quick-grid", "quick-ablations"])` writes OUT_DIR/report/{report.md, report.html,
figures/}, and follow-up specs (next-grid.yaml, next-ablations.yaml) when a study's design limits its
conclusions. Modules: stats (intervals and the paired test), effects (what differs, and whether the
difference is significant, inconclusive or untested), followup (warnings and the next spec),
conclusions (the sentences; claims words them, attention_claims and classical_claims add their
paragraphs), tables, plots (canvas draws and saves, attention_plots the attention figures), attention,
bestmodel, sections (each section, and SECTIONS: the report's sections in order), render, build.
"""

from .build import ReportFiles, build_report, write_report
from .render import section_html
from .sections import (
    SECTIONS,
    ablation_section,
    attention_section,
    best_model_section,
    conclusions_section,
    context,
    environment,
    impact_section,
    method_section,
    results_section,
    setup_section,
)

__all__ = [
    "SECTIONS",
    "ReportFiles",
    "ablation_section",
    "attention_section",
    "best_model_section",
    "build_report",
    "conclusions_section",
    "context",
    "environment",
    "impact_section",
    "method_section",
    "results_section",
    "section_html",
    "setup_section",
    "write_report",
]
