"""Studies: specs of fixed / scientific / nuisance settings and seeds, run exactly once per trial on
Optuna storage by any number of workers, and their results read back.

    spec.py     StudySpec, presets, loading spec files
    storage.py  Optuna RDB storage: the only module that touches Optuna's internals
    results.py  trial records, per-point summaries over seeds, tables, status
    runner.py   creating a study, claiming trials, heartbeats, workers

Imports run one way: results reads spec and storage; runner uses all three; none imports runner.
The report imports results, storage and spec themselves, never this package (whose runner trains).
"""

from .results import (
    StudyResult,
    Summary,
    TrialRecord,
    format_results,
    status_line,
    study_results,
)
from .runner import prepare_study, resolve_spec, run_study, run_worker
from .spec import PRESETS, StudySpec, TrialPlan, load_spec, point_key
from .storage import default_storage, mask_url, open_storage

__all__ = [
    "PRESETS",
    "StudyResult",
    "StudySpec",
    "Summary",
    "TrialPlan",
    "TrialRecord",
    "default_storage",
    "format_results",
    "load_spec",
    "mask_url",
    "open_storage",
    "point_key",
    "prepare_study",
    "resolve_spec",
    "run_study",
    "run_worker",
    "status_line",
    "study_results",
]
