"""Running a study: queueing its trials in Optuna storage, and workers that run each exactly once.

Optuna's RDB storage is the only index of runs: the spec is enqueued as WAITING trials and
workers claim them one by one with an atomic WAITING -> RUNNING transition, so N workers on one
storage never run a trial twice (Optuna's GridSampler does, under concurrency). Heartbeats let
a killed worker's trial be failed and retried; a study re-run retries failed trials up to
`max_retries`. Each trial is one `train()` run in OUT_DIR/studies/<study>/trial-NNNN.

The confirmation trials (spec.py) are queued once no selection trial is queued or running, by
whichever process sees it first, under the study lock; a worker leaves only when nothing is queued
and nothing is left to confirm. Failed trials of either stage are retried by the next `study run`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError, NewslabError
from . import storage as store
from .results import StudyResult, plan_words, status_line, study_results, trial_line
from .spec import StudySpec, TrialPlan


# ------------------------------------------------------------------- creating a study
def resolve_spec(spec: StudySpec, storage) -> StudySpec:
    """Fill `fixed` from the base study's best configuration (ablation studies)."""
    if spec.base_study is None:
        return spec
    base = study_results(spec.base_study, storage)
    counts = base.counts()
    if counts["complete"] == 0 or counts["waiting"] or counts["running"]:
        raise NewslabError(
            f"study {spec.name!r}: base study {spec.base_study!r} is not finished "
            f"({counts}); run it first: newslab study run {spec.base_study}"
        )
    best = base.best()
    own = set(spec.fixed) | {n for part in ("scientific", "nuisance", "search") for n in spec.parameter_names(part)}
    inherited = {k: v for k, v in {**base.spec.fixed, **best.point, **best.nuisance}.items() if k not in own}
    resolved = StudySpec(**{**spec.to_dict(), "fixed": {**inherited, **spec.fixed}})
    resolved.trials()  # validate the combined settings before anything runs
    return resolved


def prepare_study(
    spec: StudySpec,
    storage,
    out_dir: str | Path,
    new_name: str | None = None,
    threads: int | None = None,
    default_threads: int | None = None,
):
    """Create the study (or load it if the same spec already ran) and queue its missing trials.

    Refuses a changed spec under an existing name. Re-queues each failed point x seed up to
    `max_retries` times; completed trials are never re-run. Returns (optuna study, trials queued).
    The torch threads per trial (`threads`, else `default_threads`) are recorded at creation and hold for
    every later worker, so a study's numbers do not depend on how many workers ran it; a different
    `threads` later is refused.
    Processes preparing one study at once take turns (`study_lock`): it is created, its spec
    recorded and each trial queued once, whichever process gets there first.
    """
    if new_name:
        spec = StudySpec(**{**spec.to_dict(), "name": new_name})
    spec = resolve_spec(spec, storage)
    plans = spec.trials()
    storage = store.opened(storage, spec.name, create=True)
    attrs = {
        "spec": spec.to_dict(),
        "out_dir": str(Path(out_dir).resolve()),
        "created": time.time(),
        "threads": threads or default_threads,
        "spec_digest": spec.digest,  # last: a study with a digest has all of its attributes
    }
    where = f"study {spec.name!r}: "
    with store.storage_errors(storage, where), store.study_lock(storage, spec.name) as exclusive:
        study = store.create_study(spec.name, storage, attrs)
        if study is None:  # the name exists: resume it, if it is this very spec
            study = store.load_study(spec.name, storage)
            deadline = time.time() + (0 if exclusive else 60)
            while "spec_digest" not in study.user_attrs and time.time() < deadline:
                time.sleep(0.5)  # without a lock: its creator may still be recording the spec
                study = store.load_study(spec.name, storage)
            if "spec_digest" not in study.user_attrs:  # its creator died before recording the spec
                for key, value in attrs.items():
                    study.set_user_attr(key, value)
            elif study.user_attrs["spec_digest"] != spec.digest:
                raise NewslabError(
                    f"study {spec.name!r} already exists in {store.mask_url(storage.url)} with a different spec; "
                    f"use --new-name NAME to run this spec as a new study"
                )
            _check_threads(spec.name, study, threads)
        queued = _queue(study, plans, spec.max_retries) + _queue_confirmations(study, spec, storage)
        study.set_user_attr("ready", True)  # workers wait for this, so they never see half a queue
    return study, queued


def _check_threads(name: str, study, threads: int | None) -> int | None:
    """The study's recorded thread count; NewslabError if `threads` asks for another."""
    recorded = study.user_attrs.get("threads")
    if threads is not None and recorded is not None and threads != recorded:
        raise NewslabError(
            f"study {name!r} runs its trials with {recorded} thread(s) each (recorded at its creation); "
            f"--threads {threads} would change its numbers: leave --threads out"
        )
    return recorded


