"""Study results read back from Optuna storage: trial records, per-point summaries, tables.

Selection (best nuisance value and epoch per point, best point) uses the selection runs'
validation accuracy averaged over seeds; the confirmation runs (fresh seeds, the chosen nuisance
value and epoch) take no part in it and carry every estimate and verdict of the report. Test
accuracy is sealed: carried alongside, never used to choose, and shown only for the selected
configuration unless asked for (`--show-test`).
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

from .. import names
from ..errors import NewslabError
from .spec import StudySpec, TrialPlan, point_key
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
    role: str = "select"  # "select" (chooses) | "confirm" (fresh seed, chosen nuisance and epoch)
    stop_epoch: int | None = None  # a confirmation trial's epoch, chosen on the selection runs
    val_correct: str | None = None  # per validation row, "1" if predicted right: for paired tests
    key: str | None = None  # the plan's key as queued (a search trial's names its slot, not its sampled point)


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
            "PRUNED": "pruned",
        }
        counts = {"complete": 0, "running": 0, "failed": 0, "waiting": 0}
        if self.spec.search is not None:  # a search's pruner ends trials early: neither complete nor failed
            counts["pruned"] = 0
        for t in self.trials:
            counts[keys[t.state]] += 1
        return counts

    def summaries(self) -> list[Summary]:
        """Every (point, nuisance) combination with its completed selection seeds, in spec order (the
        confirmation runs are read through `confirmation`)."""
        groups: dict[tuple[str, str], Summary] = {}
        for t in self.trials:
            if t.state == "COMPLETE" and t.role == "select":
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

    def rows(self, show_test: bool = False) -> list[dict[str, Any]]:
        """One row per point, best first: the selection runs' validation accuracy, the chosen epoch, then
        the confirmation runs' (fresh seeds) accuracy and their test accuracy — sealed (None) except for
        the selected point of a study that selects, unless `show_test`."""
        rows = []
        for i, s in enumerate(self.points()):
            confirmed = self.confirmation(s)
            shown = confirmed if confirmed is not None else s  # test of the runs that estimate, not choose
            unsealed = show_test or (i == 0 and self.unseals_test)
            rows.append(
                {
                    **s.row(),
                    "epoch": chosen_epoch(s),
                    "confirm_n": confirmed.n if confirmed else 0,
                    "confirm_val_acc_mean": confirmed.val_mean if confirmed else None,
                    "confirm_val_acc_std": confirmed.val_std if confirmed else None,
                    "test_acc_mean": shown.test_mean if unsealed else None,
                    "test_acc_std": shown.test_std if unsealed else None,
                }
            )
        return rows

    @property
    def selects(self) -> bool:
        """Whether the study selects a configuration (a grid); an ablation study compares its variants
        with the baseline and selects none."""
        return "ablation" not in self.spec.parameter_names("scientific")

    @property
    def unseals_test(self) -> bool:
        """Whether the test accuracy of this study's pick may be shown: a study that selects and starts from no
        other study's pick. A study at another's pick (ablations, the chapters) compares; showing its top point's
        test accuracy would be one more look at the test set."""
        return self.selects and self.spec.base_study is None

    def confirmed(self) -> list[Summary]:
        """Per point, its confirmation runs, in the order of `points()`; a point without a completed
        confirmation run is left out."""
        return [c for c in map(self.confirmation, self.points()) if c is not None]

    def confirmation(self, selected: Summary) -> Summary | None:
        """The completed confirmation runs of what the selection chose for this point (its nuisance value
        and epoch), one per seed; runs of an earlier choice, or a duplicate, are not counted."""
        wanted = {plan.key for plan in self.plans_for(selected)}
        runs: dict[int, TrialRecord] = {}
        for t in self.trials:
            if t.state == "COMPLETE" and t.role == "confirm" and t.seed not in runs:
                if TrialPlan(t.point, t.nuisance, t.seed, t.stop_epoch).key in wanted:
                    runs[t.seed] = t
        return Summary(selected.point, selected.nuisance, list(runs.values())) if runs else None

    def plans_for(self, selected: Summary) -> list[TrialPlan]:
        epoch = chosen_epoch(selected)
        return [TrialPlan(selected.point, selected.nuisance, seed, epoch) for seed in self.spec.confirm_seed_list]

    def confirmation_plans(self) -> list[TrialPlan]:
        """The confirmation trials the selection calls for: every point at its chosen nuisance value and
        epoch, on each confirmation seed; of a search, its best point's only (its winner)."""
        points = self.points()[:1] if self.spec.search is not None else self.points()
        return [plan for s in points for plan in self.plans_for(s)]


