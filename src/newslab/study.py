"""Studies: specs, presets, Optuna storage, and workers that run every trial exactly once.

A spec names, in the tuning playbook's terms, `fixed` settings, `scientific` parameters (the
grid), `nuisance` parameters (tuned per scientific point) and `seeds`. Every point x nuisance
x seed is one Optuna trial = one `train()` run. Optuna's RDB storage is the only index of
runs: the spec is enqueued as WAITING trials and workers claim them one by one with an atomic
WAITING -> RUNNING transition, so N workers on one storage never run a trial twice (Optuna's
GridSampler does, under concurrency). Heartbeats let a killed worker's trial be failed and
retried; a study re-run retries failed trials up to `max_retries`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from .config import ConfigError, NewslabError, RunConfig, load_config_file

SPEC_FIELDS = ("name", "fixed", "scientific", "nuisance", "seeds", "base_study", "max_retries")
ENV_STORAGE = "NEWSLAB_STORAGE"


# ------------------------------------------------------------------------------ specs
@dataclass
class StudySpec:
    """A study: the Cartesian product of scientific x nuisance values x seeds.

    `scientific`/`nuisance` map a RunConfig field to its values; a key naming several fields
    joined by commas ("embed_dim,num_heads") takes tuples that vary together. `base_study`
    starts `fixed` from the best configuration (mean validation accuracy) of that finished study.
    """

    name: str
    fixed: dict[str, Any] = field(default_factory=dict)
    scientific: dict[str, list] = field(default_factory=dict)
    nuisance: dict[str, list] = field(default_factory=dict)
    seeds: int | list[int] = 3
    base_study: str | None = None
    max_retries: int = 2

    def __post_init__(self) -> None:
        where = f"study spec {self.name!r}"
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ConfigError(f"{where}: name must be letters, digits, '-', '_' or '.'")
        if isinstance(self.seeds, bool) or not (isinstance(self.seeds, int) and self.seeds > 0 or
                                                isinstance(self.seeds, list) and self.seeds and
                                                all(isinstance(s, int) for s in self.seeds)):
            raise ConfigError(f"{where}: seeds must be a positive count or a non-empty list of integers")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"{where}: max_retries must be an integer >= 0")
        for section in ("fixed", "scientific", "nuisance"):
            if not isinstance(getattr(self, section), dict):
                raise ConfigError(f"{where}: {section} must be a mapping")
        known = {f.name for f in fields(RunConfig)} - {"seed", "out_dir", "run_name"}
        seen: set[str] = set(self.fixed)
        for name in set(self.fixed) - known:
            raise ConfigError(f"{where}: fixed: unknown parameter {name!r}")
        for section in ("scientific", "nuisance"):
            for key, values in getattr(self, section).items():
                names = key.split(",")
                for name in names:
                    if name not in known:
                        raise ConfigError(f"{where}: {section}: unknown parameter {name!r}")
                    if name in seen:
                        raise ConfigError(f"{where}: {section}: {name!r} is set twice (fixed/scientific/nuisance)")
                    seen.add(name)
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"{where}: {section}.{key}: needs a non-empty list of values")
                if len(names) > 1 and not all(isinstance(v, list) and len(v) == len(names) for v in values):
                    raise ConfigError(f"{where}: {section}.{key}: each value must be a list of {len(names)}")
        if not self.scientific and not self.nuisance:
            raise ConfigError(f"{where}: empty grid (no scientific or nuisance parameters)")

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def choices(self, name: str) -> list:
        """Every value a scientific or nuisance parameter takes in this spec."""
        for key, values in {**self.scientific, **self.nuisance}.items():
            names = key.split(",")
            if name in names:
                i = names.index(name)
                return list(dict.fromkeys(v[i] if len(names) > 1 else v for v in values))
        raise KeyError(name)

    def parameter_names(self, section: str) -> list[str]:
        return [n for key in getattr(self, section) for n in key.split(",")]

    def trials(self) -> list["TrialPlan"]:
        """Every point x nuisance x seed, each validated as a RunConfig before anything runs."""
        plans = []
        for point in _product(self.scientific):
            for nuisance in _product(self.nuisance):
                for seed in self.seed_list:
                    values = {**self.fixed, **point, **nuisance, "seed": seed}
                    try:
                        RunConfig.from_dict(dict(values), source=f"study {self.name}")
                    except ConfigError as exc:
                        raise ConfigError(f"study spec {self.name!r}: point {point_key(point)}: {exc}") from None
                    plans.append(TrialPlan(point, nuisance, seed))
        return plans


@dataclass(frozen=True)
class TrialPlan:
    point: dict
    nuisance: dict
    seed: int

    @property
    def key(self) -> str:
        return f"{point_key(self.point)} | {point_key(self.nuisance)} | seed={self.seed}"


def _product(grid: dict[str, list]) -> list[dict]:
    axes = []
    for key, values in grid.items():
        names = key.split(",")
        axes.append([dict(zip(names, v if len(names) > 1 else [v])) for v in values])
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)]


def point_key(values: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items()) or "-"


def _seed_ablations(base: str, name: str, epochs: int, **extra) -> dict:
    return {"name": name, "base_study": base, "fixed": {"epochs": epochs, **extra},
            "scientific": {"ablation": ["none", "no_pe", "single_head", "no_ffn", "freeze_emb", "no_dropout",
                                        "clip_grad"]}}


_QUICK = {"train_limit": 1200, "num_layers": 1, "max_len": 64, "vocab_size": 2000, "batch_size": 32}
PRESETS: dict[str, dict] = {
    "seed-grid": {"name": "seed-grid", "fixed": {"epochs": 3, "batch_size": 64},
                  "scientific": {"embed_dim,num_heads": [[64, 2], [128, 4], [256, 8]], "lr": [5e-4, 1e-3]}},
    "seed-ablations": {**_seed_ablations("seed-grid", "seed-ablations", 3), "nuisance": {"lr": [5e-4, 1e-3]}},
    "quick-grid": {"name": "quick-grid", "fixed": {"epochs": 2, **_QUICK},
                   # tiny models on 1200 rows need a higher lr than the seed grid's to learn in 2 epochs
                   "scientific": {"embed_dim,num_heads": [[32, 2], [64, 4]], "lr": [3e-3, 1e-2]}},
    "quick-ablations": {**_seed_ablations("quick-grid", "quick-ablations", 2, **_QUICK),
                        "nuisance": {"lr": [3e-3, 1e-2]}},
}


def load_spec(source: str | Path, seeds: int | None = None, name: str | None = None) -> StudySpec:
    """A spec from a preset name or a YAML/JSON file; `seeds` and `name` override it."""
    if str(source) in PRESETS:
        values = json.loads(json.dumps(PRESETS[str(source)]))
        where = f"preset {source}"
    elif Path(source).is_file():
        values = load_config_file(source)
        where = str(source)
        values.setdefault("name", Path(source).stem)
    else:
        raise ConfigError(f"{source}: neither a spec file nor a preset ({', '.join(PRESETS)})")
    unknown = sorted(set(values) - set(SPEC_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; a spec has {', '.join(SPEC_FIELDS)}")
    if seeds is not None:
        values["seeds"] = seeds
    if name is not None:
        values["name"] = name
    try:
        return StudySpec(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------- storage
def default_storage(out_dir: str | Path = "outputs") -> str:
    return os.environ.get(ENV_STORAGE) or f"sqlite:///{Path(out_dir).resolve() / 'studies.db'}"


def mask_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str, heartbeat_interval: int = 30, grace_period: int | None = None, max_retry: int = 2):
    """Optuna RDB storage with heartbeats; a stale (killed) trial is failed and re-queued once per retry."""
    import optuna
    import sqlalchemy
    from sqlalchemy import event

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        Path(url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs = {"connect_args": {"timeout": 120}} if is_sqlite else {"pool_pre_ping": True}
    try:
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
            grace_period=grace_period or 4 * heartbeat_interval,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry))
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError, ValueError) as exc:
        cause = exc.__cause__ or exc
        raise NewslabError(f"storage {mask_url(url)} is unreachable ({type(cause).__name__}: "
                           f"{str(cause).splitlines()[0] if str(cause) else ''})") from None
    if is_sqlite:
        # pysqlite starts no transaction for a SELECT, so Optuna's read-check-write claim of a
        # WAITING trial could interleave between processes; BEGIN IMMEDIATE serialises it.
        @event.listens_for(storage.engine, "connect")
        def _no_implicit_transactions(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @event.listens_for(storage.engine, "begin")
        def _begin_immediate(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        storage.engine.dispose()
    return storage


def _load(name: str, storage):
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise NewslabError(f"study {name!r} not found in {mask_url(storage.url)}") from None


def _states():
    from optuna.trial import TrialState
    return TrialState


# ------------------------------------------------------------------- creating a study
def resolve_spec(spec: StudySpec, storage) -> StudySpec:
    """Fill `fixed` from the base study's best configuration (ablation studies)."""
    if spec.base_study is None:
        return spec
    from .results import study_results

    base = study_results(spec.base_study, storage)
    counts = base.counts()
    if counts["complete"] == 0 or counts["waiting"] or counts["running"]:
        raise NewslabError(f"study {spec.name!r}: base study {spec.base_study!r} is not finished "
                           f"({counts}); run it first: newslab study run {spec.base_study}")
    best = base.best()
    own = set(spec.fixed) | set(spec.parameter_names("scientific")) | set(spec.parameter_names("nuisance"))
    inherited = {k: v for k, v in {**base.spec.fixed, **best.point, **best.nuisance}.items() if k not in own}
    resolved = StudySpec(**{**spec.to_dict(), "fixed": {**inherited, **spec.fixed}})
    resolved.trials()  # validate the combined settings before anything runs
    return resolved


