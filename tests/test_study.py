from __future__ import annotations

import collections
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import report_synthetic
from newslab.cli import main
from newslab.config import NewslabError
from newslab.errors import ConfigError
from newslab.runs import RunFolder
from newslab.study import (
    PRESETS,
    StudySpec,
    Summary,
    TrialRecord,
    format_results,
    load_spec,
    open_storage,
    prepare_study,
    run_study,
    run_worker,
    status_line,
    study_results,
)
from newslab.study.results import StudyResult, chosen_epoch, study_progress, trial_line, trial_position

TINY = {
    "epochs": 1,
    "batch_size": 32,
    "num_layers": 1,
    "vocab_size": 200,
    "min_freq": 1,
    "val_fraction": 0.2,
    "threads": 1,
}


def tiny_spec(data_dir: Path, name: str = "tiny", **changes) -> StudySpec:
    values = {
        "name": name,
        "fixed": {**TINY, "data_dir": str(data_dir)},
        "scientific": {"embed_dim,num_heads": [[16, 2], [32, 4]], "lr": [1e-3, 3e-3]},
        "seeds": 3,
    }
    return StudySpec(**{**values, **changes})


def write_spec(path: Path, spec: StudySpec) -> Path:
    path.write_text(yaml.safe_dump(spec.to_dict()))
    return path


def completed_keys(name: str, storage) -> collections.Counter:
    return collections.Counter(
        tuple(sorted({**t.point, **t.nuisance, "seed": t.seed}.items()))
        for t in study_results(name, storage).trials
        if t.state == "COMPLETE"
    )


def cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "newslab", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


# ------------------------------------------------------------------------------ specs
def test_spec_is_the_cartesian_product(data_dir: Path) -> None:
    plans = tiny_spec(data_dir).trials()
    assert len(plans) == 2 * 2 * 3 and len({p.key for p in plans}) == 12
    assert {(p.point["embed_dim"], p.point["num_heads"]) for p in plans} == {(16, 2), (32, 4)}


def test_presets_have_the_manuals_shapes() -> None:
    grid, ablations = load_spec("seed-grid"), load_spec("seed-ablations")
    assert len(grid.trials()) == 3 * 2 * 2 and grid.fixed == {"epochs": 3, "batch_size": 64}
    assert grid.choices("lr") == [5e-4, 1e-3] and grid.choices("num_heads") == [2, 4, 8]
    assert grid.parameter_names("nuisance") == ["lr"]  # each size at its own best lr
    assert ablations.base_study == "seed-grid" and ablations.choices("lr") == [5e-4, 1e-3]
    assert ablations.choices("ablation") == [
        "none",
        "no_pe",
        "single_head",
        "no_ffn",
        "freeze_emb",
        "no_dropout",
        "clip_grad",
    ]
    assert load_spec("quick-grid", seeds=1).seed_list == [0]
    # every preset confirms on fresh seeds, at least the three a test needs
    for name in PRESETS:
        spec = StudySpec(**PRESETS[name])
        assert len(spec.confirm_seed_list) >= 3 and not set(spec.confirm_seed_list) & set(spec.seed_list)
    quick = load_spec("quick-grid")
    assert quick.fixed["patience"] and len(quick.choices("lr")) == 3  # room for the pick to lie inside


