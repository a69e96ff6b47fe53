"""Fault injection on studies: several `study run`s starting together on a new database, reading
commands on a missing or broken database, read-only and vanishing databases, and records that hold
from any working directory. Each test checks the exact one-line outcome and that nothing else changed."""

from __future__ import annotations

import collections
import contextlib
import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newslab.cli import main
from newslab.errors import ConfigError, NewslabError
from newslab.runs import RunFolder
from newslab.study import StudySpec, open_storage, prepare_study, run_worker, study_results
from newslab.study import storage as store
from test_study import TINY, tiny_spec, write_spec

train_mod = importlib.import_module("newslab.train")
runner = importlib.import_module("newslab.study.runner")  # the module; `newslab.train` is also the function


@pytest.fixture(autouse=True)
def no_storage_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLAB_STORAGE", raising=False)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `root`."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def small_spec(data_dir: Path, name: str = "tiny", lrs: tuple[float, ...] = (1e-3, 3e-3)) -> StudySpec:
    fixed = {**TINY, "data_dir": str(data_dir), "embed_dim": 16, "num_heads": 2}
    return tiny_spec(data_dir, name, seeds=1, fixed=fixed, scientific={"lr": list(lrs)})


def postgres_url() -> str:
    url = os.environ.get("NEWSLAB_TEST_POSTGRES_URL")
    if not url:
        message = "NEWSLAB_TEST_POSTGRES_URL is not set (.ci/services.sh starts PostgreSQL and sets it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return url


# ------------------------------------------------------- several processes, one new database
PREPARE = r"""
import json, sys, time
from pathlib import Path
import optuna, sqlalchemy  # loaded before the start line, so that the processes really start together
from newslab.study import StudySpec, open_storage, prepare_study

url, spec, out, ready, go = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5])
ready.touch()
while not go.exists():
    time.sleep(0.001)
study, queued = prepare_study(StudySpec(**spec), open_storage(url, create=True), out)
print(json.dumps({"study": study.study_name, "queued": queued}))
"""


def prepare_together(url: str, spec: StudySpec, where: Path, processes: int) -> list[int]:
    """`processes` processes open the storage and prepare `spec` at the same instant; each one's queued count."""
    where.mkdir()
    go = where / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PREPARE,
                url,
                json.dumps(spec.to_dict()),
                str(where),
                str(where / f"ready-{i}"),
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    deadline = time.time() + 120
    while not all((where / f"ready-{i}").exists() for i in range(processes)):
        assert time.time() < deadline and all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    for i in range(processes):
        (where / f"ready-{i}").unlink()
    go.unlink()
    results = [json.loads(out) for out, _ in outputs]
    assert {r["study"] for r in results} == {spec.name}
    return [r["queued"] for r in results]


def assert_queued_once(url: str, spec: StudySpec, queued: list[int]) -> None:
    import optuna

    trials = len(spec.trials())
    assert sorted(queued) == [0] * (len(queued) - 1) + [trials]  # one process queued them all, the others none
    storage = open_storage(url)
    study = optuna.load_study(study_name=spec.name, storage=storage)
    keys = collections.Counter(t.user_attrs["key"] for t in study.get_trials())
    assert len(keys) == trials and set(keys.values()) == {1}
    assert {t.state.name for t in study.get_trials()} == {"WAITING"}
    assert study.user_attrs["spec_digest"] == spec.digest and study.user_attrs["ready"] is True
    assert study_results(spec.name, storage).counts() == {"complete": 0, "running": 0, "failed": 0, "waiting": trials}