def chosen_epoch(summary: Summary) -> int:
    """The epoch with the best mean validation accuracy over the summary's runs (epochs all of them
    reached: early stopping may end runs at different epochs); the latest best epoch if none recorded."""
    curves = [[row["val_accuracy"] for row in t.history] for t in summary.trials if t.history]
    if not curves:
        return max((t.best_epoch or 1) for t in summary.trials)
    reached = min(len(c) for c in curves)
    means = [statistics.fmean(c[e] for c in curves) for e in range(reached)]
    return 1 + max(range(reached), key=lambda e: (means[e], -e))  # the earliest of equal means


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
                role=a.get("role", "select"),
                stop_epoch=a.get("stop_epoch"),
                val_correct=a.get("val_correct"),
                key=a.get("key"),
            )
        )
    return StudyResult(name, spec, records, attrs.get("created"))


# --------------------------------------------------------------------------- status
def _plan_key(t: TrialRecord) -> str:
    return t.key or TrialPlan(t.point, t.nuisance, t.seed, t.stop_epoch).key  # a search trial's: its slot


def study_progress(result: StudyResult) -> tuple[int, int]:
    """(trials ended, trials in all) of the whole study, each plan key counted once (a failed attempt and its
    retry are one trial; it has ended once an attempt completed, or its last one failed and none is queued).
    In all: every selection plan, and every point on each confirmation seed, queued or not yet, so the total
    holds still from the first selection trial through the last confirmation."""
    plans = result.spec.trials()
    attempts: dict[str, list[str]] = {plan.key: [] for plan in plans}
    for t in result.trials:
        attempts.setdefault(_plan_key(t), []).append(t.state)
    queued_confirmations = {_plan_key(t) for t in result.trials if t.role == "confirm"}
    selecting = any(t.role == "select" and t.state in ("WAITING", "RUNNING") for t in result.trials)
    if selecting:  # the confirmations are not chosen yet: every point (a search: its winner), each confirmation seed
        points = {point_key(plan.point) for plan in plans} if result.spec.search is None else {"winner"}
        unqueued = max(0, len(points) * len(result.spec.confirm_seed_list) - len(queued_confirmations))
    else:  # what the selection chose, whether queued yet or not (none for a point whose every run failed)
        unqueued = len({plan.key for plan in result.confirmation_plans()} - queued_confirmations)
    return sum(map(_ended, attempts.values())), len(attempts) + unqueued


def _ended(states: list[str]) -> bool:
    """Whether a trial with these attempts has ended: one completed, or none is left to run (all failed)."""
    return "COMPLETE" in states or bool(states) and not {"WAITING", "RUNNING"} & set(states)


def _clock(result: StudyResult, now: float | None = None, progress: tuple[int, int] | None = None) -> str:
    """ "elapsed 3.2 min | study left ~1.5 min": time left is the whole study's (study_progress: the
    confirmations too, queued or not), the mean completed trial's time for each trial left, over the trials
    running side by side; once every trial has ended, the clock stops at the last trial's end."""
    done, total = progress or study_progress(result)
    left = total - done
    ended = [t.finished for t in result.trials if t.finished is not None]
    end = max(ended) if not left and ended else (now or time.time())
    elapsed = end - (end if result.created is None else result.created)
    done_times = [t.wall_time_s for t in result.trials if t.state == "COMPLETE" and t.wall_time_s]
    parallel = max(1, result.counts()["running"])
    eta = (
        f"{statistics.fmean(done_times) * left / parallel / 60:.1f} min"
        if done_times and left
        else ("0 min" if not left else "unknown")
    )
    return f"elapsed {elapsed / 60:.1f} min | study left ~{eta}"


