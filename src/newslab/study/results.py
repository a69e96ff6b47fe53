"""Study results read back from Optuna storage: trial records, per-point summaries, tables.

Selection (best nuisance value per point, best point) uses validation accuracy averaged over
seeds; test accuracy is carried alongside and never used to choose.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import NewslabError
from .spec import StudySpec, point_key
from .storage import load_study, mask_url, storage_errors, trial_states


@dataclass
class TrialRecord:
    number: int
    state: str  # COMPLETE | FAIL | RUNNING | WAITING | PRUNED
    point: dict
    nuisance: dict
    seed: int
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_macro_f1: float | None = None
    best_epoch: int | None = None
    params: dict = field(default_factory=dict)
    wall_time_s: float | None = None
    history: list[dict] = field(default_factory=list)
    run_dir: str | None = None
    fail_reason: str | None = None
    test_predictions: list[int] | None = None
    finished: float | None = None  # when the trial ended (time stamp), if it has


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _std(xs: list[float]) -> float | None:
    return statistics.stdev(xs) if len(xs) > 1 else None


def config_key(point: dict, nuisance: dict) -> tuple[str, str]:
    """One configuration (a point at one nuisance setting), as a comparable value."""
    return point_key(point), point_key(nuisance)


@dataclass
class Summary:
    """One point (at one nuisance setting) over its completed seeds."""

    point: dict
    nuisance: dict
    trials: list[TrialRecord]

    @property
    def key(self) -> tuple[str, str]:
        return config_key(self.point, self.nuisance)

    @property
    def n(self) -> int:
        return len(self.trials)

    @property
    def val_accuracies(self) -> list[float]:
        return [t.val_accuracy for t in self.trials if t.val_accuracy is not None]

    @property
    def test_accuracies(self) -> list[float]:
        return [t.test_accuracy for t in self.trials if t.test_accuracy is not None]

    @property
    def val_mean(self) -> float:
        return statistics.fmean(self.val_accuracies)  # a Summary holds at least one completed trial

    @property
    def val_std(self) -> float | None:
        return _std(self.val_accuracies)

    @property
    def test_mean(self) -> float | None:
        return _mean(self.test_accuracies)

    @property
    def test_std(self) -> float | None:
        return _std(self.test_accuracies)

    def row(self) -> dict[str, Any]:
        epochs = [t.best_epoch for t in self.trials if t.best_epoch is not None]
        return {
            **self.point,
            **self.nuisance,
            "n": self.n,
            "val_acc_mean": self.val_mean,
            "val_acc_std": self.val_std,
            "test_acc_mean": self.test_mean,
            "test_acc_std": self.test_std,
            "best_epoch": statistics.median(epochs) if epochs else None,
            "params": self.trials[0].params.get("total") if self.trials else None,
            "time_s": _mean([t.wall_time_s for t in self.trials if t.wall_time_s is not None]),
        }


@dataclass
class StudyResult:
    name: str
    spec: StudySpec
    trials: list[TrialRecord]
    created: float | None = None

    def counts(self) -> dict[str, int]:
        keys = {
            "COMPLETE": "complete",
            "RUNNING": "running",
            "FAIL": "failed",
            "WAITING": "waiting",
            "PRUNED": "failed",
        }
        counts = {"complete": 0, "running": 0, "failed": 0, "waiting": 0}
        for t in self.trials:
            counts[keys[t.state]] += 1
        return counts

    def summaries(self) -> list[Summary]:
        """Every (point, nuisance) combination with its completed seeds, in spec order."""
        groups: dict[tuple[str, str], Summary] = {}
        for t in self.trials:
            if t.state == "COMPLETE":
                key = config_key(t.point, t.nuisance)
                groups.setdefault(key, Summary(t.point, t.nuisance, [])).trials.append(t)
        return list(groups.values())

    def points(self) -> list[Summary]:
        """Per scientific point, the nuisance setting with the best mean validation accuracy;
        sorted by that accuracy, best first."""
        best: dict[str, Summary] = {}
        for s in self.summaries():
            key = point_key(s.point)
            if key not in best or s.val_mean > best[key].val_mean:
                best[key] = s
        return sorted(best.values(), key=lambda s: -s.val_mean)

    def best(self) -> Summary:
        points = self.points()
        if not points:
            raise NewslabError(f"study {self.name!r} has no completed trial")
        return points[0]

    def rows(self) -> list[dict[str, Any]]:
        return [s.row() for s in self.points()]


def study_results(name: str, storage) -> StudyResult:
    """The study as recorded; NewslabError (one line) for a missing study or a failing storage."""
    with storage_errors(storage, f"study {name!r}: "):
        study = load_study(name, storage)
        trials = study.get_trials(deepcopy=False)
        attrs = study.user_attrs
    if "spec" not in attrs:
        raise NewslabError(
            f"study {name!r} in {mask_url(storage.url)} has no spec recorded yet "
            f"(being created, or its creation was interrupted: run `newslab study run` again)"
        )
    spec = StudySpec(**attrs["spec"])
    complete = trial_states().COMPLETE
    records = []
    for t in trials:
        a = t.user_attrs
        if "key" not in a:
            continue
        records.append(
            TrialRecord(
                number=t.number,
                state=t.state.name,
                point=a["point"],
                nuisance=a["nuisance"],
                seed=a["seed"],
                val_accuracy=t.value if t.state == complete else None,
                finished=t.datetime_complete.timestamp() if t.datetime_complete else None,
                test_accuracy=a.get("test_accuracy"),
                test_macro_f1=a.get("test_macro_f1"),
                best_epoch=a.get("best_epoch"),
                params=a.get("params") or {},
                wall_time_s=a.get("wall_time_s"),
                history=a.get("history") or [],
                run_dir=a.get("run_dir"),
                fail_reason=a.get("fail_reason"),
                test_predictions=a.get("test_predictions"),
            )
        )
    return StudyResult(name, spec, records, attrs.get("created"))


# --------------------------------------------------------------------------- status
def status_line(result: StudyResult, now: float | None = None) -> str:
    """Counts by state, time spent and time left; once nothing waits or runs, the clock stops at the
    last trial's end."""
    c = result.counts()
    total = sum(c.values())
    left = c["waiting"] + c["running"]
    ended = [t.finished for t in result.trials if t.finished is not None]
    end = max(ended) if not left and ended else (now or time.time())
    elapsed = end - (result.created or end)
    done_times = [t.wall_time_s for t in result.trials if t.state == "COMPLETE" and t.wall_time_s]
    parallel = max(1, c["running"])
    eta = (
        f"{statistics.fmean(done_times) * left / parallel / 60:.1f} min"
        if done_times and left
        else ("0 min" if not left else "unknown")
    )
    return (
        f"{result.name}: {c['complete']}/{total} complete, {c['running']} running, {c['failed']} failed, "
        f"{c['waiting']} waiting | elapsed {elapsed / 60:.1f} min | left ~{eta}"
    )


