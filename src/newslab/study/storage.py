"""Optuna RDB storage: opening it, and the few operations studies need that Optuna has no public API for.

This is the only module that touches Optuna's internals (`study._storage`, `trial._trial_id`,
building a `Trial` for a trial id): an Optuna upgrade that moves them breaks here and only here.
Optuna is imported inside the functions, so commands that never open a study start fast.

Opening creates a database only when asked (`create=True`, for `study run`), under a lock so that
processes starting together on a new one do not race; a failing database (missing, deleted,
read-only, not a database) is reported in one line naming it (`storage_errors`).

The lock of an SQLite database is a `flock` on an empty file beside it, `.NAME.lock` (`lock_file`),
made with the database (or by the first `prepare_study` on a database made without it) and never
removed: removing it would let two processes lock two different files. It is not the database file
itself: closing a second descriptor of that file would drop SQLite's own POSIX locks in this process.
Where `flock` fails (some NFS mounts: EBADF, ENOLCK) or the lock file cannot be opened, the lock is
not held and says so (`study_lock` gives False), and callers take their unlocked path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, NewslabError

if TYPE_CHECKING:
    import optuna

ENV_STORAGE = "NEWSLAB_STORAGE"
OPTUNA_TABLES = ("studies", "version_info", "alembic_version")
_OPENED: dict[Path, tuple[int, int]] = {}  # SQLite file -> (device, inode) when this process opened it


def default_storage(out_dir: str | Path = "outputs") -> str:
    return os.environ.get(ENV_STORAGE) or f"sqlite:///{Path(out_dir).resolve() / 'studies.db'}"


def mask_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def sqlite_path(url: str) -> Path | None:
    """The absolute database file of an SQLite URL; None for other back ends, in-memory and `file:` URI databases."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database
    except ArgumentError:
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(os.path.abspath(database))


class MissingStorage:
    """What `open_storage(create=False)` gives for a storage that holds no studies yet (no SQLite file,
    or no Optuna tables): reading a study from it says `study NAME not found: REASON`. It opens the
    storage once a `study run` has created it, so a reader may be made before the writer starts."""

    def __init__(self, url: str, reason: str, options: dict[str, Any]):
        self.url, self.reason, self._options = url, reason, options
        self._storage: Any = None

    def opened(self) -> Any:
        """The storage, if it exists by now; else None (and `reason` says why)."""
        if self._storage is None:
            storage = open_storage(self.url, **self._options)
            if isinstance(storage, MissingStorage):
                self.reason = storage.reason
                return None
            self._storage = storage
        return self._storage