def _states_by_key(study) -> dict[str | None, list]:
    by_key: dict[str | None, list] = {}
    for trial in study.get_trials(deepcopy=False):
        by_key.setdefault(trial.user_attrs.get("key"), []).append(trial.state)
    return by_key


def _queue(study, plans: list[TrialPlan], max_retries: int, retry_failed: bool = True) -> int:
    """Enqueue each plan not complete, queued or running; one that failed is retried (`retry_failed`:
    a `study run`, never a worker's loop) unless it failed more than `max_retries` times."""
    TrialState = store.trial_states()
    by_key = _states_by_key(study)
    queued = 0
    for plan in plans:
        states = by_key.get(plan.key, [])
        if any(s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING, TrialState.RUNNING) for s in states):
            continue  # done (a pruned search trial too), queued or running
        if states and not retry_failed or states.count(TrialState.FAIL) > max_retries:
            continue
        study.enqueue_trial({**plan.point, **plan.nuisance, "seed": plan.seed}, user_attrs=plan.attrs())
        queued += 1
    return queued


def _queue_confirmations(study, spec: StudySpec, storage, retry_failed: bool = True) -> int:
    """Queue the confirmation trials of what the selection chose, once no selection trial is queued or
    running (the caller holds the study lock). A failed selection trial retried by a later `study run`
    may change a choice: its confirmations are then queued anew, and results read only those of the
    current choice (StudyResult.confirmation)."""
    if not spec.confirm_seed_list:
        return 0
    TrialState = store.trial_states()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
        if trial.user_attrs.get("role", "select") == "select":
            return 0  # the selection is still under way
    return _queue(study, study_results(spec.name, storage).confirmation_plans(), spec.max_retries, retry_failed)


def queue_confirmations(name: str, storage) -> int:
    """A worker's call once nothing is queued: the confirmation trials the selection calls for, failed
    ones left to the next `study run` (as failed selection trials are); returns how many were queued."""
    with store.storage_errors(storage, f"study {name!r}: "), store.study_lock(storage, name):
        study = store.load_study(name, storage)
        return _queue_confirmations(study, StudySpec(**study.user_attrs["spec"]), storage, retry_failed=False)


# ----------------------------------------------------------------------------- workers
class _Heartbeat:
    """Records a trial's heartbeat every interval from a background thread."""

    def __init__(self, study, trial_id: int):
        self.study, self.trial_id, self.stop = study, trial_id, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried next interval; the trial goes on
                store.record_heartbeat(self.study, self.trial_id)
            if self.stop.wait(store.heartbeat_interval(self.study)):
                return

    def __enter__(self) -> None:
        self.thread.start()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _set_up(study, trial, out_dir: Path, threads: int | None, say: Callable[[int, str], None]):
    """A claimed trial's RunConfig and run folder, its parameters recorded for Optuna's dashboard."""
    spec = StudySpec(**study.user_attrs["spec"])
    attrs = trial.user_attrs
    if spec.search is not None:
        if attrs.get("slot") is not None:  # the sampler (set by _run_trial) chooses this trial's point now
            trial.set_user_attr("point", spec.suggest(trial))
            attrs = trial.user_attrs
        # a search's confirmation runs are no sampler's draws: their point stays in the user attributes only
    else:
        for name in {**attrs["point"], **attrs["nuisance"]}:  # Optuna params, so the dashboard can plot them
            trial.suggest_categorical(name, spec.choices(name))
        trial.suggest_categorical("seed", [*spec.seed_list, *spec.confirm_seed_list])
    config = spec.config(
        attrs["point"],
        attrs["nuisance"],
        attrs["seed"],
        attrs.get("stop_epoch"),
        out_dir=str(out_dir),
        threads=threads,
    )
    run_dir = out_dir / "studies" / study.study_name / f"trial-{trial.number:04d}"
    trial.set_user_attr("run_dir", str(run_dir))
    stage = f" (confirmation, to epoch {attrs['stop_epoch']})" if attrs.get("role") == "confirm" else ""
    say(trial.number, f"started: {plan_words(attrs['point'], attrs['nuisance'], attrs['seed'])}{stage}")
    return config, run_dir


