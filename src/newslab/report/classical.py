"""Classical baselines: TF-IDF word 1–2-grams with a linear SVM and with logistic regression (scikit-learn),
fitted on the rows a study's Transformers saw and judged by the study's protocol (study/spec.py):

  selection     TF-IDF and each C fitted on the selection split's training rows (`split_seed`); per model
                the C with the best accuracy on its validation rows (ties: the smaller C), and the best
                model, are chosen there;
  confirmation  each model at its chosen C refitted on the confirmation split's training rows
                (`split_seed` + CONFIRM_SPLIT_OFFSET) and scored on its validation rows, the rows, in the
                order, of the Transformer confirmation trials' `val_correct`, and on the test set.

The selected Transformer is compared with the best classical model by effects.compare, paired by row
(a classical model is deterministic: its row correctness is the same for every seed). A fit is cached
as JSON in the data cache folder, keyed by the data files' digests and both splits' settings.
`python benchmarks/accuracy.py --data-dir DIR --group classical` prints a data folder's fit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DataConfig, RunConfig
from ..data import DATA_FILES, SplitRows, cache_dir, file_digests, missing_files, split_rows
from ..errors import NewslabError
from ..files import atomic_write
from ..runs import RunFolder
from ..study.results import StudyResult, Summary, TrialRecord, chosen_epoch
from ..teacher import VECTORIZER  # the features of the distillation teacher too
from . import effects as fx
from .i18n import Reason
from .stats import Untested

CACHE_VERSION = 1
# the C values tried per model, weakest regularisation last, one step past the stand-in's best (SVM 10, logistic
# 1000) so that its choice lies inside the grid; beyond, accuracy levels off (the rows are separable) or falls
C_GRID: dict[str, tuple[float, ...]] = {
    "tfidf_svm": (0.1, 0.3, 1.0, 3.0, 10.0, 30.0),
    "tfidf_logreg": (1.0, 10.0, 100.0, 1000.0, 10000.0),
}


@dataclass(frozen=True)
class BaselineFit:
    """One classical model at the C chosen on the selection split, refitted on the confirmation split."""

    model: str  # a key of C_GRID (display names: i18n WORDS)
    C: float
    selection: tuple[tuple[float, float], ...]  # (C, accuracy on the selection split's validation rows), each C
    val_accuracy: float  # on the confirmation split's validation rows
    test_accuracy: float
    val_correct: str  # per confirmation validation row, "1" if predicted right
    fit_s: float  # TF-IDF and the refit on the confirmation split's training rows

    @property
    def selection_accuracy(self) -> float:
        return dict(self.selection)[self.C]


@dataclass(frozen=True)
class Baselines:
    fits: tuple[BaselineFit, ...]  # in C_GRID order
    rows: dict[str, int]  # confirmation split: training, validation and test rows
    seconds: float  # the whole fit (both splits, every C)
    cache_file: Path | None = None
    cached: bool = False  # read from cache_file rather than fitted now

    @property
    def best(self) -> BaselineFit:
        """The model with the best selection accuracy (the first in C_GRID order on a tie)."""
        return max(self.fits, key=lambda f: f.selection_accuracy)


# ----------------------------------------------------------------------------- fitting
def _vectorize(rows: SplitRows):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(**VECTORIZER)
    train = vectorizer.fit_transform(rows.train.texts)  # the vocabulary and idf of the training rows only
    return train, vectorizer.transform(rows.val.texts), vectorizer.transform(rows.test.texts)


def _classifier(model: str, C: float):
    """One-vs-rest linear models from liblinear's dual solvers, fast on many sparse features: squared hinge
    loss (LinearSVC) or logistic loss (multinomial lbfgs / newton-cg take 5-10x longer here, as accurate)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    if model == "tfidf_svm":  # dual: more features than rows (scikit-learn's "auto" since 1.5, stated for 1.3-1.4)
        return LinearSVC(C=C, dual=True, random_state=0)
    logistic = LogisticRegression(C=C, solver="liblinear", dual=True, max_iter=1000, random_state=0)
    return OneVsRestClassifier(logistic)