def open_storage(
    url: str,
    heartbeat_interval: int = 30,
    grace_period: int | None = None,
    max_retry: int = 2,
    *,
    create: bool = False,
):
    """Optuna RDB storage with heartbeats; a stale (killed) trial is failed and re-queued once per retry.

    create=False (reading, and workers joining a study) creates nothing: a missing SQLite file or a
    database without Optuna's tables gives a `MissingStorage`, of which every study is "not found".
    create=True (`study run`) creates the folder, the file and the tables; several processes may do
    so at once. A SQLite database is then only ever opened, never created again: one deleted while in
    use is reported (`storage_errors`), not silently replaced by an empty one.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    options = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period, "max_retry": max_retry}
    _refuse_sqlite_uri(url)
    path = sqlite_path(url)
    if path is not None:
        missing = _check_sqlite_path(path, create)
        if missing:
            return MissingStorage(url, missing, options)
    # SQLite: one process at a time creates (or checks) the schema, so starts on a new file never race;
    # the lock file is made with the database, so a reader never creates it
    lock = _file_lock(path, create=create and not path.exists()) if path is not None else contextlib.nullcontext()
    with lock:
        if not create:
            missing = _missing_tables(url, path)
            if missing:
                return MissingStorage(url, missing, options)
        storage = _rdb_storage(url, path, create, options)
        if path is not None:
            stat = path.stat()
            _OPENED[path] = (stat.st_dev, stat.st_ino)
    return storage


def _check_sqlite_path(path: Path, create: bool) -> str | None:
    """Why there is no database at `path` to read (None: there is one, or it may be created); raises
    NewslabError for a path that can hold none."""
    try:
        if path.is_dir():
            raise NewslabError(f"study database {path}: is a folder, not a database file")
        if path.exists():
            return None
        above = next(p for p in path.parents if p.exists())
        blocked = f"{above} is a file, not a folder" if not above.is_dir() else None
        if not create:
            return f"no database at {path}" + (f" ({blocked})" if blocked else "")
        if blocked:
            raise NewslabError(f"study database {path}: cannot create it: {blocked}")
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = exc.filename or path.parent
        raise NewslabError(f"study database {path}: cannot create folder {where}: {exc.strerror or exc}") from None
    return None


def _refuse_sqlite_uri(url: str) -> None:
    """ConfigError for an SQLite `file:` URI: it would bypass what guards a database file here (the
    creation lock, BEGIN IMMEDIATE claiming, never re-creating a deleted file)."""
    if not url.startswith("sqlite"):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database or ""
    except ArgumentError:
        return  # reported by the storage itself, in its own line
    if database.startswith("file:"):
        raise ConfigError(
            f"storage {mask_url(url)}: SQLite file: URIs are not supported; give the database's path, "
            "e.g. sqlite:////abs/path/studies.db"
        )


def lock_file(path: Path) -> Path:
    """The lock file of SQLite database `path`: empty, beside it, never removed."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def _file_lock(path: Path, create: bool) -> Iterator[bool]:
    """An exclusive lock between processes on the lock file of SQLite database `path`: True while held;
    False (and no lock) where there is none to take: no lock file (and not `create`), one that cannot be
    opened for writing, no flock (Windows) or a file system that refuses it (NFS: EBADF, ENOLCK)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): SQLite creation falls back to retries
        yield False
        return
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | (os.O_CREAT if create else 0)
    try:
        fd = os.open(lock_file(path), flags, 0o666)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # EBADF, ENOLCK, EOPNOTSUPP, EINVAL: go on unlocked, and say so
            locked = False
        else:
            locked = True
        yield locked
    finally:
        os.close(fd)  # releases the lock


class _SqliteFile:
    """Connects to one SQLite file in `mode` (ro, rw, rwc): with `rw` a missing file is an error, never
    a new empty database. (A class, not a closure, so that Optuna can pickle the storage.)"""

    def __init__(self, path: Path, mode: str):
        self.path, self.mode = path, mode

    def __call__(self):
        import sqlite3

        uri = f"file:{urllib.parse.quote(str(self.path))}?mode={self.mode}"
        return sqlite3.connect(uri, uri=True, timeout=120, check_same_thread=False)


def _engine_kwargs(path: Path | None, mode: str) -> dict[str, Any]:
    return {"creator": _SqliteFile(path, mode)} if path is not None else {"pool_pre_ping": True}


def _missing_tables(url: str, path: Path | None) -> str | None:
    """Why this existing database holds no studies (None: it has Optuna's tables), read without writing."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, **_engine_kwargs(path, "ro"))
        try:
            with engine.connect() as connection:
                inspector = sqlalchemy.inspect(connection)
                if all(inspector.has_table(t) for t in OPTUNA_TABLES) and all(
                    connection.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar() for t in OPTUNA_TABLES[1:]
                ):
                    return None
        finally:
            engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        raise NewslabError(_opening_failure(url, path, exc)) from None
    return f"no studies in {path if path is not None else mask_url(url)} (no Optuna tables)"


def _rdb_storage(url: str, path: Path | None, create: bool, options: dict[str, Any]):
    import optuna
    import sqlalchemy
    from sqlalchemy import event

    interval = options["heartbeat_interval"]
    attempts = 6 if create else 1
    for attempt in range(attempts):
        engine_kwargs = _engine_kwargs(path, "rwc" if create else "rw")
        try:
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=options["grace_period"] or 4 * interval,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=options["max_retry"]
                ),
                skip_table_creation=not create,
            )
            break
        except (
            sqlalchemy.exc.SQLAlchemyError,
            optuna.exceptions.StorageInternalError,
            ImportError,
            ValueError,
            RuntimeError,
        ) as exc:
            if attempt + 1 < attempts and _creation_race(exc):  # another process created the same table or row
                time.sleep(0.05 * 2**attempt * (1 + random.random()))
                continue
            raise NewslabError(_opening_failure(url, path, exc)) from None
    if path is None:  # not SQLite, or in-memory SQLite (one process); `file:` URIs are refused
        return storage
    engine_kwargs["creator"].mode = "rw"  # created: from now on only opened, never created again

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