def prepare_study(spec: StudySpec, storage, out_dir: str | Path, new_name: str | None = None):
    """Create the study (or load it if the same spec already ran) and queue its missing trials.

    Refuses a changed spec under an existing name. Re-queues each failed point x seed up to
    `max_retries` times; completed trials are never re-run.
    """
    import optuna

    if new_name:
        spec = StudySpec(**{**spec.to_dict(), "name": new_name})
    spec = resolve_spec(spec, storage)
    plans = spec.trials()
    try:
        study = optuna.create_study(study_name=spec.name, storage=storage, direction="maximize")
        study.set_user_attr("spec", spec.to_dict())
        study.set_user_attr("spec_digest", spec.digest)
        study.set_user_attr("out_dir", str(Path(out_dir).resolve()))
        study.set_user_attr("created", time.time())
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=spec.name, storage=storage)
        if study.user_attrs.get("spec_digest") != spec.digest:
            raise NewslabError(
                f"study {spec.name!r} already exists in {mask_url(storage.url)} with a different spec; "
                f"use --new-name NAME to run this spec as a new study") from None
    TrialState = _states()
    by_key: dict[str, list] = {}
    for trial in study.get_trials(deepcopy=False):
        by_key.setdefault(trial.user_attrs.get("key"), []).append(trial.state)
    queued = 0
    for plan in plans:
        states = by_key.get(plan.key, [])
        if any(s in (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING) for s in states):
            continue
        if states.count(TrialState.FAIL) > spec.max_retries:
            continue
        params = {**plan.point, **plan.nuisance, "seed": plan.seed}
        study.enqueue_trial(params, user_attrs={"key": plan.key, "point": plan.point, "nuisance": plan.nuisance,
                                                "seed": plan.seed})
        queued += 1
    study.set_user_attr("ready", True)
    return study, queued


