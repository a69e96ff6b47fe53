"""The search chapter: a study whose points an Optuna sampler chose from ranges (a spec's `search`), read as
its history (each trial's validation accuracy in the order it ran, pruned trials where the pruner stopped them,
the best so far), the winner's confirmation on fresh seeds, and the parameter importances — fANOVA over the
completed trials (Optuna's evaluator): descriptive, which settings the accuracy varied with in this search."""

from __future__ import annotations

from dataclasses import dataclass

from ..study.results import StudyResult, Summary, TrialRecord
from .effects import Selected, selected
from .i18n import Reason

MIN_TRIALS = 3  # fewer completed trials leave fANOVA nothing to split


def search_studies(results: list[StudyResult]) -> list[StudyResult]:
    return [r for r in results if r.spec.search is not None and r.trials]


def is_search(result: StudyResult) -> bool:
    return result.spec.search is not None


def reached(t: TrialRecord) -> float | None:
    """A selection trial's accuracy: its best validation accuracy, or a pruned one's best before it stopped."""
    if t.val_accuracy is not None:
        return t.val_accuracy
    values = [row["val_accuracy"] for row in t.history]
    return max(values) if values else None


@dataclass
class SearchAnalysis:
    study: StudyResult
    trials: list[TrialRecord]  # the search's own trials (not the confirmations), in the order they were created
    pick: Selected | None  # the winner and its confirmation runs
    importances: dict[str, float] | Reason  # or why they could not be computed

    @property
    def states(self) -> dict[str, int]:
        """Per state, the slots whose last attempt is in it (a failed slot retried counts once, as its retry)."""
        last = {t.key or str(t.number): t.state for t in self.trials}  # trials in creation order: the last wins
        return {
            s: sum(state == s for state in last.values()) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
        }

    @property
    def winner(self) -> Summary | None:
        return self.pick.selection if self.pick else None


def importances(result: StudyResult) -> dict[str, float] | Reason:
    """fANOVA importance of each searched setting over the completed search trials (they sum to 1)."""
    import optuna

    assert result.spec.search is not None
    done = [t for t in result.trials if t.role == "select" and t.state == "COMPLETE" and t.val_accuracy is not None]
    if len(done) < MIN_TRIALS or len({t.val_accuracy for t in done}) < 2:
        return Reason("why_few_search_trials", n=len(done), k=MIN_TRIALS)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    space = result.spec.search["space"]
    for t in done:
        distributions = {name: _distribution(space[name]) for name in space}
        study.add_trial(optuna.trial.create_trial(params=t.point, distributions=distributions, value=t.val_accuracy))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def _distribution(dist: dict):
    import optuna.distributions as d

    if "choices" in dist:
        return d.CategoricalDistribution(dist["choices"])
    log, step = bool(dist.get("log")), dist.get("step")
    if isinstance(dist["low"], int) and isinstance(dist["high"], int) and not isinstance(step, float):
        return d.IntDistribution(dist["low"], dist["high"], log=log, step=step or 1)
    return d.FloatDistribution(dist["low"], dist["high"], log=log, step=step)


def analyse_search(result: StudyResult) -> SearchAnalysis:
    own = sorted((t for t in result.trials if t.role == "select"), key=lambda t: t.number)
    return SearchAnalysis(result, own, selected(result), importances(result))
