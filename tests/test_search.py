"""Search beyond the grid (a spec's `search`): Optuna's samplers draw each trial's point when a worker takes
it, its pruners stop laggards from the per-epoch validation accuracy, every slot runs exactly once with
concurrent workers and after kill -9, the winner alone is confirmed on fresh seeds, and the report reads the
history and the parameter importances."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from newslab.errors import ConfigError
from newslab.report import write_report
from newslab.report.search import analyse_search
from newslab.report.sections import environment
from newslab.study import StudySpec, load_spec, open_storage, prepare_study, run_study, study_results
from newslab.study.results import study_progress
from test_report_zh import english_words
from test_study import TINY, cli, write_spec


def search_spec(data_dir: Path, name: str = "search", trials: int = 6, **search) -> StudySpec:
    return StudySpec(
        name=name,
        fixed={**TINY, "data_dir": str(data_dir), "epochs": 3, "embed_dim": 16, "num_heads": 2},
        search={
            "space": {"lr": {"low": 1e-4, "high": 3e-2, "log": True}, "dropout": {"low": 0.0, "high": 0.3}},
            "sampler": "tpe",
            "trials": trials,
            "pruner": "none",
            **search,
        },
        seeds=1,
        confirm_seeds=2,
    )


@pytest.mark.parametrize(
    "search, message",
    [
        ({"sampler": "grid"}, "search.sampler 'grid' is not one of: tpe | random | cmaes (a grid: scientific lists)"),
        ({"pruner": "asha"}, "search.pruner 'asha' is not one of: median | hyperband | none"),
        ({"trials": 0}, "search.trials must be a positive count"),
        ({"space": {"lr": {"low": 1e-2, "high": 1e-3}}}, "search.space.lr: needs low < high"),
        ({"space": {"lr": {"low": 0.0, "high": 1e-3, "log": True}}}, "low > 0 on a log scale"),
        ({"space": {"dropout": {"low": 0.0, "high": 1.5}}}, "search.space.dropout: 1.5: --dropout must be in [0, 1)"),
        ({"space": {"learning_rate": {"low": 0.1, "high": 0.2}}}, "search.space.learning_rate: unknown parameter"),
        ({"space": {"epochs": {"low": 1, "high": 3}}}, "'epochs' is set twice (fixed and search)"),
        ({"space": {"lr": [1e-3, 1e-2]}}, "search.space.lr: needs {low, high} or {choices: [...]}"),
        ({"sample": "tpe"}, "search: unknown field(s) sample"),
    ],
)
def test_bad_search_specs_are_one_line_naming_the_field(data_dir: Path, search: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        search_spec(data_dir, **search)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_search_runs_one_seed_per_draw_and_has_no_grid(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"a search runs each sampled point on one seed \(seeds: 1\)"):
        StudySpec(**{**search_spec(data_dir).to_dict(), "seeds": 2})
    with pytest.raises(ConfigError, match="a search has no scientific or nuisance lists"):
        StudySpec(**{**search_spec(data_dir).to_dict(), "nuisance": {"warmup": [0.0, 0.1]}})


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_each_sampler_draws_points_inside_the_ranges_and_confirms_the_winner(
    tmp_path: Path, data_dir: Path, sampler: str
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    spec = search_spec(data_dir, trials=5, sampler=sampler)
    result = run_study(spec, storage_url=url, out_dir=tmp_path, threads=1, log=lambda _line: None)
    own = [t for t in result.trials if t.role == "select"]
    assert len(own) == 5 and all(t.state == "COMPLETE" for t in own)
    assert all(1e-4 <= t.point["lr"] <= 3e-2 and 0.0 <= t.point["dropout"] <= 0.3 for t in own)
    assert len({t.point["lr"] for t in own}) == 5  # five draws, not one point five times
    confirm = [t for t in result.trials if t.role == "confirm"]
    assert len(confirm) == 2 and {t.seed for t in confirm} == {1000, 1001}  # the winner only, on fresh seeds
    assert all(t.point == result.best().point for t in confirm)
    assert study_progress(result) == (7, 7)


def _counts_by_slot(name: str, url: str) -> dict[str, list[str]]:
    slots: dict[str, list[str]] = {}
    for t in study_results(name, open_storage(url)).trials:
        slots.setdefault(t.key or "", []).append(t.state)
    return slots


def test_three_workers_on_sqlite_run_each_search_slot_exactly_once(tmp_path: Path, data_dir: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    spec = search_spec(data_dir, trials=6)
    prepare_study(spec, open_storage(url, create=True), tmp_path)
    procs = [
        cli("study", "worker", spec.name, "--storage", url, "--out-dir", str(tmp_path), "--threads", "1")
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    slots = _counts_by_slot(spec.name, url)
    assert len(slots) == 6 + 2 and all(states == ["COMPLETE"] for states in slots.values())
    assert sum(out.count(" done:") for out in outputs) == 8  # 6 draws, then the winner on 2 fresh seeds
    result = study_results(spec.name, open_storage(url))
    assert len({json.dumps(t.point, sort_keys=True) for t in result.trials if t.role == "select"}) == 6


@pytest.mark.postgres
def test_two_workers_on_postgresql_run_each_search_slot_exactly_once(tmp_path: Path, data_dir: Path) -> None:
    url = os.environ.get("NEWSLAB_TEST_POSTGRES_URL")
    if not url:
        message = "NEWSLAB_TEST_POSTGRES_URL is not set (.ci/services.sh starts PostgreSQL and sets it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    spec = search_spec(data_dir, f"pg-search-{os.getpid()}-{int(time.time())}", trials=4)
    prepare_study(spec, open_storage(url, create=True), tmp_path)
    procs = [cli("study", "worker", spec.name, "--storage", url, "--out-dir", str(tmp_path)) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    slots = _counts_by_slot(spec.name, url)
    assert len(slots) == 4 + 2 and all(states == ["COMPLETE"] for states in slots.values())


def test_kill_9_mid_search_then_rerun_draws_the_killed_slot_again_without_duplicates(
    tmp_path: Path, data_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    spec = search_spec(data_dir, trials=3)
    spec = StudySpec(**{**spec.to_dict(), "fixed": {**spec.fixed, "epochs": 60}, "confirm_seeds": 0})
    path = write_spec(tmp_path / "search.yaml", spec)
    command = ["study", "run", str(path), "--storage", url, "--out-dir", str(tmp_path), "--heartbeat", "1"]
    proc = cli(*command)
    storage = open_storage(url)
    deadline = time.time() + 300
    while time.time() < deadline:  # one trial complete, the next one running
        try:
            current = study_results("search", storage)
        except Exception:
            time.sleep(0.2)
            continue
        running = [t for t in current.trials if t.state == "RUNNING" and t.run_dir]
        if current.counts()["complete"] == 1 and running and Path(running[0].run_dir, "metrics.csv").is_file():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = [t for t in study_results("search", storage).trials if t.state == "RUNNING"]
    assert len(killed) == 1
    rerun = cli(*command)
    out = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, out
    slots = _counts_by_slot("search", url)
    assert len(slots) == 3 and sorted(states.count("COMPLETE") for states in slots.values()) == [1, 1, 1]
    assert slots[killed[0].key or ""] == ["FAIL", "COMPLETE"]  # failed as stale, then drawn and run again


def test_the_median_pruner_stops_laggards_from_their_epoch_values(tmp_path: Path, data_dir: Path) -> None:
    """Random draws (seeded per slot) down to an lr far too small: the pruner stops some of them early."""
    url = f"sqlite:///{tmp_path}/s.db"
    spec = search_spec(
        data_dir, trials=10, sampler="random", pruner="median", space={"lr": {"choices": [2e-2, 1e-2, 1e-6]}}
    )
    result = run_study(spec, storage_url=url, out_dir=tmp_path, threads=1, log=lambda _line: None)
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert pruned and result.counts()["pruned"] == len(pruned)
    assert all(len(t.history) < 3 and t.history for t in pruned)  # stopped before the last of 3 epochs
    assert {t.point["lr"] for t in pruned} == {1e-6} and result.best().point["lr"] != 1e-6  # only laggards stopped
    assert all(t.role == "select" for t in pruned) and study_progress(result)[0] == study_progress(result)[1]


def test_the_report_shows_the_history_importances_and_the_confirmed_winner(tmp_path: Path, data_dir: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    result = run_study(
        search_spec(data_dir, trials=6), storage_url=url, out_dir=tmp_path, threads=1, log=lambda _: None
    )
    analysis = analyse_search(result)
    assert isinstance(analysis.importances, dict) and set(analysis.importances) == {"lr", "dropout"}
    assert sum(analysis.importances.values()) == pytest.approx(1.0)
    files = write_report([result], tmp_path / "report", log=None)
    chapter = files.markdown.read_text().split("## Search beyond the grid")[1].split("## Best model")[0]
    assert "search-search.png" in chapter and "search-importance.png" in chapter
    (claim,) = [c for c in files.claims if c.topic == "search"]
    assert claim.text.startswith("The search search (TPE sampler, no pruner) ran 6 of its 6 trials: 6 complete")
    assert "on 2 fresh seeds and a fresh validation split" in claim.text and "fANOVA importance" in claim.text
    assert "## Hyperparameter impact" in files.markdown.read_text()  # no level plots of a search's draws
    zh = write_report([result], tmp_path / "zh", lang="zh", log=None).markdown.read_text()
    headlines = " ".join(p.read_text() for p in data_dir.glob("*.csv"))  # misclassified examples: data, not words
    assert "网格之外的搜索" in zh
    assert english_words(zh, f"search {headlines} {' '.join(map(str, environment().values()))}") == set()


def test_the_search_presets_resolve_against_their_grids() -> None:
    for name, grid in (("search", "seed-grid"), ("quick-search", "quick-grid")):
        spec = load_spec(name)
        assert spec.base_study == grid and spec.search and spec.search["trials"] >= 16
        assert "lr" in spec.search["space"] and spec.seed_list == [0] and spec.confirm_seed_list