# ----------------------------------------------------------------------------- workers
class _Heartbeat:
    """Records a trial's heartbeat every interval from a background thread."""

    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id, self.stop = storage, trial_id, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a missed beat is retried next interval; the trial goes on
                pass
            if self.stop.wait(self.storage.get_heartbeat_interval()):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _claim(study) -> int | None:
    """Atomically move one WAITING trial to RUNNING for this worker; None when none is left."""
    import optuna

    TrialState = _states()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if study._storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return trial._trial_id
        except (optuna.exceptions.UpdateFinishedTrialError, optuna.exceptions.StorageInternalError):
            continue  # another worker took it first
    return None


def _run_trial(study, trial_id: int, out_dir: Path, threads: int | None, log: Callable[[str], None]) -> None:
    import optuna

    from .train import train

    TrialState = _states()
    trial = optuna.trial.Trial(study, trial_id)
    spec = StudySpec(**study.user_attrs["spec"])
    attrs = trial.user_attrs
    for name in {**attrs["point"], **attrs["nuisance"]}:  # Optuna params, so the dashboard can plot them
        trial.suggest_categorical(name, spec.choices(name))
    trial.suggest_categorical("seed", spec.seed_list)
    values = {**spec.fixed, **attrs["point"], **attrs["nuisance"], "seed": attrs["seed"],
              "out_dir": str(out_dir), "threads": threads or spec.fixed.get("threads")}
    config = RunConfig.from_dict(values, source=f"study {study.study_name}")
    run_dir = out_dir / "studies" / study.study_name / f"trial-{trial.number:04d}"
    trial.set_user_attr("run_dir", str(run_dir))
    log(f"[{study.study_name}] trial {trial.number}: {attrs['key']} ...")
    with _Heartbeat(study._storage, trial_id):
        try:
            result = train(config, run_dir=run_dir, log=None, progress=False,
                           on_epoch=lambda epoch, row: trial.report(row["val_accuracy"], epoch))
        except KeyboardInterrupt:  # failed now, so the next `study run` re-queues it at once
            trial.set_user_attr("fail_reason", "interrupted by the user (Ctrl-C)")
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as exc:  # out of memory, a bug, a bad file: recorded, the study goes on
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            log(f"[{study.study_name}] trial {trial.number} failed: {type(exc).__name__}: {exc}")
            return
    summary = {"test_accuracy": result.test_accuracy, "test_macro_f1": result.test_macro_f1,
               "best_epoch": result.best_epoch, "params": result.params, "wall_time_s": result.wall_time_s,
               "samples_per_s": result.samples_per_s, "history": result.history, "status": result.status}
    for key, value in summary.items():
        trial.set_user_attr(key, value)
    if result.status != "completed":
        trial.set_user_attr("fail_reason", result.reason)
        study.tell(trial, state=TrialState.FAIL)
        log(f"[{study.study_name}] trial {trial.number} failed: {result.reason}")
        return
    predictions = json.loads((run_dir / "predictions.json").read_text())
    trial.set_user_attr("test_predictions", predictions["test"])  # per-example, for paired tests
    study.tell(trial, result.best_val_accuracy)
    log(f"[{study.study_name}] trial {trial.number} done: val {100 * result.best_val_accuracy:.2f}% "
        f"test {100 * result.test_accuracy:.2f}% ({result.wall_time_s:.0f} s)")


