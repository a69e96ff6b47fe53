"""The selected model: which run it is, its test predictions against the truth, and the texts.

The selected configuration is the best point of the first grid study given (mean validation
accuracy of its selection runs); its model is the run with the best validation accuracy among its
confirmation runs (trained to the chosen epoch on a fresh seed), or among its selection runs when it
has none. The confusion matrix and per-class scores use newslab.metrics, the same definitions as
training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import RunConfig
from ..data import Dataset, cache_dir, load_dataset, missing_files
from ..errors import NewslabError
from ..metrics import confusion_matrix, per_class_scores
from ..runs import RunFolder
from ..study.results import StudyResult, Summary, TrialRecord
from .effects import is_ablation_study, selected
from .i18n import Reason


@dataclass
class BestRun:
    study: str
    summary: Summary  # the selected configuration's runs: its confirmation runs where it has them
    trial: TrialRecord  # the one of lowest seed: the model analysed below
    run_dir: Path
    config: RunConfig
    dataset: Dataset | None  # None when the data folder is not available here
    data_error: str | None  # why the data is missing: a Reason (Words.say) unless unforeseen
    test_labels: list[int]
    test_predictions: list[int]

    @property
    def class_names(self) -> list[str]:
        if self.dataset is not None:
            return self.dataset.class_names
        # without the data, every class seen: a class can be predicted and never be a label (or the reverse)
        return [str(i) for i in range(1 + max([*self.test_labels, *self.test_predictions], default=-1))]

    def confusion(self) -> torch.Tensor:
        return confusion_matrix(
            torch.tensor(self.test_predictions), torch.tensor(self.test_labels), len(self.class_names)
        )

    def scores(self) -> dict[str, list[float]]:
        return per_class_scores(self.confusion())

    def misclassified(self, limit: int = 6) -> list[tuple[str, int, int]]:
        """(text, true class, predicted class) of the first wrong test rows, one per error kind
        first so that the examples show different confusions."""
        if self.dataset is None:
            return []
        wrong = [i for i, (y, p) in enumerate(zip(self.test_labels, self.test_predictions)) if y != p]
        seen: set[tuple[int, int]] = set()
        first: list[int] = []
        rest: list[int] = []
        for i in wrong:
            kind = (self.test_labels[i], self.test_predictions[i])
            (rest if kind in seen else first).append(i)
            seen.add(kind)
        return [
            (self.dataset.test.texts[i], self.test_labels[i], self.test_predictions[i]) for i in (first + rest)[:limit]
        ]


def primary_study(results: list[StudyResult]) -> StudyResult | None:
    """The study whose best configuration is "the" selected model: a grid before an ablation study."""
    done = [r for r in results if r.points()]
    grids = [r for r in done if not is_ablation_study(r)]
    return next(iter(grids or done), None)


def best_run(results: list[StudyResult], data_dir: str | Path | None = None) -> BestRun:
    """The selected model's run, with its data; NewslabError saying why when it cannot be had."""
    study = primary_study(results)
    if study is None:
        raise NewslabError(Reason("why_no_trial"))
    pick = selected(study)
    assert pick is not None, "a study with completed trials has a selected point"
    summary = pick.estimate
    # the run of the lowest seed: picking the run with the best validation accuracy would be one more choice
    trial = min(summary.trials, key=lambda t: t.seed)
    if not trial.run_dir:  # Path("") would read the current directory's files as this run's
        raise NewslabError(Reason("why_no_run_folder", study=study.name, trial=trial.number))
    folder = RunFolder(trial.run_dir)
    if not folder.has_predictions():
        raise NewslabError(
            Reason(
                "why_not_here",
                folder=folder.path,
                study=study.name,
                trial=trial.number,
                file=folder.predictions_file.name,
            )
        )
    predictions = folder.predictions()
    config = folder.config()
    if data_dir:
        config = config.replace(data_dir=str(data_dir))
    data_folder = config.data.resolved_dir
    dataset: Dataset | None = None
    error: str | None = None  # a Reason where the report can word it in its language
    missing = missing_files(data_folder)
    if missing:  # never start a download just to write a report
        error = Reason("why_data_missing", folder=data_folder, files=", ".join(missing))
    else:
        try:
            dataset = load_dataset(config.data, cache_dir(config.execution.out_dir), progress=False)
        except NewslabError as exc:  # the report still shows numbers; texts need the data
            error = str(exc)
    if dataset is not None and len(dataset.test) != len(predictions["test"]):
        error = Reason(
            "why_data_mismatch", folder=data_folder, rows=len(dataset.test), predicted=len(predictions["test"])
        )
        dataset = None
    return BestRun(
        study.name, summary, trial, folder.path, config, dataset, error, predictions["test_labels"], predictions["test"]
    )