# ------------------------------------------------------------------------ formatting
def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_results(result: StudyResult, fmt: str = "table") -> str:
    rows = result.rows()
    if fmt == "json":
        return json.dumps(
            {"study": result.name, "counts": result.counts(), "rows": rows, "spec": result.spec.to_dict()}, indent=2
        )
    if not rows:
        return f"{result.name}: no completed trials yet ({result.counts()})"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    first = result.points()[0]
    params = [*first.point, *first.nuisance]
    headers = [*params, "val acc (mean ± std)", "n", "test acc", "best epoch", "params", "time (s)"]
    table = [
        [
            *(_cell(r[p]) for p in params),
            f"{100 * r['val_acc_mean']:.2f} ± {100 * r['val_acc_std']:.2f}"
            if r["val_acc_std"] is not None
            else f"{100 * r['val_acc_mean']:.2f}",
            str(r["n"]),
            f"{100 * r['test_acc_mean']:.2f}" if r["test_acc_mean"] is not None else "-",
            _cell(r["best_epoch"]),
            _cell(r["params"]),
            _cell(round(r["time_s"] or 0)),
        ]
        for r in rows
    ]
    if fmt == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in table])
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    fmt_row = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))
    return "\n".join([fmt_row(headers), fmt_row(["-" * w for w in widths]), *map(fmt_row, table)])