def run_worker(name: str, storage, out_dir: str | Path | None = None, threads: int | None = None,
               log: Callable[[str], None] = print, poll_s: float = 2.0) -> int:
    """Take WAITING trials of a study until none is waiting or running; returns trials run here."""
    from optuna.storages import fail_stale_trials

    study = _load(name, storage)
    while not study.user_attrs.get("ready"):  # the creator is still queueing trials
        time.sleep(poll_s)
        study = _load(name, storage)
    out = Path(out_dir) if out_dir else Path(study.user_attrs["out_dir"])
    TrialState = _states()
    done = 0
    while True:
        fail_stale_trials(study)  # a killed worker's trial: FAIL, then re-queued by the retry callback
        trial_id = _claim(study)
        if trial_id is not None:
            _run_trial(study, trial_id, out, threads, log)
            done += 1
            continue
        if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            return done
        time.sleep(poll_s)  # others are running: wait, and take over their trials if they die


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_study(spec: StudySpec, *, workers: int = 1, storage_url: str | None = None, out_dir: str | Path = "outputs",
              new_name: str | None = None, threads: int | None = None, heartbeat_interval: int = 30,
              log: Callable[[str], None] = print):
    """Create or resume a study and run it to the end with `workers` local worker processes.

    Each worker gets cores // workers torch threads, so N workers never oversubscribe the CPU.
    Returns the StudyResult read back from storage.
    """
    from .results import status_line, study_results

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    spec.trials()  # a bad spec fails here, before any storage is touched
    url = storage_url or default_storage(out_dir)
    storage = open_storage(url, heartbeat_interval, max_retry=spec.max_retries)
    study, queued = prepare_study(spec, storage, out_dir, new_name)
    name = study.study_name
    log(f"study {name}: {queued} trial(s) queued | storage {mask_url(url)}")
    if workers == 1:
        run_worker(name, storage, out_dir, threads, log)
    else:
        per_worker = threads or max(1, _cores() // workers)
        command = [sys.executable, "-m", "newslab", "study", "worker", name, "--storage", url, "--out-dir",
                   str(out_dir), "--threads", str(per_worker), "--heartbeat", str(heartbeat_interval)]
        procs = [subprocess.Popen(command) for _ in range(workers)]
        last = ""
        try:
            while any(p.poll() is None for p in procs):
                line = status_line(study_results(name, storage))
                if line != last:
                    log(line)
                    last = line
                time.sleep(2)
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            raise
        failed = [p.returncode for p in procs if p.returncode]
        if failed:
            raise NewslabError(f"study {name}: {len(failed)} worker process(es) exited with {failed}")
    result = study_results(name, storage)
    log(status_line(result))
    return result