def test_four_processes_create_one_sqlite_database_and_queue_each_trial_once(tmp_path: Path, data_dir: Path) -> None:
    import optuna

    spec = tiny_spec(data_dir, seeds=2)  # 8 trials
    for attempt in range(3):  # the race, unfixed, lost in most attempts
        where = tmp_path / f"attempt-{attempt}"
        url = f"sqlite:///{where / 'studies.db'}"
        queued = prepare_together(url, spec, where, processes=4)
        assert_queued_once(url, spec, queued)
        assert optuna.get_all_study_names(open_storage(url)) == ["tiny"]
        # no journal left behind; the lock file stays, empty, on purpose (see storage.lock_file)
        assert sorted(os.listdir(where)) == [".studies.db.lock", "studies.db"]
        assert (where / ".studies.db.lock").stat().st_size == 0


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """`url` on a new, empty PostgreSQL schema (dropped afterwards): a new database, to Optuna."""
    import sqlalchemy

    schema = f"newslab_test_{os.getpid()}_{time.time_ns()}"
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sqlalchemy.exc.ProgrammingError as exc:  # no CREATE privilege on the shared server
        engine.dispose()
        pytest.skip(f"cannot create a PostgreSQL schema: {str(exc.orig).splitlines()[0]}")
    try:
        yield url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("tables", ["existing", "new"])
def test_four_processes_create_one_postgresql_study_and_queue_each_trial_once(
    tmp_path: Path, data_dir: Path, tables: str
) -> None:
    import optuna

    for attempt in range(2):  # each on new tables (a schema of its own), or on the shared ones
        spec = tiny_spec(data_dir, f"pg-race-{os.getpid()}-{time.time_ns()}", seeds=2)  # fresh on the shared server
        with fresh_schema(postgres_url()) if tables == "new" else contextlib.nullcontext(postgres_url()) as url:
            try:
                queued = prepare_together(url, spec, tmp_path / f"attempt-{attempt}", processes=4)
                assert_queued_once(url, spec, queued)
                assert optuna.get_all_study_names(open_storage(url)).count(spec.name) == 1
            finally:  # a new schema is dropped whole
                if tables == "existing":
                    with contextlib.suppress(KeyError):
                        optuna.delete_study(study_name=spec.name, storage=open_storage(url))


def test_a_study_whose_creator_died_before_recording_its_spec_is_completed_by_the_next_run(
    tmp_path: Path, data_dir: Path
) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = small_spec(data_dir)
    optuna.create_study(study_name="tiny", storage=open_storage(url, create=True), direction="maximize")
    with pytest.raises(NewslabError) as err:
        study_results("tiny", open_storage(url))
    assert str(err.value) == (
        f"study 'tiny' in {url} has no spec recorded yet "
        "(being created, or its creation was interrupted: run `newslab study run` again)"
    )
    study, queued = prepare_study(spec, open_storage(url, create=True), tmp_path)
    assert queued == 2 and study.user_attrs["spec_digest"] == spec.digest and study.user_attrs["ready"] is True
    assert study_results("tiny", open_storage(url)).counts()["waiting"] == 2


# ------------------------------------------------------------- reading creates nothing
@pytest.mark.parametrize("command", ["status", "results", "worker", "report"])
def test_reading_a_study_of_no_database_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, command: str
) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out-dir, outputs, is relative
    args = ["report", "ghost"] if command == "report" else ["study", command, "ghost"]
    assert main(args) == 2
    db = tmp_path / "outputs" / "studies.db"
    assert capsys.readouterr().err == f"newslab: error: study 'ghost' not found: no database at {db}\n"
    assert main([*args, "--storage", f"sqlite:///{tmp_path / 'elsewhere' / 's.db'}"]) == 2
    missing = tmp_path / "elsewhere" / "s.db"
    assert capsys.readouterr().err == f"newslab: error: study 'ghost' not found: no database at {missing}\n"
    assert list(tmp_path.iterdir()) == []