def test_confirmation_seeds_are_fresh_and_counted_or_listed() -> None:
    spec = StudySpec(name="c", scientific={"lr": [1e-3]}, seeds=2, confirm_seeds=3)
    assert spec.confirm_seed_list == [1000, 1001, 1002]
    assert StudySpec(name="c", scientific={"lr": [1e-3]}, confirm_seeds=[7, 9]).confirm_seed_list == [7, 9]
    with pytest.raises(ConfigError, match=r"confirm_seeds \[1\] are also selection seeds"):
        StudySpec(name="c", scientific={"lr": [1e-3]}, seeds=2, confirm_seeds=[1, 5])
    with pytest.raises(ConfigError, match="confirm_seeds must be a count >= 0"):
        StudySpec(name="c", scientific={"lr": [1e-3]}, confirm_seeds=-1)
    # a study recorded before confirmation existed keeps its digest, so it resumes
    old = StudySpec(name="c", scientific={"lr": [1e-3]})
    legacy = {k: v for k, v in old.to_dict().items() if k not in ("confirm_seeds", "search")}  # fields added later
    import hashlib

    assert old.digest == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]
    # a confirmation trial: its epoch, no early stopping, the next validation split
    config = load_spec("quick-grid").config({"embed_dim": 64, "num_heads": 4}, {"lr": 3e-3}, 1000, 3)
    assert (config["stop_epoch"], config["patience"], config["split_seed"]) == (3, None, 1)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"fixed": {"epochs": 1}, "scientific": {"lr": [1e-3]}, "bogus": 1}, "unknown field(s) bogus"),
        ({"scientific": {"learning_rate": [1e-3]}}, "scientific: unknown parameter 'learning_rate'"),
        ({"scientific": {"lr": ["fast"]}}, "lr must be float"),
        ({"scientific": {"lr": []}}, "scientific.lr: needs a non-empty list"),
        ({"scientific": {}}, "empty grid"),
        ({"scientific": {"embed_dim,num_heads": [[64, 3]]}}, "--embed-dim 64 is not divisible by --num-heads 3"),
        ({"fixed": {"lr": 1e-3}, "scientific": {"lr": [1e-3]}}, "'lr' is set twice"),
        ({"scientific": {"lr": [1e-3]}, "seeds": 0}, "seeds must be a positive count"),
        ({"scientific": {"lr": [1e-3]}, "seeds": 2, "confirm_seeds": [0]}, "confirm_seeds [0] are also selection"),
    ],
)
def test_bad_specs_fail_before_any_training(tmp_path: Path, spec: dict, message: str, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    code = main(["study", "run", str(path), "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "studies").exists()


@pytest.mark.parametrize(
    "section, key, values, bad",
    [
        ("scientific", "ablation", ["none", ["no_pe", "no_ffn"]], ["no_pe", "no_ffn"]),  # a combination as a list
        ("nuisance", "lr", [1e-3, {"value": 3e-3}], {"value": 3e-3}),
        ("scientific", "embed_dim,ablation", [[16, "none"], [16, ["no_pe"]]], ["no_pe"]),  # in a joint key's tuple
    ],
)
def test_a_parameter_value_must_be_a_single_value(section: str, key: str, values: list, bad) -> None:
    # a list or mapping passed validation, then crashed every worker (unhashable in `spec.choices`)
    grid = {section: {key: values}, **({"scientific": {"num_heads": [2]}} if section == "nuisance" else {})}
    with pytest.raises(ConfigError) as err:
        StudySpec(name="bad", **grid)
    assert str(err.value) == (
        f"study spec 'bad': {section}.{key}: {bad!r} is not a single value (a string, number, true/false or null); "
        "an ablation combination is one string, e.g. 'no_pe+no_ffn'"
    )


def test_an_ablation_combination_is_one_string(data_dir: Path) -> None:
    spec = tiny_spec(data_dir, scientific={"ablation": ["none", "no_pe+no_ffn"]}, seeds=1)
    assert spec.choices("ablation") == ["none", "no_pe+no_ffn"]
    assert [spec.config(p.point, p.nuisance, p.seed).ablation for p in spec.trials()] == [(), ("no_pe", "no_ffn")]


def test_reproduce_commands_run_a_study_after_its_base_study(tmp_path: Path) -> None:
    from newslab.report.build import reproduce_commands
    from newslab.study import StudyResult

    def result(name: str, base: str | None, scientific: dict) -> StudyResult:
        return StudyResult(name, StudySpec(name=name, base_study=base, scientific=scientific), [], created=0.0)

    results = [
        result("abl", "refine", {"ablation": ["none", "no_ffn"]}),
        result("refine", "grid", {"lr": [1e-3, 3e-3]}),  # varies no ablation, yet starts from grid
        result("grid", None, {"embed_dim,num_heads": [[16, 2], [32, 4]]}),
        result("solo", None, {"ablation": ["none", "no_pe"]}),  # an ablation study of its own
    ]
    lines = reproduce_commands(results, tmp_path, "en", None, [])
    runs = [line.split()[-1] for line in lines if line.startswith("newslab study run")]
    assert runs == [str(tmp_path / "specs" / f"{name}.yaml") for name in ("grid", "refine", "abl", "solo")]
    assert lines[-1] == "newslab report abl refine grid solo --lang en"


def test_ablations_need_a_finished_base_study(tmp_path: Path, data_dir: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", create=True)
    ablations = StudySpec(
        name="abl",
        base_study="grid",
        fixed={**TINY, "data_dir": str(data_dir), "embed_dim": 16},
        scientific={"ablation": ["none", "no_ffn"]},
        seeds=1,
    )
    with pytest.raises(NewslabError, match="study 'grid' not found"):
        prepare_study(ablations, storage, tmp_path)
    prepare_study(tiny_spec(data_dir, "grid", seeds=1), storage, tmp_path)  # queued, not run
    with pytest.raises(NewslabError, match="base study 'grid' is not finished"):
        prepare_study(ablations, storage, tmp_path)


def test_unreachable_storage_names_the_url_with_password_masked() -> None:
    with pytest.raises(NewslabError) as err:
        open_storage("postgresql+psycopg://alice:s3cret@127.0.0.1:9/db")
    assert "postgresql+psycopg://alice:***@127.0.0.1:9/db is unreachable" in str(err.value)
    assert "s3cret" not in str(err.value)


# ------------------------------------------------------------------ running in-process
def test_study_runs_records_and_resumes_without_rerunning(tmp_path: Path, data_dir: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    spec = tiny_spec(data_dir, seeds=2)
    result = run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None)
    assert result.counts() == {"complete": 8, "running": 0, "failed": 0, "waiting": 0}
    trial = result.trials[0]
    assert Path(trial.run_dir, "final.json").is_file() and trial.history and trial.test_predictions
    storage = open_storage(url)
    import optuna

    frozen = optuna.load_study(study_name="tiny", storage=storage).trials[0]
    assert list(frozen.intermediate_values) == [1] and set(frozen.params) == {"embed_dim", "num_heads", "lr", "seed"}
    again = run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None)
    assert [t.number for t in again.trials] == [t.number for t in result.trials]  # nothing re-run
    with pytest.raises(NewslabError, match="different spec; use --new-name"):
        run_study(tiny_spec(data_dir, seeds=3), storage_url=url, out_dir=tmp_path, log=lambda m: None)
    renamed = run_study(
        tiny_spec(data_dir, seeds=1), storage_url=url, out_dir=tmp_path, new_name="tiny-1seed", log=lambda m: None
    )
    assert renamed.name == "tiny-1seed" and renamed.counts()["complete"] == 4


def test_results_are_sorted_by_mean_validation_accuracy(tmp_path: Path, data_dir: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    result = run_study(tiny_spec(data_dir, seeds=2), storage_url=url, out_dir=tmp_path, log=lambda m: None)
    rows = result.rows()
    assert len(rows) == 4 and all(r["n"] == 2 for r in rows)
    assert [r["val_acc_mean"] for r in rows] == sorted((r["val_acc_mean"] for r in rows), reverse=True)
    parsed = list(csv.DictReader(io.StringIO(format_results(result, "csv"))))
    assert [float(r["val_acc_mean"]) for r in parsed] == [r["val_acc_mean"] for r in rows]
    assert json.loads(format_results(result, "json"))["counts"]["complete"] == 8
    assert format_results(result, "markdown").count("\n") == 5
    table = format_results(result, "table")
    assert "test acc" in table and "±" in table


def test_ablation_study_uses_each_variants_best_lr(tmp_path: Path, data_dir: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    run_study(tiny_spec(data_dir, "grid", seeds=1), storage_url=url, out_dir=tmp_path, log=lambda m: None)
    best = study_results("grid", open_storage(url)).best()
    abl = StudySpec(
        name="abl",
        base_study="grid",
        fixed={"epochs": 1},
        scientific={"ablation": ["none", "no_ffn"]},
        nuisance={"lr": [1e-3, 3e-3]},
        seeds=1,
    )
    result = run_study(abl, storage_url=url, out_dir=tmp_path, log=lambda m: None)
    assert result.spec.fixed["embed_dim"] == best.point["embed_dim"] and "lr" not in result.spec.fixed
    assert len(result.summaries()) == 4 and len(result.points()) == 2
    for point in result.points():
        rivals = [s for s in result.summaries() if s.point == point.point]
        assert point.val_mean == max(s.val_mean for s in rivals)


def test_failed_trials_are_recorded_and_retried_up_to_the_limit(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    import importlib

    train_mod = importlib.import_module("newslab.train")
    real_train = train_mod.train

    def flaky(config, **kwargs):
        if config["seed"] == 1 and config["embed_dim"] == 16:
            raise MemoryError("simulated out of memory")
        return real_train(config, **kwargs)

    monkeypatch.setattr(train_mod, "train", flaky)
    url = f"sqlite:///{tmp_path}/s.db"
    spec = tiny_spec(data_dir, seeds=2, scientific={"embed_dim,num_heads": [[16, 2], [32, 4]]}, max_retries=1)
    result = run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None)
    assert result.counts() == {"complete": 3, "running": 0, "failed": 1, "waiting": 0}
    failed = [t for t in result.trials if t.state == "FAIL"][0]
    assert "MemoryError: simulated out of memory" in failed.fail_reason
    assert run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None).counts()["failed"] == 2
    assert run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None).counts()["failed"] == 2  # limit
    monkeypatch.setattr(train_mod, "train", real_train)
    assert run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None).counts()["complete"] == 3


# ------------------------------------------------------------- concurrency and crashes
def _run_concurrent_workers(url: str, spec: StudySpec, tmp_path: Path, workers: int, confirmations: int = 0) -> None:
    storage = open_storage(url, create=True)
    prepare_study(spec, storage, tmp_path)
    procs = [
        cli("study", "worker", spec.name, "--storage", url, "--out-dir", str(tmp_path), "--threads", "1")
        for _ in range(workers)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    expected = len(spec.trials()) + confirmations
    ran = [sum("done:" in line for line in out.splitlines()) for out in outputs]
    assert sum(ran) == expected
    counts = completed_keys(spec.name, storage)
    assert len(counts) == expected and set(counts.values()) == {1}  # each point x seed exactly once
    assert study_results(spec.name, storage).counts()["complete"] == expected


def test_three_workers_on_sqlite_run_each_trial_exactly_once(tmp_path: Path, data_dir: Path) -> None:
    _run_concurrent_workers(f"sqlite:///{tmp_path}/s.db", tiny_spec(data_dir), tmp_path, workers=3)


def test_three_workers_queue_and_run_the_confirmations_exactly_once(tmp_path: Path, data_dir: Path) -> None:
    spec = tiny_spec(
        data_dir, seeds=1, nuisance={"lr": [1e-3, 3e-3]}, confirm_seeds=2, scientific={"num_heads": [2, 4]}
    )
    _run_concurrent_workers(f"sqlite:///{tmp_path}/s.db", spec, tmp_path, workers=3, confirmations=2 * 2)


@pytest.mark.postgres
def test_two_workers_on_postgresql_run_each_trial_exactly_once(tmp_path: Path, data_dir: Path) -> None:
    url = os.environ.get("NEWSLAB_TEST_POSTGRES_URL")
    if not url:
        message = "NEWSLAB_TEST_POSTGRES_URL is not set (.ci/services.sh starts PostgreSQL and sets it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    name = f"pg-{os.getpid()}-{int(time.time())}"  # a fresh study name on the shared server
    spec = tiny_spec(data_dir, name, seeds=1, confirm_seeds=2)  # 4 points: 4 selection + 4 x 2 confirmation trials
    _run_concurrent_workers(url, spec, tmp_path, workers=2, confirmations=4 * 2)


def test_kill_9_mid_trial_then_rerun_finishes_without_duplicates(tmp_path: Path, data_dir: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    spec = tiny_spec(
        data_dir,
        seeds=1,
        scientific={"lr": [1e-3, 2e-3, 3e-3]},
        fixed={**TINY, "data_dir": str(data_dir), "epochs": 60, "embed_dim": 16, "num_heads": 2},
    )
    path = write_spec(tmp_path / "tiny.yaml", spec)
    command = ["study", "run", str(path), "--storage", url, "--out-dir", str(tmp_path), "--heartbeat", "1"]
    proc = cli(*command)
    storage = open_storage(url)

    def epochs_done(trial) -> int:
        metrics = Path(trial.run_dir or "/nonexistent", "metrics.csv")
        return max(0, len(metrics.read_text().splitlines()) - 1) if metrics.is_file() else 0

    deadline = time.time() + 300
    while time.time() < deadline:  # wait for: one trial complete, the next one a few epochs into its 60
        try:
            current = study_results("tiny", storage)
        except NewslabError:
            time.sleep(0.2)
            continue
        running = [t for t in current.trials if t.state == "RUNNING"]
        if current.counts().get("complete") == 1 and running and 2 <= epochs_done(running[0]) < 50:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = study_results("tiny", storage)
    killed = [t for t in before.trials if t.state == "RUNNING"]
    done_first = [t.number for t in before.trials if t.state == "COMPLETE"]
    assert len(killed) == 1 and len(done_first) == 1
    assert json.loads(Path(killed[0].run_dir, "final.json").read_text())["status"] == "running"

    rerun = cli(*command)
    out = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, out
    after = study_results("tiny", storage)
    by_number = {t.number: t for t in after.trials}
    assert by_number[done_first[0]].state == "COMPLETE"  # the finished trial was not re-run
    assert by_number[killed[0].number].state == "FAIL"  # the killed attempt is failed, not counted ...
    assert after.counts()["complete"] == 3  # ... and retried
    assert set(completed_keys("tiny", storage).values()) == {1}
    assert sum(out.count(f"(#{n}) done") for n in done_first) == 0 and ") done" in out  # others were done
    assert all(
        Path(t.run_dir, "final.json").is_file()
        and json.loads(Path(t.run_dir, "final.json").read_text())["status"] == "completed"
        for t in after.trials
        if t.state == "COMPLETE"
    )


def test_local_workers_split_the_cores(tmp_path: Path, data_dir: Path) -> None:
    spec = tiny_spec(
        data_dir, seeds=1, fixed={k: v for k, v in {**TINY, "data_dir": str(data_dir)}.items() if k != "threads"}
    )
    result = run_study(spec, workers=2, storage_url=f"sqlite:///{tmp_path}/s.db", out_dir=tmp_path, log=lambda m: None)
    expected = max(1, len(os.sched_getaffinity(0)) // 2)
    threads = {RunFolder(t.run_dir).config()["threads"] for t in result.trials}
    assert result.counts()["complete"] == 4 and threads == {expected}


def test_status_and_results_commands(tmp_path: Path, data_dir: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    run_study(tiny_spec(data_dir, seeds=1), storage_url=url, out_dir=tmp_path, log=lambda m: None)
    assert main(["study", "status", "tiny", "--storage", url]) == 0
    assert "4/4 complete, 0 running, 0 failed, 0 waiting" in capsys.readouterr().out
    assert main(["study", "results", "tiny", "--storage", url, "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| embed_dim | heads | lr |")  # the report's names
    assert main(["study", "status", "missing", "--storage", url]) == 2
    assert "study 'missing' not found" in capsys.readouterr().err


def test_a_study_run_shows_its_progress_and_the_clock_stops_when_done(tmp_path: Path, data_dir: Path) -> None:
    lines: list[str] = []
    spec = tiny_spec(data_dir, seeds=1, scientific={"lr": [1e-3, 3e-3]})
    result = run_study(spec, storage_url=f"sqlite:///{tmp_path / 's.db'}", out_dir=tmp_path, log=lines.append)
    trials = [re.sub(r"elapsed [\d.]+ min", "elapsed T", line) for line in lines if line.startswith("[tiny] trial")]
    # each line: the trial's place among all the study's, its settings (no "| - |" for an empty part) or outcome
    assert (
        trials[0] == "[tiny] trial 1/2 (#0) started: lr 0.001, seed 0 | 0/2 complete | elapsed T | study left ~unknown"
    )
    assert re.fullmatch(
        r"\[tiny\] trial 1/2 \(#0\) done: val [\d.]+% in \d+ s \| 1/2 complete \| elapsed T \| study left ~[\d.]+ min",
        trials[1],
    )
    assert trials[2].startswith(
        "[tiny] trial 2/2 (#1) started: lr 0.003, seed 0 | 1/2 complete | elapsed T | study left ~"
    )
    assert re.fullmatch(
        r"\[tiny\] trial 2/2 \(#1\) done: .* \| 2/2 complete \| elapsed T \| study left ~0 min", trials[3]
    )
    ended = max(t.finished for t in result.trials)
    later = status_line(result, now=ended + 3600)  # read an hour after the study ended
    assert later == status_line(result, now=ended) and later.endswith("| study left ~0 min")


def test_a_trial_line_places_the_trial_among_all_of_the_studys_trials() -> None:
    spec = StudySpec(name="s", scientific={"lr": [1e-3, 3e-3]}, seeds=2)

    def record(number: int, state: str, lr: float, seed: int, **kw) -> TrialRecord:
        return TrialRecord(number, state, {"lr": lr}, {}, seed, **kw)

    trials = [
        record(0, "COMPLETE", 1e-3, 0, val_accuracy=0.8, wall_time_s=60.0, finished=100.0),
        record(1, "FAIL", 1e-3, 1),
        record(2, "RUNNING", 3e-3, 0),
        record(3, "WAITING", 3e-3, 1),
        record(4, "RUNNING", 1e-3, 1),  # the retry of trial 1: one trial of the study, started second
    ]
    result = StudyResult("s", spec, trials, created=0.0)
    assert [trial_position(result, n) for n in (0, 1, 2, 3, 4)] == [1, 2, 3, 4, 2]
    assert study_progress(result) == (1, 4)  # the failed attempt and its running retry: one trial, not ended
    # 1 waiting + 2 running trials of 60 s each, two at a time: 1.5 min left; 10 min since the study began
    line = trial_line(result, 4, "started: lr 0.001, seed 1", now=600.0)
    assert line == (
        "[s] trial 2/4 (#4) started: lr 0.001, seed 1 | 1/4 complete | elapsed 10.0 min | study left ~1.5 min"
    )


def _replayed(study: StudyResult, ended: int, retried: int | None = None) -> StudyResult:
    """`study` (finished) as it stood after its first `ended` trials: the next one running, the rest of its
    stage waiting, the confirmations in storage only once the selection has ended; trial `retried` failed
    once first (its failed attempt is an earlier trial, its retry queued in its place)."""
    selection = sum(t.role == "select" for t in study.trials)
    shown = study.trials if ended >= selection else study.trials[:selection]
    states = ["COMPLETE"] * ended + ["RUNNING"] + ["WAITING"] * len(shown)
    trials = [replace(t, state=s) for t, s in zip(shown, states)]
    if retried is not None and retried < len(trials):
        failed = replace(trials[retried], number=-1, state="FAIL", val_accuracy=None, finished=None)
        trials.insert(0, failed)
    return StudyResult(study.name, study.spec, trials, created=0.0)


@pytest.mark.parametrize("retried", [None, 0, 5])
def test_a_studys_total_holds_still_from_its_first_trial_through_its_confirmations(retried: int | None) -> None:
    study = report_synthetic.grid("g", lambda p, n: 0.8, seeds=2, confirm=3)
    selection = sum(t.role == "select" for t in study.trials)
    total = len(study.trials)  # every selection plan, then every point on each confirmation seed
    assert 0 < selection < total
    lines = []
    for ended in range(total + 1):
        now = _replayed(study, ended, retried)
        assert study_progress(now) == (ended, total)  # the failed attempt and its retry count once
        if ended < total:
            running = next(t.number for t in now.trials if t.state == "RUNNING")
            lines.append(trial_line(now, running, "started", now=10.0))
    assert all(f" | {k}/{total} complete | " in line for k, line in enumerate(lines))
    # the last selection trial knows the confirmations are ahead: its study is not over
    assert f"trial {selection}/{total} " in lines[selection - 1] and "study left ~0 min" not in lines[selection - 1]
    assert status_line(_replayed(study, total), now=10.0).endswith("| study left ~0 min")


attempt_histories = st.tuples(st.integers(0, 2), st.sampled_from(["COMPLETE", "FAIL", "RUNNING", "WAITING", None]))


@settings(max_examples=60, deadline=None)
@given(st.data(), st.booleans())
def test_a_trial_ends_once_whatever_its_attempts(data, confirming: bool) -> None:
    """Each plan: some failed attempts, then its last (none: never started); the selection ended (complete)
    before any confirmation is queued. A plan has ended when its last attempt completed or failed."""
    study = report_synthetic.grid("g", lambda p, n: 0.8, seeds=2, confirm=2)
    selection = [t for t in study.trials if t.role == "select"]
    stage = [t for t in study.trials if t.role == "confirm"] if confirming else selection
    histories = data.draw(st.lists(attempt_histories, min_size=len(stage), max_size=len(stage)))
    if not confirming and all(last not in ("RUNNING", "WAITING") for _, last in histories):
        histories[0] = (histories[0][0], "RUNNING")  # the selection under way
    trials = list(selection) if confirming else []
    for plan, (failures, last) in zip(stage, histories):
        attempts = ["FAIL"] * failures + ([last] if last else [])
        trials += [replace(plan, number=len(trials) + i, state=state) for i, state in enumerate(attempts)]
    done, total = study_progress(StudyResult("g", study.spec, trials))
    assert total == len(study.trials)
    ended_before = len(selection) if confirming else 0
    assert done == ended_before + sum(bool(failures and not last) or last in ("COMPLETE", "FAIL")
                                      for failures, last in histories)  # fmt: skip


def test_study_run_takes_the_data_folder_as_a_flag(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("NEWSLAB_DATA_DIR", str(tmp_path / "elsewhere"))  # restored after the test
    spec = tiny_spec(data_dir, name="flagged", seeds=1, scientific={"lr": [3e-3]})
    spec = StudySpec(**{**spec.to_dict(), "fixed": {k: v for k, v in spec.fixed.items() if k != "data_dir"}})
    path = write_spec(tmp_path / "flagged.yaml", spec)
    assert main(["study", "run", str(path), "--data-dir", str(data_dir), "--out-dir", str(tmp_path / "out")]) == 0
    result = study_results("flagged", open_storage(f"sqlite:///{tmp_path / 'out' / 'studies.db'}"))
    (trial,) = result.trials
    assert trial.state == "COMPLETE" and RunFolder(trial.run_dir).config().data.data_dir == str(data_dir.resolve())


# ---------------------------------------------------------------- selection and confirmation
def test_confirmation_runs_the_chosen_lr_and_epoch_on_fresh_seeds_after_the_selection(
    tmp_path: Path, data_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    spec = tiny_spec(
        data_dir,
        fixed={**TINY, "data_dir": str(data_dir), "epochs": 3},
        scientific={"embed_dim,num_heads": [[16, 2], [32, 4]]},
        nuisance={"lr": [1e-3, 1e-2]},
        seeds=1,
        confirm_seeds=3,
    )
    lines: list[str] = []
    result = run_study(spec, storage_url=url, out_dir=tmp_path, log=lines.append)
    assert result.counts() == {"complete": 4 + 2 * 3, "running": 0, "failed": 0, "waiting": 0}
    select = [t for t in result.trials if t.role == "select"]
    confirm = [t for t in result.trials if t.role == "confirm"]
    assert max(t.number for t in select) < min(t.number for t in confirm)  # queued once the selection was final
    assert any("confirmation trial(s) queued on fresh seeds" in line for line in lines)
    for point in result.points():
        runs = [t for t in confirm if t.point == point.point]
        assert sorted(t.seed for t in runs) == [1000, 1001, 1002]
        assert all(t.nuisance == point.nuisance for t in runs)  # the lr its selection chose
        epoch = chosen_epoch(point)
        assert all(t.stop_epoch == epoch for t in runs) and 1 <= epoch <= 3
        for t in runs:
            config = RunFolder(t.run_dir).config()
            assert (config["seed"], config["stop_epoch"], config["split_seed"]) == (t.seed, epoch, 1)
            assert t.best_epoch == epoch and len(t.history) == epoch
            assert t.val_correct is not None and t.val_accuracy == pytest.approx(
                t.val_correct.count("1") / len(t.val_correct)
            )
    assert [s.point for s in result.confirmed()] == [s.point for s in result.points()]
    # resuming runs nothing more, and the confirmations are not queued twice
    again = run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None)
    assert len(again.trials) == len(result.trials)


def test_chosen_epoch_is_the_best_mean_over_the_epochs_every_run_reached() -> None:
    def trial(seed: int, curve: list[float]) -> TrialRecord:
        history = [{"epoch": e + 1, "val_accuracy": a} for e, a in enumerate(curve)]
        return TrialRecord(seed, "COMPLETE", {}, {}, seed, max(curve), history=history)

    summary = Summary({}, {}, [trial(0, [0.5, 0.7, 0.6, 0.9]), trial(1, [0.6, 0.6, 0.8])])
    assert chosen_epoch(summary) == 3  # epoch 4 was reached by one run only: means 0.55, 0.65, 0.70
    assert chosen_epoch(Summary({}, {}, [trial(0, [0.7, 0.7, 0.6])])) == 1  # the earliest of equal means


def test_test_accuracy_is_sealed_except_for_the_selected_point(tmp_path: Path, data_dir: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    spec = tiny_spec(data_dir, seeds=1, scientific={"embed_dim,num_heads": [[16, 2], [32, 4]]}, confirm_seeds=3)
    result = run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None)
    rows = result.rows()
    assert rows[0]["test_acc_mean"] is not None and rows[1]["test_acc_mean"] is None
    best_confirmed = result.confirmation(result.points()[0])
    assert best_confirmed is not None and rows[0]["test_acc_mean"] == pytest.approx(best_confirmed.test_mean)
    table = format_results(result)
    assert "test acc (selected only)" in table and table.splitlines()[3].split()[-3] == "sealed"
    assert main(["study", "results", "tiny", "--storage", url, "--show-test"]) == 0
    out = capsys.readouterr().out
    assert "test acc (unsealed)" in out and "sealed " not in out
    data = json.loads(format_results(result, "json"))
    assert data["test"] == "selected point only" and data["rows"][1]["test_acc_mean"] is None


def test_a_study_keeps_its_thread_count_whatever_the_workers(tmp_path: Path, data_dir: Path) -> None:
    fixed = {k: v for k, v in {**TINY, "data_dir": str(data_dir)}.items() if k != "threads"}
    spec = tiny_spec(data_dir, seeds=1, fixed=fixed)
    url = f"sqlite:///{tmp_path}/s.db"
    storage = open_storage(url, create=True)
    study, _ = prepare_study(spec, storage, tmp_path, threads=None, default_threads=1)
    assert study.user_attrs["threads"] == 1
    with pytest.raises(NewslabError, match="runs its trials with 1 thread"):
        prepare_study(spec, storage, tmp_path, threads=2)
    result = run_study(spec, workers=1, storage_url=url, out_dir=tmp_path, log=lambda m: None)  # 1, not cores
    assert {RunFolder(t.run_dir).config()["threads"] for t in result.trials} == {1}


def test_a_failed_selection_trial_does_not_hold_back_the_confirmations(
    tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    """The selection is final for this run once nothing is queued: the chosen points are confirmed at once;
    a later `study run` retries the failed trial, and if that changes a choice, confirms the new one."""
    import importlib

    train_mod = importlib.import_module("newslab.train")
    real_train = train_mod.train

    def flaky(config, **kwargs):
        if config["embed_dim"] == 16 and config["lr"] == 3e-3 and config["stop_epoch"] is None:
            raise MemoryError("simulated out of memory")
        return real_train(config, **kwargs)

    monkeypatch.setattr(train_mod, "train", flaky)
    url = f"sqlite:///{tmp_path}/s.db"
    spec = tiny_spec(
        data_dir,
        seeds=1,
        scientific={"embed_dim,num_heads": [[16, 2], [32, 4]]},
        nuisance={"lr": [1e-3, 3e-3]},
        confirm_seeds=3,
    )
    first = run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None)
    assert first.counts() == {"complete": 3 + 2 * 3, "running": 0, "failed": 1, "waiting": 0}
    assert all(c.n == 3 for c in first.confirmed()) and len(first.confirmed()) == 2
    monkeypatch.setattr(train_mod, "train", real_train)
    second = run_study(spec, storage_url=url, out_dir=tmp_path, log=lambda m: None)
    assert second.counts()["failed"] == 1 and second.counts()["waiting"] == second.counts()["running"] == 0
    for point in second.points():  # the confirmations read are those of the current choice, one per seed
        confirmation = second.confirmation(point)
        assert confirmation is not None and confirmation.nuisance == point.nuisance
        assert sorted(t.seed for t in confirmation.trials) == [1000, 1001, 1002]
        assert {t.stop_epoch for t in confirmation.trials} == {chosen_epoch(point)}
    with pytest.raises(NewslabError, match="runs its trials with 1 thread"):
        run_worker("tiny", open_storage(url), tmp_path, threads=2, log=lambda m: None)