def status_line(result: StudyResult, now: float | None = None) -> str:
    """Trials complete of the study's planned total (study_progress), attempts by state, time spent and left."""
    c, progress = result.counts(), study_progress(result)
    return (
        f"{result.name}: {c['complete']}/{progress[1]} complete, {c['running']} running, {c['failed']} failed, "
        f"{c['waiting']} waiting | {_clock(result, now, progress)}"
    )


def trial_position(result: StudyResult, number: int) -> int:
    """k: trial `number` is the k-th of the study's trials to start (a retried trial counts once, where it
    first started)."""
    keys = {t.number: _plan_key(t) for t in result.trials}
    first: dict[str, int] = {}  # per trial key, the number of its first started attempt
    for t in sorted(result.trials, key=lambda t: t.number):
        if t.state != "WAITING" or t.number == number:
            first.setdefault(keys[t.number], t.number)
    mine = first.get(keys.get(number, ""), number)
    return sum(n <= mine for n in first.values())


def trial_line(result: StudyResult, number: int, what: str, now: float | None = None) -> str:
    """One trial's log line: "[study] trial 4/21 (#3) WHAT | 3/21 complete | elapsed 0.5 min | study left ~1.5 min"."""
    progress = study_progress(result)
    k, total, complete = trial_position(result, number), progress[1], result.counts()["complete"]
    clock = _clock(result, now, progress)
    return f"[{result.name}] trial {k}/{total} (#{number}) {what} | {complete}/{total} complete | {clock}"


def plan_words(point: dict, nuisance: dict, seed: int) -> str:
    """A trial's settings for a reader: "embed_dim 64, heads 2, lr 0.001, seed 0" (nothing for an empty part)."""
    values = {**point, **nuisance, "seed": seed}
    return ", ".join(f"{names.parameter(k)} {names.value(k, v)}" for k, v in values.items())


# ------------------------------------------------------------------------ formatting
def _cell(value: Any, name: str | None = None) -> str:
    """A value for a reader: a setting's (`name`) as the report writes it, a number to 4 digits, "-" if none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if name is not None:
        return names.value(name, value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _acc(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * mean:.2f}"


def format_results(result: StudyResult, fmt: str = "table", show_test: bool = False) -> str:
    """Points best first. Test accuracy is sealed: shown for the selected point only, unless `show_test`
    (labelled "unsealed": test numbers of points that were not selected are not for choosing). The table
    and markdown formats name settings and ablations as the report does (newslab.names); csv and json
    keep the raw names and values, for programs."""
    rows = result.rows(show_test)
    if fmt == "json":
        return json.dumps(
            {
                "study": result.name,
                "counts": result.counts(),
                "test": "unsealed" if show_test else "selected point only",
                "rows": rows,
                "spec": result.spec.to_dict(),
            },
            indent=2,
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
    test_header = (
        "test acc (unsealed)" if show_test else "test acc (selected only)" if result.unseals_test else "test acc"
    )
    # the report's words: its results table has these columns
    headers = [*map(names.parameter, params), "selection val acc", "n", "confirmation val acc", "n", "chosen epoch"]
    headers += [test_header, "parameters", "time (s)"]
    table = [
        [
            *(_cell(r[p], p) for p in params),
            _acc(r["val_acc_mean"], r["val_acc_std"]),
            str(r["n"]),
            _acc(r["confirm_val_acc_mean"], r["confirm_val_acc_std"]),
            str(r["confirm_n"]),
            _cell(r["epoch"]),
            "sealed" if r["test_acc_mean"] is None and not show_test else _acc(r["test_acc_mean"], r["test_acc_std"]),
            "-" if r["params"] is None else f"{r['params']:,}",
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