def _unless_failed_meanwhile(
    study, trial, run_dir: Path, log: Callable[[str], None], write: Callable[[], None]
) -> bool:
    """Write a trial's outcome (`write`); False, with one line, if another worker failed it as stale
    meanwhile (its heartbeat came late): that outcome is its retry's to give, and this worker goes on."""
    try:
        write()
    except Exception as exc:
        if not store.finished_meanwhile(exc):
            raise
        log(f"[{study.study_name}] trial {trial.number} was failed as stale meanwhile; its run is kept in {run_dir}")
        return False
    return True


def _run_trial(
    study,
    trial_id: int,
    out_dir: Path,
    threads: int | None,
    log: Callable[[str], None],
    say: Callable[[int, str], None],
) -> None:
    """Train one claimed trial and tell its outcome; `say(number, what)` logs a line on where the study stands."""
    # imported per trial: torch loads only in processes that train, and tests may replace train
    from ..runs import RunFolder
    from ..train import train

    TrialState = store.trial_states()
    name = study.study_name
    # beating from the claim (claim_trial beat once already) until the trial's outcome is told
    with _Heartbeat(study, trial_id):
        trial = None
        try:
            spec = StudySpec(**study.user_attrs["spec"])
            slot = store.trial_attrs(study, trial_id).get("slot")
            if spec.search is not None and slot is not None:  # seeded per slot, in place before the trial starts
                study.sampler = spec.sampler(seed=1000 * spec.seed_list[0] + slot)
            trial = store.running_trial(study, trial_id)
            config, run_dir = _set_up(study, trial, out_dir, threads, say)
        except BaseException as exc:  # failed now, never left RUNNING: the next `study run` re-queues it
            interrupted = isinstance(exc, KeyboardInterrupt)
            reason = (str(exc) or "interrupted by the user (Ctrl-C)") if interrupted else f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):  # a storage that cannot take it fails the worker next
                store.fail_trial(study, trial_id, reason)
            if not isinstance(exc, Exception):
                raise
            number = trial.number if trial is not None else f"(id {trial_id})"
            log(f"[{name}] trial {number} failed before training: {reason}")
            return

        def failed(reason: str | None) -> Callable[[], None]:
            def write() -> None:
                trial.set_user_attr("fail_reason", reason)
                study.tell(trial, state=TrialState.FAIL)

            return write

        search = StudySpec(**study.user_attrs["spec"]).search is not None and trial.user_attrs.get("role") == "select"
        pruned = False

        def on_epoch(epoch: int, row: dict) -> bool:
            """Report the epoch's validation accuracy; in a search, end the run when the pruner says so."""
            nonlocal pruned
            trial.report(row["val_accuracy"], epoch)
            pruned = search and trial.should_prune()
            return pruned

        try:
            # the storage is the index: a folder left by an earlier incarnation of the study is replaced
            result = train(config, run_dir=run_dir, overwrite=True, log=None, progress=False, on_epoch=on_epoch)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: failed now, so the next `study run` re-queues it
            _unless_failed_meanwhile(study, trial, run_dir, log, failed(str(exc) or "interrupted by the user (Ctrl-C)"))
            raise
        except Exception as exc:
            if _unless_failed_meanwhile(study, trial, run_dir, log, failed(f"{type(exc).__name__}: {exc}"[:500])):
                say(trial.number, f"failed: {type(exc).__name__}: {exc}")
            return

        def completed() -> None:
            summary = {
                "test_accuracy": result.test_accuracy,
                "test_macro_f1": result.test_macro_f1,
                "best_epoch": result.best_epoch,
                "params": result.params,
                "wall_time_s": result.wall_time_s,
                "samples_per_s": result.samples_per_s,
                "history": result.history,
                "status": result.status,
            }
            for key, value in summary.items():
                trial.set_user_attr(key, value)
            if result.status != "completed":
                failed(result.reason)()
                return
            assert result.best_val_accuracy is not None  # a completed run has it
            predictions = RunFolder(run_dir).predictions()
            trial.set_user_attr("test_predictions", predictions["test"])
            # per validation row, right or wrong: the paired tests of the report compare runs row by row
            right = zip(predictions["val"], predictions["val_labels"], strict=True)
            trial.set_user_attr("val_correct", "".join("1" if p == y else "0" for p, y in right))
            if pruned:  # its last reported value is the one Optuna keeps
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, result.best_val_accuracy)

        if not _unless_failed_meanwhile(study, trial, run_dir, log, completed):
            return
    if result.status != "completed":
        say(trial.number, f"failed: {result.reason}")
        return
    assert result.best_val_accuracy is not None  # a completed run has it
    # no test accuracy here: it stays sealed until the final pick (`newslab study results`)
    ended = f"pruned after epoch {len(result.history)}" if pruned else "done"
    say(trial.number, f"{ended}: val {100 * result.best_val_accuracy:.2f}% in {result.wall_time_s:.0f} s")