def test_reading_an_existing_database_changes_nothing(tmp_path: Path, data_dir: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    prepare_study(small_spec(data_dir), open_storage(url, create=True), tmp_path)
    empty = tmp_path / "empty.db"
    empty.touch()  # a database without Optuna's tables
    before = snapshot(tmp_path)
    assert main(["study", "status", "ghost", "--storage", url]) == 2
    assert capsys.readouterr().err == f"newslab: error: study 'ghost' not found in {url}\n"
    assert main(["study", "status", "tiny", "--storage", url]) == 0
    assert "0/2 complete, 0 running, 0 failed, 2 waiting" in capsys.readouterr().out
    assert main(["study", "results", "tiny", "--storage", f"sqlite:///{empty}"]) == 2
    assert (
        capsys.readouterr().err == f"newslab: error: study 'tiny' not found: no studies in {empty} (no Optuna tables)\n"
    )
    assert snapshot(tmp_path) == before


def test_a_storage_opened_for_reading_finds_the_study_once_a_run_creates_it(tmp_path: Path, data_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 's.db'}"
    reader = open_storage(url)  # before the database exists, as a monitor started first would
    with pytest.raises(NewslabError, match=r"^study 'tiny' not found: no database at "):
        study_results("tiny", reader)
    with pytest.raises(NewslabError) as err:
        prepare_study(small_spec(data_dir), reader, tmp_path)  # a reading storage never creates the database
    assert str(err.value) == (
        f"study 'tiny' cannot be created: no database at {tmp_path / 'db' / 's.db'} "
        "(the storage was opened for reading; open_storage(..., create=True) creates it)"
    )
    assert not (tmp_path / "db").exists()
    prepare_study(small_spec(data_dir), open_storage(url, create=True), tmp_path)
    assert study_results("tiny", reader).counts()["waiting"] == 2


# ------------------------------------------------------------------ paths that hold no database
@pytest.mark.parametrize("how", ["--out-dir", "--storage"])
def test_a_database_path_under_a_regular_file_is_one_line(tmp_path: Path, data_dir: Path, capsys, how: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("a file, not a folder\n")
    spec = write_spec(tmp_path / "tiny.yaml", small_spec(data_dir))
    db = afile / "x" / "studies.db"
    where = ["--out-dir", str(afile / "x")] if how == "--out-dir" else ["--storage", f"sqlite:///{db}"]
    before = snapshot(tmp_path)
    assert main(["study", "run", str(spec), *where]) == 2
    err = capsys.readouterr().err
    assert err == f"newslab: error: study database {db}: cannot create it: {afile} is a file, not a folder\n"
    for command in ("status", "worker"):
        assert main(["study", command, "tiny", *where]) == 2
        err = capsys.readouterr().err
        assert err == f"newslab: error: study 'tiny' not found: no database at {db} ({afile} is a file, not a folder)\n"
    assert snapshot(tmp_path) == before


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path, data_dir: Path, capsys) -> None:
    db = tmp_path / "s.db"
    db.write_text("these are notes, not a database\n" * 50)
    spec = write_spec(tmp_path / "tiny.yaml", small_spec(data_dir))
    before = snapshot(tmp_path)
    url = f"sqlite:///{db}"
    for args in (["run", str(spec)], ["status", "tiny"], ["worker", "tiny"]):
        assert main(["study", *args, "--storage", url]) == 2
        err = capsys.readouterr().err
        assert err == f"newslab: error: study database {db}: not an SQLite database (file is not a database)\n"
    assert snapshot(tmp_path) == before


def read_only(*paths: Path) -> list[str]:
    """A command prefix: run in a private mount namespace where `paths` are read-only bind mounts
    (faithful where chmod is not: root writes through any mode bits, not through a read-only mount)."""
    mounts = " && ".join(
        f"mount --bind {q} {q} && mount -o remount,ro,bind {q} {q}" for q in (shlex.quote(str(p)) for p in paths)
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$@"', "sh"]


def newslab_read_only(paths: list[Path], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*read_only(*paths), sys.executable, "-m", "newslab", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NEWSLAB_ALLOCATOR": "system"},
        timeout=300,
    )


def test_a_read_only_database_or_folder_is_one_line_and_unchanged(tmp_path: Path, data_dir: Path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    if shutil.which("unshare") is None or subprocess.run([*read_only(probe), "true"], capture_output=True).returncode:
        pytest.skip("needs a private mount namespace (root, util-linux unshare) for read-only mounts")
    probe.rmdir()
    folder = tmp_path / "db"
    db = folder / "studies.db"
    spec = small_spec(data_dir)
    prepare_study(spec, open_storage(f"sqlite:///{db}", create=True), tmp_path)  # two trials waiting
    (tmp_path / "file").mkdir()
    lone = tmp_path / "file" / "studies.db"  # in a writable folder, the file alone read-only
    shutil.copy(db, lone)
    empty = tmp_path / "empty"
    empty.mkdir()
    spec_file = write_spec(tmp_path / "tiny.yaml", spec)
    before = snapshot(tmp_path)

    write = "(attempt to write a readonly database)"
    cases = [
        (
            [folder],
            ["worker", "tiny", "--storage", f"sqlite:///{db}"],
            f"study database {db}: its folder {folder} is read-only {write}",
        ),
        (
            [lone],
            ["worker", "tiny", "--storage", f"sqlite:///{lone}"],
            f"study database {lone}: the file is read-only {write}",
        ),
        (
            [lone],
            ["run", str(spec_file), "--storage", f"sqlite:///{lone}"],
            f"study database {lone}: the file is read-only {write}",
        ),
        (
            [empty],
            ["run", str(spec_file), "--out-dir", str(empty)],
            f"study database {empty / 'studies.db'}: cannot create it: its folder {empty} is read-only "
            "(unable to open database file)",
        ),
    ]
    for paths, args, line in cases:
        proc = newslab_read_only(paths, "study", *args)
        prefix = "study 'tiny': " if args[0] == "worker" or "--storage" in args else ""
        assert (proc.returncode, proc.stderr) == (2, f"newslab: error: {prefix}{line}\n"), (args, proc.stdout)
    proc = newslab_read_only([folder], "study", "status", "tiny", "--storage", f"sqlite:///{db}")  # reading works
    assert proc.returncode == 0 and "0/2 complete, 0 running, 0 failed, 2 waiting" in proc.stdout, proc.stderr
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------ a database gone mid-study
@pytest.mark.parametrize("fault", ["deleted", "replaced"])
def test_a_database_deleted_mid_study_stops_the_worker_in_one_line(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys, fault: str
) -> None:
    db = tmp_path / "s.db"
    real_train = train_mod.train
    calls = []

    def vanishing(config, **kwargs):  # the first trial trains; then its database is gone
        calls.append(config["lr"])
        result = real_train(config, **kwargs)
        if fault == "deleted":
            db.unlink()
        else:
            (tmp_path / "notes").write_text("not a database\n")
            os.replace(tmp_path / "notes", db)
        return result

    monkeypatch.setattr(train_mod, "train", vanishing)
    spec = write_spec(tmp_path / "tiny.yaml", small_spec(data_dir))
    assert main(["study", "run", str(spec), "--storage", f"sqlite:///{db}", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"newslab: error: study 'tiny': study database {db}: the file was {fault} while in use (")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert len(calls) == 1  # stopped: the second trial never started
    if fault == "deleted":  # and never re-created as an empty database
        assert not db.exists() and not any(p.name.startswith("s.db") for p in tmp_path.iterdir())
    else:
        assert db.read_text() == "not a database\n"


# ------------------------------------------------------------------ records from any directory
def test_records_hold_absolute_paths_found_from_any_working_directory(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna

    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    spec = write_spec(tmp_path / "tiny.yaml", small_spec(data_dir))
    monkeypatch.chdir(here)
    assert main(["study", "run", str(spec), "--out-dir", "rel-out"]) == 0  # a relative --out-dir
    url = f"sqlite:///{here / 'rel-out' / 'studies.db'}"
    prepare_study(small_spec(data_dir, "tiny-worker", (2e-3,)), open_storage(url), "rel-out")
    assert main(["study", "worker", "tiny-worker", "--out-dir", "rel-out"]) == 0  # a worker given one too

    monkeypatch.chdir(there)
    out = (here / "rel-out").resolve()
    storage = open_storage(url)
    for name, trials in (("tiny", 2), ("tiny-worker", 1)):
        assert optuna.load_study(study_name=name, storage=storage).user_attrs["out_dir"] == str(out)
        result = study_results(name, storage)
        assert result.counts()["complete"] == trials
        for trial in result.trials:
            run_dir = Path(trial.run_dir or "")
            assert run_dir.is_absolute() and run_dir.parent == out / "studies" / name
            assert (run_dir / "final.json").is_file()
            assert RunFolder(run_dir).config()["out_dir"] == str(out)


# ------------------------------------------------------------------ locks
def test_the_sqlite_lock_is_a_file_beside_the_database(tmp_path: Path, data_dir: Path) -> None:
    import fcntl

    db = tmp_path / "db" / "s.db"
    storage = open_storage(f"sqlite:///{db}", create=True)
    lock = tmp_path / "db" / ".s.db.lock"
    assert sorted(os.listdir(db.parent)) == [".s.db.lock", "s.db"]
    with store.study_lock(storage, "tiny") as locked:
        assert locked
        fd = os.open(lock, os.O_RDWR)  # another open file: flock's owner, as another process's would be
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released
    finally:
        os.close(fd)


@pytest.mark.parametrize("error", ["EBADF", "ENOLCK", "EOPNOTSUPP", "EINVAL"])
def test_a_file_system_without_flock_runs_unlocked_and_says_so(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    import errno
    import fcntl

    def no_flock(fd, operation):  # flock on NFS: "Bad file descriptor", "No locks available"
        code = getattr(errno, error)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", no_flock)
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url, create=True)  # creating works, unlocked
    with store.study_lock(storage, "tiny") as locked:
        assert locked is False  # honest: prepare_study takes its unlocked (waiting) path
    study, queued = prepare_study(small_spec(data_dir), storage, tmp_path)
    assert queued == 2 and study_results("tiny", open_storage(url)).counts()["waiting"] == 2


@pytest.mark.postgres
def test_the_postgresql_study_lock_lives_in_one_transaction(tmp_path: Path) -> None:
    import threading

    import sqlalchemy

    url = postgres_url()
    storage = open_storage(url, create=True)
    name = f"pg-lock-{os.getpid()}-{time.time_ns()}"
    key = store.advisory_key(name)
    holders = sqlalchemy.text(
        "SELECT a.state, l.granted FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1 ORDER BY l.granted"
    )
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")

    def holding() -> list[tuple[str, bool]]:
        with engine.connect() as connection:
            rows = connection.execute(holders, {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF})
            return [(state, granted) for state, granted in rows]

    try:
        with store.study_lock(storage, name) as locked:
            # held by a transaction left open (a session lock would show its session "idle")
            assert locked and holding() == [("idle in transaction", True)]
            entered = threading.Event()

            def other() -> None:
                with store.study_lock(storage, name):
                    entered.set()

            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.5)
            assert not entered.is_set() and [granted for _, granted in holding()] == [False, True]
        thread.join(timeout=30)
        assert entered.is_set() and holding() == []  # the transaction ended: the lock is gone
        with pytest.raises(RuntimeError, match="inside"), store.study_lock(storage, name):
            raise RuntimeError("failed inside the lock")
        assert holding() == []  # rolled back: released as well
        with store.study_lock(storage, name) as locked:  # and the pooled connections still work
            assert locked
    finally:
        engine.dispose()


# ------------------------------------------------------------------ SQLite URLs
def test_an_sqlite_file_uri_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///file:{tmp_path / 'x.db'}?uri=true"  # would bypass BEGIN IMMEDIATE, so claim twice
    line = (
        f"storage {url}: SQLite file: URIs are not supported; give the database's path, "
        "e.g. sqlite:////abs/path/studies.db"
    )
    for create in (False, True):
        with pytest.raises(ConfigError) as err:
            open_storage(url, create=create)
        assert str(err.value) == line
    assert main(["study", "status", "tiny", "--storage", url]) == 2
    assert capsys.readouterr().err == f"newslab: error: {line}\n"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ trials that never stay RUNNING
def load(url: str, name: str = "tiny"):
    import optuna

    return optuna.load_study(study_name=name, storage=open_storage(url))


def states(url: str, name: str = "tiny") -> list[str]:
    return [t.state.name for t in load(url, name).get_trials()]


def test_a_worker_dead_right_after_claiming_leaves_a_stale_trial_not_a_running_one(
    tmp_path: Path, data_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url, heartbeat_interval=1, grace_period=1, create=True)
    prepare_study(small_spec(data_dir, lrs=(1e-3,)), storage, tmp_path)
    study = store.load_study("tiny", storage)
    assert store.claim_trial(study) is not None  # ... and the worker dies before its heartbeat thread starts
    time.sleep(2.2)  # past the grace period (SQLite's clock counts whole seconds)
    store.fail_stale_trials(study)
    assert states(url) == ["FAIL", "WAITING"]  # failed as stale, and re-queued


@pytest.mark.parametrize("fault", ["error", "interrupt"])
def test_a_trial_whose_set_up_fails_is_failed_not_left_running(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url, create=True)
    spec = small_spec(data_dir)
    prepare_study(spec, storage, tmp_path)
    real_config = StudySpec.config

    def broken(self, point, nuisance, seed, stop_epoch=None, **placement):
        if placement:  # the worker's call (validation passes none)
            raise KeyboardInterrupt if fault == "interrupt" else RuntimeError("simulated set-up failure")
        return real_config(self, point, nuisance, seed, stop_epoch, **placement)

    monkeypatch.setattr(StudySpec, "config", broken)
    lines: list[str] = []
    if fault == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            run_worker("tiny", storage, tmp_path, log=lines.append)
        assert states(url) == ["FAIL", "WAITING"]
        reason = "interrupted by the user (Ctrl-C)"
    else:
        assert run_worker("tiny", storage, tmp_path, log=lines.append) == 2  # the worker went on
        assert states(url) == ["FAIL", "FAIL"]
        reason = "RuntimeError: simulated set-up failure"
        assert lines[-1] == f"[tiny] trial 1 failed before training: {reason}"
    assert study_results("tiny", storage).trials[0].fail_reason == reason
    monkeypatch.setattr(StudySpec, "config", real_config)
    _, queued = prepare_study(spec, storage, tmp_path)  # the next `study run` re-queues them
    assert queued == (2 if fault == "error" else 1)


@pytest.mark.parametrize("spec_retries, storage_retry", [(0, 2), (1, 0)])
def test_a_worker_retries_stale_trials_as_the_spec_says(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, spec_retries: int, storage_retry: int
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(**{**small_spec(data_dir, lrs=(1e-3,)).to_dict(), "max_retries": spec_retries})
    # a storage opened as `newslab study worker` opens it: knowing nothing of the spec
    storage = open_storage(url, heartbeat_interval=1, grace_period=1, max_retry=storage_retry, create=True)
    prepare_study(spec, storage, tmp_path)
    assert store.claim_trial(store.load_study("tiny", storage)) is not None  # its worker dies
    time.sleep(2.2)

    def failing(config, **kwargs):
        raise RuntimeError("simulated")

    monkeypatch.setattr(train_mod, "train", failing)
    assert run_worker("tiny", storage, tmp_path, log=lambda m: None, poll_s=0.1) == spec_retries
    assert states(url) == ["FAIL"] * (1 + spec_retries)  # the stale trial, and each retry the spec allows


def test_a_trial_failed_as_stale_while_finishing_is_one_line_and_the_worker_goes_on(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url, create=True)
    prepare_study(small_spec(data_dir), storage, tmp_path)
    real_train = train_mod.train
    events: list[str] = []

    def late(config, **kwargs):  # the first trial's heartbeat came late: another worker failed it
        result = real_train(config, **kwargs)
        if config["lr"] == 1e-3:
            other = load(url)
            [running] = other.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            other._storage.set_trial_state_values(running._trial_id, state=optuna.trial.TrialState.FAIL)
        return result

    monkeypatch.setattr(train_mod, "train", late)
    real_tell, real_exit = optuna.Study.tell, runner._Heartbeat.__exit__

    def tell(self, *args, **kwargs):
        events.append("tell")
        return real_tell(self, *args, **kwargs)

    def heartbeat_stops(self, *exc):
        events.append("heartbeat stops")
        return real_exit(self, *exc)

    monkeypatch.setattr(optuna.Study, "tell", tell)
    monkeypatch.setattr(runner._Heartbeat, "__exit__", heartbeat_stops)
    lines: list[str] = []
    assert run_worker("tiny", storage, tmp_path, log=lines.append) == 2
    run_dir = tmp_path / "studies" / "tiny" / "trial-0000"
    assert f"[tiny] trial 0 was failed as stale meanwhile; its run is kept in {run_dir}" in lines
    assert not any("(#0) done" in line for line in lines) and any("(#1) done" in line for line in lines)
    assert states(url) == ["FAIL", "COMPLETE"]
    assert RunFolder(run_dir).final()["status"] == "completed"
    assert events == ["heartbeat stops", "tell", "heartbeat stops"]  # the heartbeat outlives each `tell`
