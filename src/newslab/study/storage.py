"""Optuna RDB storage: opening it, and the few operations studies need that Optuna has no public API for.

This is the only module that touches Optuna's internals (`study._storage`, `trial._trial_id`,
building a `Trial` for a trial id): an Optuna upgrade that moves them breaks here and only here.
Optuna is imported inside the functions, so commands that never open a study start fast.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NewslabError

if TYPE_CHECKING:
    import optuna

ENV_STORAGE = "NEWSLAB_STORAGE"


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
    engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}} if is_sqlite else {"pool_pre_ping": True}
    try:
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period or 4 * heartbeat_interval,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
        )
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError, ValueError) as exc:
        cause = exc.__cause__ or exc
        raise NewslabError(
            f"storage {mask_url(url)} is unreachable ({type(cause).__name__}: "
            f"{str(cause).splitlines()[0] if str(cause) else ''})"
        ) from None
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


def trial_states():
    """Optuna's TrialState enum (imported on first use)."""
    from optuna.trial import TrialState

    return TrialState


# ------------------------------------------------------------------------------ studies
def load_study(name: str, storage) -> optuna.Study:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise NewslabError(f"study {name!r} not found in {mask_url(storage.url)}") from None


def create_study(name: str, storage, user_attrs: dict[str, Any]) -> optuna.Study | None:
    """A new study with these attributes; None if one of that name exists already."""
    import optuna

    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        return None
    for key, value in user_attrs.items():
        study.set_user_attr(key, value)
    return study


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the RUNNING trials whose worker stopped beating; the retry callback re-queues them."""
    from optuna.storages import fail_stale_trials as fail

    fail(study)


# ------------------------------------------------------------------------------- trials
def claim_trial(study: optuna.Study) -> int | None:
    """Atomically move one WAITING trial to RUNNING for this worker; its id, or None when none is left.

    Optuna's own `ask()` may hand one WAITING trial to two workers; the state transition in the
    storage succeeds for exactly one of them.
    """
    import optuna

    TrialState = trial_states()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if study._storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return trial._trial_id
        except (optuna.exceptions.UpdateFinishedTrialError, optuna.exceptions.StorageInternalError):
            continue  # another worker took it first
    return None


def running_trial(study: optuna.Study, trial_id: int) -> optuna.trial.Trial:
    """The live Trial of a claimed trial id, to report, suggest and `study.tell` through."""
    import optuna

    return optuna.trial.Trial(study, trial_id)


def heartbeat_interval(study: optuna.Study) -> int | None:
    backend: Any = study._storage  # RDBStorage (behind Optuna's cache): has heartbeats, unlike BaseStorage
    return backend.get_heartbeat_interval()


def record_heartbeat(study: optuna.Study, trial_id: int) -> None:
    """Tell the storage this trial's worker is alive (a stale heartbeat fails the trial)."""
    backend: Any = study._storage
    backend.record_heartbeat(trial_id)