def run_worker(
    name: str,
    storage,
    out_dir: str | Path | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = print,
    poll_s: float = 2.0,
) -> int:
    """Take WAITING trials of a study until none is waiting or running; returns trials run here.

    A storage that fails (its database deleted, replaced or read-only) stops the worker with one
    NewslabError line naming it.
    """
    where = f"study {name!r}: "
    with store.storage_errors(storage, where):
        study = store.load_study(name, storage)
        while not study.user_attrs.get("ready"):  # the creator is still queueing trials
            time.sleep(poll_s)
            study = store.load_study(name, storage)
        spec = StudySpec(**study.user_attrs["spec"])
        if spec.search is not None:  # fed every epoch's validation accuracy (_run_trial)
            study.pruner = spec.pruner()
        # stale trials are retried as the spec says, whatever `max_retry` this storage was opened with
        store.set_stale_retries(study, study.user_attrs["spec"].get("max_retries", StudySpec.max_retries))
        # absolute, so the run folders recorded in the storage are found from any working directory
        out = Path(out_dir or study.user_attrs["out_dir"]).resolve()
        threads = _check_threads(name, study, threads) or threads  # the study's own (older studies: the flag's)
        TrialState = store.trial_states()
        done = 0

        def say(number: int, what: str) -> None:  # "[study] trial k/N (#number) WHAT | complete, elapsed, left"
            log(trial_line(study_results(name, storage), number, what))

        while True:
            store.check_storage(storage, where)  # a deleted file: open connections would not notice
            store.fail_stale_trials(study)  # a killed worker's trial: FAIL, then re-queued by the retry callback
            trial_id = store.claim_trial(study)
            if trial_id is not None:
                _run_trial(study, trial_id, out, threads, log, say)
                done += 1
                continue
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
                queued = queue_confirmations(name, storage)  # the selection is over: confirm what it chose
                if queued:
                    log(f"study {name}: selection finished; {queued} confirmation trial(s) queued on fresh seeds")
                elif not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                    return done
                continue
            time.sleep(poll_s)  # others are running: wait, and take over their trials if they die


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_study(
    spec: StudySpec,
    *,
    workers: int = 1,
    storage_url: str | None = None,
    out_dir: str | Path = "outputs",
    new_name: str | None = None,
    threads: int | None = None,
    heartbeat_interval: int = 30,
    log: Callable[[str], None] = print,
) -> StudyResult:
    """Create or resume a study and run it to the end with `workers` local worker processes.

    A new study's trials get `threads` torch threads each (the spec's `threads`, else cores // workers,
    so N workers do not oversubscribe the CPU), recorded with the study: a resumed study keeps its
    count whatever `workers` is now. Returns the StudyResult read back from storage.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    spec.trials()  # a bad spec fails here, before any storage is touched
    url = storage_url or store.default_storage(out_dir)
    out_dir = Path(out_dir).resolve()  # recorded, and handed to workers: valid from any working directory
    storage = store.open_storage(url, heartbeat_interval, max_retry=spec.max_retries, create=True)
    wanted = threads or spec.fixed.get("threads")
    study, queued = prepare_study(spec, storage, out_dir, new_name, wanted, max(1, _cores() // workers))
    name = study.study_name
    per_worker = study.user_attrs.get("threads") or wanted or max(1, _cores() // workers)
    log(f"study {name}: {queued} trial(s) queued | {per_worker} thread(s) per trial | storage {store.mask_url(url)}")
    if workers == 1:
        run_worker(name, storage, out_dir, per_worker, log)
    else:
        command = [
            sys.executable,
            "-m",
            "newslab",
            "study",
            "worker",
            name,
            "--storage",
            url,
            "--out-dir",
            str(out_dir),
            "--threads",
            str(per_worker),
            "--heartbeat",
            str(heartbeat_interval),
        ]
        procs = [subprocess.Popen(command) for _ in range(workers)]
        last = ""
        try:
            while any(p.poll() is None for p in procs):
                store.check_storage(storage, f"study {name!r}: ")
                line = status_line(study_results(name, storage))
                if line != last:
                    log(line)
                    last = line
                time.sleep(2)
        except BaseException:  # Ctrl-C, or the storage failed: SIGTERM ends each worker's trial, failed
            for p in procs:
                p.terminate()
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=60)
            raise
        failed = [p.returncode for p in procs if p.returncode]
        if failed:
            raise NewslabError(f"study {name}: {len(failed)} worker process(es) exited with {failed}")
    result = study_results(name, storage)
    log(status_line(result))
    return result