# ----------------------------------------------------------------------------- failures
def _root(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _text(exc: BaseException) -> str:
    root = _root(exc)
    return str(root).splitlines()[0] if str(root).strip() else type(root).__name__


def _creation_race(exc: BaseException) -> bool:
    root = _root(exc)
    integrity = any(c.__name__ == "IntegrityError" for c in type(root).__mro__)
    return integrity or any(s in str(root) for s in ("already exists", "UNIQUE constraint", "duplicate key"))


def _contention(exc: BaseException) -> bool:
    """A write that lost to another process's (retrying it is right), not a broken storage."""
    return any(s in str(_root(exc)) for s in ("database is locked", "deadlock", "could not serialize"))


def _sqlite_cause(path: Path, text: str | None) -> str | None:
    """What is wrong with this SQLite file, in words; None if nothing is seen and `text` is None."""
    known = _OPENED.get(path)
    try:
        stat = path.stat()
        now: tuple[int, int] | None = (stat.st_dev, stat.st_ino)
    except FileNotFoundError:
        now = None
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    said = f" ({text})" if text else ""
    if known and now is None:
        return f"the file was deleted while in use{said}"
    if known and now != known:
        return f"the file was replaced while in use{said}"
    if text is None:
        return None
    folder_read_only = not os.access(path.parent, os.W_OK)
    if "readonly" in text or "read-only" in text or ("unable to open" in text and folder_read_only):
        if folder_read_only:
            return f"{'cannot create it: ' if now is None else ''}its folder {path.parent} is read-only{said}"
        return f"the file is read-only{said}"
    if "unable to open" in text:
        return f"no database at {path}{said}" if now is None else f"cannot open it{said}"
    if "not a database" in text:
        return f"not an SQLite database{said}"
    return text


def _opening_failure(url: str, path: Path | None, exc: BaseException) -> str:
    if path is not None:
        return f"study database {path}: {_sqlite_cause(path, _text(exc))}"
    return f"storage {mask_url(url)} is unreachable ({type(_root(exc)).__name__}: {_text(exc)})"


def storage_failure(url: str, exc: BaseException) -> str:
    """One line on a storage that failed in use: which, and why."""
    path = sqlite_path(url)
    if path is not None:
        return f"study database {path}: {_sqlite_cause(path, _text(exc))}"
    return f"storage {mask_url(url)} failed ({type(_root(exc)).__name__}: {_text(exc)})"


@contextlib.contextmanager
def storage_errors(storage, prefix: str = "") -> Iterator[None]:
    """Turns a failure of the storage itself (a database deleted, replaced, read-only, unreachable)
    into one NewslabError line, `prefix` first, naming the database."""
    import optuna
    import sqlalchemy

    try:
        yield
    except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError) as exc:
        raise NewslabError(prefix + storage_failure(getattr(storage, "url", "?"), exc)) from exc


def check_storage(storage, prefix: str = "") -> None:
    """NewslabError if this process's SQLite database was deleted or replaced since it was opened
    (the open connections would go on reading the old file and never notice)."""
    path = sqlite_path(getattr(storage, "url", ""))
    cause = _sqlite_cause(path, None) if path is not None else None
    if cause:
        raise NewslabError(f"{prefix}study database {path}: {cause}")


def advisory_key(name: str) -> int:
    """The PostgreSQL advisory lock key of study `name` (a signed 64-bit integer)."""
    return int.from_bytes(hashlib.sha256(f"newslab study {name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def study_lock(storage, name: str) -> Iterator[bool]:
    """Holds off other processes preparing study `name` in this storage (True), so that creating it,
    recording its spec and queueing its trials happen once. SQLite: the database's lock file (False
    where it cannot be taken, e.g. on NFS without locks); PostgreSQL: a transaction-level advisory
    lock on a connection of its own, whose transaction spans the block: released when it ends, or by
    the server if this process dies (it holds behind transaction poolers too). Other back ends: no
    lock (False)."""
    from sqlalchemy import text

    url = getattr(storage, "url", "")
    path = sqlite_path(url)
    if path is not None:
        # made here for a database made without it, as preparing writes the database anyway; not for
        # one that cannot be written: preparing fails at once then, and leaves nothing behind
        with _file_lock(path, create=os.access(path, os.W_OK)) as locked:
            yield locked
        return
    if not url.startswith("postgresql"):
        yield False
        return
    with storage.engine.connect() as connection:
        transaction = connection.begin()
        done = False
        try:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})
            yield True
            done = True
        finally:
            try:  # ends the transaction, and with it the lock (nothing was written in it)
                if done:
                    transaction.commit()
                else:
                    transaction.rollback()
            except Exception:
                connection.invalidate()  # its session is gone, and with it the lock; never pool it again