def _fit(selection: SplitRows, confirmation: SplitRows) -> tuple[BaselineFit, ...]:
    x_train, x_val, _ = _vectorize(selection)
    tried: dict[str, tuple[tuple[float, float], ...]] = {}  # per model, (C, selection accuracy) of each C
    for model, grid in C_GRID.items():
        labels = np.asarray(selection.val.labels)
        fitted = (_classifier(model, C).fit(x_train, selection.train.labels) for C in grid)
        tried[model] = tuple((C, float(np.mean(f.predict(x_val) == labels))) for C, f in zip(grid, fitted))
    start = time.perf_counter()
    x_train, x_val, x_test = _vectorize(confirmation)
    vectorize_s = time.perf_counter() - start
    fits = []
    for model, scores in tried.items():
        C = max(scores, key=lambda s: s[1])[0]  # max keeps the first of equals: the smaller C
        start = time.perf_counter()
        classifier = _classifier(model, C).fit(x_train, confirmation.train.labels)
        right = classifier.predict(x_val) == np.asarray(confirmation.val.labels)
        test = float(np.mean(classifier.predict(x_test) == np.asarray(confirmation.test.labels)))
        fit_s = vectorize_s + time.perf_counter() - start
        correct = "".join("1" if r else "0" for r in right)
        fits.append(BaselineFit(model, C, scores, float(right.mean()), test, correct, fit_s))
    return tuple(fits)


def cache_key(selection: DataConfig, confirmation: DataConfig) -> str:
    """The data files' contents, both splits' settings, the models' grids and scikit-learn's version."""
    import sklearn

    data_dir = selection.resolved_dir
    digests = {name: file_digests(data_dir / name)["sha256"] for name in DATA_FILES}
    what = [CACHE_VERSION, digests, selection.settings(), confirmation.settings(), C_GRID, VECTORIZER]
    what.append(sklearn.__version__)
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:20]


