"""The manual's last page: what the report's follow-up specs change and how to run them (`next_steps`,
`next_commands`), and where the original manual's TODO list stands in newslab (`todo_status`);
notebooks/transformer_manual.ipynb shows them after the report.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .manual import ManualPlan
from .positions import POSITIONAL_ENCODINGS
from .report import ReportFiles
from .study import StudyResult


def _flat(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec's settings by dotted name ("fixed.epochs"), its name and base study aside: a follow-up spec
    is named after its study and writes an inherited base configuration out as fixed settings."""
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        if key in ("name", "base_study"):
            continue
        if isinstance(value, dict):
            flat.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            flat[key] = value
    return flat


def spec_changes(current: dict[str, Any], proposed: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, current value, proposed value) for every setting that differs, None where one spec lacks it;
    in the proposed spec's order, then settings it drops."""
    old, new = _flat(current), _flat(proposed)
    return [
        (key, old.get(key), new.get(key))
        for key in [*new, *(k for k in old if k not in new)]
        if old.get(key) != new.get(key)
    ]


def next_steps(files: ReportFiles, studies: list[StudyResult]) -> pd.DataFrame:
    """What the report's follow-up specs change in the studies they continue (each FollowUp names its study):
    one row per setting (file, study, setting, current, proposed); no rows when the report wrote none."""
    by_name = {study.name: study for study in studies}
    show = lambda value: "–" if value is None else json.dumps(value)
    rows = []
    for followup in files.followups:
        proposed = yaml.safe_load(followup.path.read_text(encoding="utf-8"))
        current = by_name[followup.study].spec.to_dict()
        for setting, old, new in spec_changes(current, proposed):
            rows.append([followup.path.name, followup.study, setting, show(old), show(new)])
    return pd.DataFrame(rows, columns=["file", "continues", "setting", "current", "proposed"], dtype=object)


def next_report_dir(plan: ManualPlan) -> Path:
    """Where the follow-up studies' report goes: beside the manual's own report, never over it."""
    return plan.out_dir / "report-next"


def next_commands(plan: ManualPlan, files: ReportFiles) -> list[str]:
    """The report's own commands for its follow-up specs (into the storage it read), then one report of the
    follow-up studies into `next_report_dir`; the manual's data folder, if it names one, for each."""
    if not files.followups:
        return []
    data = f"NEWSLAB_DATA_DIR={shlex.quote(plan.data_dir)} " if plan.data_dir else ""
    names = [yaml.safe_load(f.path.read_text(encoding="utf-8"))["name"] for f in files.followups]
    report = f"newslab report {' '.join(map(shlex.quote, names))}{files.where} --lang {plan.lang}"
    report += f" --report-dir {shlex.quote(str(next_report_dir(plan)))}"
    return [f"{data}{line}" for line in [*(f.command for f in files.followups), report]]


def todo_status(plan: ManualPlan, files: ReportFiles) -> pd.DataFrame:
    """The original manual's TODO list, each item with what newslab offers for it today, and what it lacks."""
    model, optim = plan.baseline.model, plan.baseline.optim
    written = [f.path.name for f in files.followups]
    proposals = (
        f"this report wrote {' and '.join(written)} (below): the next studies its warnings call for"
        if written
        else "this report wrote no next-grid.yaml: no pick at a grid's edge, no curve still rising, enough seeds"
    )
    encodings = " | ".join(POSITIONAL_ENCODINGS)
    chapter = f"`newslab manual --preset {plan.preset} --chapter NAME` (the full preset runs every chapter)"
    rows = [
        [
            "More hyperparameter combinations",
            "available",
            "a study spec varies any training setting (scientific) and tunes others per point (nuisance), or "
            "searches ranges with Optuna's TPE / random / CMA-ES samplers and median / Hyperband pruners (`search`): "
            f"`newslab study run SPEC`, the `quick-search` chapter; {proposals}",
        ],
        [
            "Longer sequences and bigger batches",
            "available",
            f"`max_len` (now {model.max_len} tokens) up to 512 and `batch_size` (now {optim.batch_size}) one at a "
            "time around the grid's pick, with the length distribution, accuracy against time and the measured lr "
            f"scaling rule; `--micro-batch-size` accumulates gradients: the `quick-scale` chapter, {chapter}",
        ],
        [
            "Other positional encodings",
            "available",
            f"`pos_encoding` (now {model.pos_encoding}): {encodings}; the report's positional-encoding chapter "
            f"compares them all at the grid's best configuration: the `quick-pos-enc` chapter, {chapter}",
        ],
        [
            "Pretraining + fine-tuning",
            "available",
            "`newslab pretrain` (masked language model on the training texts) and `newslab train --init-from "
            "FOLDER|pretrain --finetune full|partial|frozen --layer-lr-decay D`; from scratch against pretrained at "
            f"equal fine-tuning budget: the `quick-pretraining` chapter, {chapter}",
        ],
    ]
    return pd.DataFrame(rows, columns=["original manual's TODO", "status", "in newslab"])