def trial_states():
    """Optuna's TrialState enum (imported on first use)."""
    from optuna.trial import TrialState

    return TrialState


# ------------------------------------------------------------------------------ studies
def opened(storage, name: str, create: bool = False):
    """The storage itself, for study `name`: a `MissingStorage` that still holds nothing says
    `study NAME not found: REASON` (or, to `create`, that the storage was opened for reading)."""
    if not isinstance(storage, MissingStorage):
        return storage
    real = storage.opened()
    if real is not None:
        return real
    if create:
        raise NewslabError(
            f"study {name!r} cannot be created: {storage.reason} "
            f"(the storage was opened for reading; open_storage(..., create=True) creates it)"
        )
    raise NewslabError(f"study {name!r} not found: {storage.reason}")


def load_study(name: str, storage) -> optuna.Study:
    import optuna

    storage = opened(storage, name)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise NewslabError(f"study {name!r} not found in {mask_url(storage.url)}") from None


def create_study(name: str, storage, user_attrs: dict[str, Any]) -> optuna.Study | None:
    """A new study with these attributes (in this order); None if one of that name exists already."""
    import optuna

    try:
        study = optuna.create_study(study_name=name, storage=opened(storage, name, create=True), direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        return None
    for key, value in user_attrs.items():
        study.set_user_attr(key, value)
    return study


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the RUNNING trials whose worker stopped beating; the retry callback re-queues them."""
    from optuna.storages import fail_stale_trials as fail

    fail(study)


def set_stale_retries(study: optuna.Study, max_retry: int) -> None:
    """Re-queue a stale trial of `study` at most `max_retry` times (the spec's `max_retries`), whatever
    this storage was opened with: it is this process's storage that runs the callback."""
    import optuna

    backend: Any = getattr(study._storage, "_backend", study._storage)  # RDBStorage behind Optuna's cache
    callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    backend.heartbeat_stale_trial_callback = callback
    if hasattr(backend, "failed_trial_callback"):  # Optuna's older name of the same callback
        backend.failed_trial_callback = callback


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
                _first_heartbeat(study, trial._trial_id)
                return trial._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker took it first
        except optuna.exceptions.StorageInternalError as exc:
            if _contention(exc):
                continue  # lost a write race to another worker
            raise  # a broken storage (deleted, read-only): never skip every trial and poll for ever
    return None


def _first_heartbeat(study: optuna.Study, trial_id: int) -> None:
    """Beat once for a trial just claimed: Optuna never fails a RUNNING trial without a heartbeat, so a
    worker dying before its heartbeat thread starts would leave it RUNNING for ever. If even this beat
    cannot be written, the trial is failed (the next `study run` re-queues it), then the error raised."""
    if heartbeat_interval(study) is None:
        return
    try:
        record_heartbeat(study, trial_id)
    except BaseException:
        with contextlib.suppress(Exception):
            fail_trial(study, trial_id, "its worker could not record a heartbeat after claiming it")
        raise


def fail_trial(study: optuna.Study, trial_id: int, reason: str) -> None:
    """Mark a RUNNING trial FAIL with `fail_reason` (by id: no Trial object is needed)."""
    study._storage.set_trial_user_attr(trial_id, "fail_reason", reason[:500])
    study._storage.set_trial_state_values(trial_id, state=trial_states().FAIL)


def finished_meanwhile(exc: BaseException) -> bool:
    """Whether `exc` says a trial this worker runs was finished by another process (failed as stale)."""
    import optuna

    if isinstance(exc, optuna.exceptions.UpdateFinishedTrialError):
        return True
    return isinstance(exc, ValueError) and str(exc).startswith("Cannot tell a ")


def trial_attrs(study: optuna.Study, trial_id: int) -> dict[str, Any]:
    """A trial's user attributes, by id (before a Trial object exists for it)."""
    return study._storage.get_trial(trial_id).user_attrs


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