def _to_json(baselines: Baselines) -> str:
    payload = {
        "version": CACHE_VERSION,
        "fits": [dataclasses.asdict(f) for f in baselines.fits],
        "rows": baselines.rows,
        "seconds": baselines.seconds,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return json.dumps({"payload": payload, "sha256": digest})


def _from_json(text: str, path: Path) -> Baselines:
    """The cached fit; ValueError/KeyError/TypeError when it is damaged or not this version's."""
    manifest = json.loads(text)
    payload = manifest["payload"]
    if hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest() != manifest["sha256"]:
        raise ValueError("checksum mismatch")
    if payload["version"] != CACHE_VERSION:
        raise ValueError(f"version {payload['version']!r}, not {CACHE_VERSION}")
    fits = []
    for f in payload["fits"]:
        selection = tuple((float(C), float(acc)) for C, acc in f["selection"])
        fit = BaselineFit(**{**f, "selection": selection})
        if set(fit.val_correct) - {"0", "1"} or len(fit.val_correct) != payload["rows"]["val"]:
            raise ValueError("val_correct is not one 0/1 per validation row")
        fits.append(fit)
    if [f.model for f in fits] != list(C_GRID):
        raise ValueError(f"models {[f.model for f in fits]}, not {list(C_GRID)}")
    return Baselines(
        tuple(fits), {k: int(v) for k, v in payload["rows"].items()}, float(payload["seconds"]), path, True
    )


def fit_baselines(
    selection: DataConfig,
    confirmation: DataConfig,
    cache: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Baselines:
    """Both classical models chosen on `selection`'s validation rows and refitted on `confirmation`'s
    (the same data folder); through the JSON cache in `cache` when given. A damaged cache file is reported
    in one line naming it and refitted; a missing data file is a NewslabError naming the folder."""
    log = log or (lambda message: print(message, file=sys.stderr))
    data_dir = selection.resolved_dir
    if confirmation.resolved_dir != data_dir:
        raise NewslabError(
            f"classical baselines: the splits' data folders differ ({data_dir}, {confirmation.resolved_dir})"
        )
    missing = missing_files(data_dir)
    if missing:  # never download to write a report
        raise NewslabError(Reason("why_data_missing", folder=data_dir, files=", ".join(missing)))
    path = Path(cache) / f"classical-{cache_key(selection, confirmation)}.json" if cache is not None else None
    if path is not None and path.is_file():
        try:
            return _from_json(path.read_text(encoding="utf-8"), path)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            log(f"newslab: classical baselines cache {path} is damaged ({type(exc).__name__}: {exc}); refitting")
    log(f"newslab: fitting the classical baselines (TF-IDF + linear SVM / logistic regression) on {data_dir}")
    start = time.perf_counter()
    confirmation_rows = split_rows(data_dir, confirmation)
    fits = _fit(split_rows(data_dir, selection), confirmation_rows)
    rows = {name: len(getattr(confirmation_rows, name).labels) for name in ("train", "val", "test")}
    baselines = Baselines(fits, rows, time.perf_counter() - start, path)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = _to_json(baselines)
            atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        except OSError as exc:  # the report does not need the cache: the next one refits
            log(f"newslab: cannot write the classical baselines cache {path} ({exc.strerror or exc}); not cached")
    return baselines


# ------------------------------------------------------------------------- a study's
@dataclass
class Standing:
    """Where a grid study's selected Transformer stands against the best classical model."""

    study: str
    baselines: Baselines
    comparison: fx.Comparison  # a = the selected Transformer, b = the best classical model (as a Summary)

    @property
    def best(self) -> BaselineFit:
        return self.baselines.best


def as_summary(fit: BaselineFit, seeds: list[int], stage: str = "confirm") -> Summary:
    """The classical model as runs on `seeds` (its predictions do not depend on one), for effects.compare;
    on the selection split (`stage` "select") with its selection accuracy and no per-row correctness."""
    confirm = stage == "confirm"
    accuracy = fit.val_accuracy if confirm else fit.selection_accuracy
    trials = [
        TrialRecord(
            number=-1,
            state="COMPLETE",
            point={"model": fit.model},
            nuisance={"C": fit.C},
            seed=seed,
            val_accuracy=accuracy,
            test_accuracy=fit.test_accuracy,
            role=stage,
            val_correct=fit.val_correct if confirm else None,
        )
        for seed in seeds
    ]
    return Summary({"model": fit.model}, {"C": fit.C}, trials)


def _trained_config(summary: Summary | None) -> RunConfig | None:
    """The config a run of `summary` recorded in its folder: where its data and cache were."""
    for trial in summary.trials if summary else []:
        if trial.run_dir and RunFolder(trial.run_dir).exists():
            try:
                return RunFolder(trial.run_dir).config()
            except NewslabError:
                continue
    return None


def study_splits(result: StudyResult, data_dir: str | Path | None = None) -> tuple[DataConfig, DataConfig, Path | None]:
    """The data settings of the selected point's selection runs and confirmation runs (as the spec builds
    their configs), in the data folder the runs used, and the cache folder beside their outputs (None when
    no run folder is on this machine). NewslabError when the data folder is not known."""
    pick = fx.selected(result)
    if pick is None:
        raise NewslabError(f"study {result.name!r} has no completed trial")
    point, nuisance, seed = pick.selection.point, pick.selection.nuisance, pick.selection.trials[0].seed
    selection = result.spec.config(point, nuisance, seed)
    confirmation = result.spec.config(point, nuisance, seed, stop_epoch=chosen_epoch(pick.selection))
    trained = _trained_config(pick.confirmation) or _trained_config(pick.selection)
    folder = data_dir or (trained.data.data_dir if trained else None) or selection.data.data_dir
    if not folder:  # the default folder may hold other data than the runs': never guess
        raise NewslabError(Reason("why_classical_no_data_dir", study=result.name))
    selection, confirmation = (c.replace(data_dir=str(folder)) for c in (selection, confirmation))
    cache = cache_dir(trained.execution.out_dir) if trained else None
    return selection.data, confirmation.data, cache


def standing(result: StudyResult, data_dir: str | Path | None = None) -> Standing:
    """The classical baselines fitted on `result`'s splits (study_splits), against its selected Transformer."""
    selection, confirmation, cache = study_splits(result, data_dir)
    return against(result, fit_baselines(selection, confirmation, cache))


def against(result: StudyResult, baselines: Baselines) -> Standing:
    """The selected Transformer's confirmation runs against the best classical model on the same validation
    rows; untested ("no_confirmation") without them. NewslabError when the runs predicted another number of
    validation rows than the baselines saw: then the data are not the study's."""
    pick = fx.selected(result)
    if pick is None:
        raise NewslabError(f"study {result.name!r} has no completed trial")
    best = baselines.best
    if pick.confirmation is None:
        seeds = [t.seed for t in pick.selection.trials]
        comparison = fx.Comparison(
            pick.selection, as_summary(best, seeds, "select"), Untested("no_confirmation"), "select"
        )
        return Standing(result.name, baselines, comparison)
    lengths = {len(t.val_correct) for t in pick.confirmation.trials if t.val_correct is not None}
    if lengths - {baselines.rows["val"]}:
        raise NewslabError(
            Reason("why_classical_rows", study=result.name, runs=sorted(lengths), rows=baselines.rows["val"])
        )
    seeds = [t.seed for t in pick.confirmation.trials]
    return Standing(result.name, baselines, fx.compare(pick.confirmation, as_summary(best, seeds)))
