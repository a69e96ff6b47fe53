"""`newslab manual` and the handbook notebook: the notebook runs the quick preset end to end on the
stand-in (executed headless by nbclient), then the CLI resumes it with nothing left to redo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import report_synthetic
from browser import artefacts_dir, check_in_browser, keep_artefacts
from newslab import manual
from newslab.cli import main
from newslab.config import RunConfig
from newslab.errors import ConfigError, NewslabError
from newslab.manual import TrialBar, analyse_attention, manual_plan, run_baseline
from newslab.manual_next import next_commands, next_report_dir, next_steps, spec_changes, todo_status
from newslab.positions import POSITIONAL_ENCODINGS
from newslab.report.build import write_followups
from newslab.report.render import Table
from newslab.runs import finished_result
from newslab.study import StudyResult, open_storage, study_results
from newslab.study.results import study_progress

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "transformer_manual.ipynb"
SECTIONS = [
    "Environment",
    "Baseline run",
    "Grid search",
    "Results table",
    "Plots",
    "Ablations",
    "attention",
    "Conclusions",
    "Next steps",
]


def test_notebook_is_stored_without_outputs_and_has_the_manual_sections() -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    headings = [
        line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines() if line.startswith("## ")
    ]
    assert len(headings) == len(SECTIONS) and all(s in h for s, h in zip(SECTIONS, headings))
    source = "\n".join(c.source for c in code)
    assert "subprocess" not in source and "newslab.manual" in source  # the API, never the CLI's stdout


def test_presets_resolve_to_a_baseline_and_two_studies(tmp_path: Path) -> None:
    quick, full = manual_plan("quick", out_dir=tmp_path), manual_plan("full", out_dir=tmp_path)
    assert (quick.grid.name, quick.ablations.name, quick.threads) == ("quick-grid", "quick-ablations", 1)
    assert (full.grid.name, full.ablations.base_study, full.grid.seed_list) == (
        "full-grid",
        "full-grid",
        [0, 1, 2, 3, 4],
    )
    assert full.grid.fixed["epochs"] == full.ablations.fixed["epochs"] == 10
    # the baseline is trained as the grid's runs are (the whole training split, to a plateau)
    assert quick.baseline.data.vocab_size == quick.grid.fixed["vocab_size"] and quick.baseline.data.data_dir is None
    assert quick.baseline.optim.patience == quick.grid.fixed["patience"] and quick.workers == 2
    with pytest.raises(Exception, match="--preset 'huge' is not one of"):
        manual_plan("huge")


def test_chapters_run_after_the_ablations_from_the_grids_best_configuration(tmp_path: Path) -> None:
    full = manual_plan("full", out_dir=tmp_path)
    names = ["full-pos-enc", "full-scale", "full-pretraining", "full-search"]  # the original manual's TODO list
    assert [c.name for c in full.chapters] == names
    assert all(c.base_study == "full-grid" and c.fixed["epochs"] == 10 for c in full.chapters)
    assert [c.seed_list for c in full.chapters] == [[0, 1, 2, 3, 4]] * 3 + [[0]]  # a search runs each draw once
    assert manual_plan("quick", out_dir=tmp_path).chapters == []  # the quick preset stays within its ten minutes
    quick = manual_plan("quick", out_dir=tmp_path, chapters=["quick-scale", "quick-pos-enc", "quick-scale"])
    assert [c.name for c in quick.chapters] == ["quick-scale", "quick-pos-enc"]
    assert all(c.base_study == "quick-grid" for c in quick.chapters)
    assert quick.command.endswith("--chapter quick-scale --chapter quick-pos-enc") and "--chapter" not in full.command
    with pytest.raises(
        ConfigError, match="--chapter 'pos-enc' is not a chapter of --preset quick: quick-pos-enc | quick-scale"
    ):
        manual_plan("quick", chapters=["pos-enc"])
    assert main(["manual", "--preset", "quick", "--chapter", "scale", "--out-dir", str(tmp_path)]) == 2


def test_a_finished_baseline_is_not_trained_again(tiny_config: RunConfig, monkeypatch) -> None:
    plan = SimpleNamespace(
        baseline=tiny_config.replace(run_name="baseline"),
        data_dir=None,
        baseline_dir=Path(tiny_config.execution.out_dir) / "runs" / "baseline",
    )
    first = run_baseline(plan, log=lambda _line: None)
    assert first.status == "completed"
    calls = []
    monkeypatch.setattr(manual, "train", lambda *a, **k: calls.append(a) or first)
    again = run_baseline(plan, log=lambda _line: None)
    assert calls == [] and again.test_accuracy == first.test_accuracy and len(again.history) == 2
    assert finished_result(plan.baseline_dir, plan.baseline.replace(threads=2)) is not None  # execution detail
    assert finished_result(plan.baseline_dir, plan.baseline.replace(lr=1e-2)) is None  # another experiment
    final = json.loads((plan.baseline_dir / "final.json").read_text())
    (plan.baseline_dir / "final.json").write_text(json.dumps({**final, "status": "running"}))  # interrupted
    run_baseline(plan, log=lambda _line: None)
    assert len(calls) == 1


def test_manual_whose_grid_trials_all_fail_still_reports_and_exits_1(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(manual, "run_baseline", lambda plan, log: None)  # not the step under test

    def diverge(*args, **kwargs):
        raise RuntimeError("loss became nan at epoch 1")

    # every grid trial fails at once, no training (the package's `train` name is the function, not the module)
    monkeypatch.setattr(sys.modules["newslab.train"], "train", diverge)
    out = tmp_path / "outputs"
    # one in-process worker: the replaced `train` would not reach worker processes
    assert main(["manual", "--preset", "quick", "--workers", "1", "--out-dir", str(out)]) == 1
    stdout = capsys.readouterr().out
    assert stdout.count("every trial of grid study quick-grid failed") == 1
    assert "== [3/5]" not in stdout and "== [4/5]" not in stdout and "== [5/5] report" in stdout
    assert "manual --preset quick: FAILED" in stdout
    with pytest.raises(NewslabError, match="not found"):  # the ablation study was never created
        study_results("quick-ablations", open_storage(f"sqlite:///{out / 'studies.db'}"))
    markdown = (out / "report" / "report.md").read_text()
    assert "Study quick-grid has no completed trial" in markdown and "loss became nan" in markdown


# --------------------------------------------------------------- the notebook-facing API
cells = st.text(max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 6), st.integers(0, 8), st.data())
def test_a_report_table_is_a_dataframe_of_its_cells(columns: int, rows: int, data) -> None:
    headers = data.draw(st.lists(cells, min_size=columns, max_size=columns))  # duplicates included
    body = [data.draw(st.lists(cells, min_size=columns, max_size=columns)) for _ in range(rows)]
    caption = data.draw(st.none() | cells)
    frame = Table(headers, body, caption).frame()
    assert frame.shape == (rows, columns) and list(frame.columns) == headers
    assert frame.to_numpy().tolist() == body and frame.attrs["caption"] == caption


def _as_run(result: StudyResult, ended: int, confirmations_queued: bool) -> StudyResult:
    """`result` as it stood while running: its first `ended` trials complete, the next one running, the
    rest waiting; the confirmation trials in storage only once `confirmations_queued`."""
    trials = [t for t in result.trials if confirmations_queued or t.role == "select"]
    states = ["COMPLETE"] * ended + ["RUNNING"] + ["WAITING"] * len(trials)
    return StudyResult(result.name, result.spec, [replace(t, state=s) for t, s in zip(trials, states)])


@pytest.mark.parametrize("study", [report_synthetic.grid("g", lambda p, n: 0.8, seeds=2, confirm=3),
                                   report_synthetic.ablations("a", {}, seeds=2, confirm=2)])  # fmt: skip
def test_the_trial_bar_counts_both_stages_and_its_total_holds_still(study: StudyResult, tmp_path: Path) -> None:
    selection = sum(t.role == "select" for t in study.trials)
    total = len(study.trials)
    assert selection < total  # a study with both stages
    bar = TrialBar(study.name, f"sqlite:///{tmp_path / 'none.db'}")
    seen = []
    for ended in range(total + 1):
        now = _as_run(study, ended, confirmations_queued=ended >= selection)
        assert study_progress(now) == (ended, total)  # the study's log lines count alike
        bar.show(now)
        seen.append((bar.bar.n, bar.bar.total))
    bar.close()
    assert seen == [(k, total) for k in range(total + 1)]
    bar(f"study {study.name}: 0 trial(s) queued")  # the study is not in storage: the line moves nothing
    assert bar.bar.n == total


settings_values = st.recursive(
    st.integers() | st.text(max_size=4), lambda inner: st.lists(inner, max_size=3), max_leaves=6
)
sections = st.dictionaries(st.sampled_from(["epochs", "lr", "embed_dim"]), settings_values, max_size=3)
spec_dicts = st.fixed_dictionaries(
    {"name": st.text(max_size=4), "base_study": st.none() | st.just("grid")},
    optional={"fixed": sections, "nuisance": sections, "seeds": st.integers(1, 5), "confirm_seeds": st.integers()},
)


@settings(max_examples=100, deadline=None)
@given(spec_dicts, spec_dicts)
def test_spec_changes_turn_the_current_spec_into_the_proposed_one(current: dict, proposed: dict) -> None:
    changes = spec_changes(current, proposed)
    flat = lambda spec: {
        f"{k}.{i}" if isinstance(v, dict) else k: w
        for k, v in spec.items()
        if k not in ("name", "base_study")
        for i, w in (v.items() if isinstance(v, dict) else [(None, v)])
    }
    applied = {**flat(current), **{key: new for key, _, new in changes}}
    assert {k: v for k, v in applied.items() if v is not None} == flat(proposed)
    assert all(old != new for _, old, new in changes) and len({key for key, _, _ in changes}) == len(changes)


def test_next_steps_show_what_the_follow_up_specs_change_and_how_to_run_them(tmp_path: Path) -> None:
    # lr chosen at the top of its grid (3e-3 wins everywhere), 2 confirmation seeds: next-grid.yaml widens lr
    grid = report_synthetic.grid("g", lambda p, n: 0.7 + 10 * p["lr"], seeds=2, confirm=2)
    variants = report_synthetic.ablations("a", {"no_pe": 0.002}, seeds=2, confirm=2)
    plan = manual_plan("quick", out_dir=tmp_path / "out", data_dir=tmp_path / "data", storage_url="sqlite:///s.db")
    where = f" --out-dir {plan.out_dir} --storage 'sqlite:///s.db'"  # as build_report gives a storage URL
    plan.report_dir.mkdir(parents=True)
    written = write_followups([grid, variants], plan.report_dir, where, log=None)
    files = SimpleNamespace(followups=list(written.values()), where=where)  # what ReportFiles carries
    next_grid = written["next-grid.yaml"].path

    changes = next_steps(files, [grid, variants])
    proposed = yaml.safe_load(next_grid.read_text())
    # each file beside the study it continues, as the report's FollowUp names it
    assert set(zip(changes["file"], changes["continues"])) == {("next-grid.yaml", "g"), ("next-ablations.yaml", "a")}
    on_grid = changes[changes["file"] == "next-grid.yaml"]
    by_setting = dict(zip(on_grid["setting"], zip(on_grid["current"], on_grid["proposed"])))
    assert "name" not in by_setting and "seeds" not in by_setting  # what stays is not listed
    assert by_setting["scientific.lr"] == ("[0.001, 0.003]", json.dumps(proposed["scientific"]["lr"]))
    assert len(proposed["scientific"]["lr"]) == 3 and proposed["scientific"]["lr"][-1] > 0.003
    data = f"NEWSLAB_DATA_DIR={tmp_path / 'data'} "
    assert next_commands(plan, files) == [
        f"{data}{written['next-grid.yaml'].command}",  # the report's own commands, storage flags and all
        f"{data}{written['next-ablations.yaml'].command}",
        f"{data}newslab report g-next a-next{where} --lang en --report-dir {tmp_path / 'out' / 'report-next'}",
    ]
    assert written["next-grid.yaml"].command == f"newslab study run {next_grid}{where}"
    assert next_report_dir(plan) != plan.report_dir  # the follow-ups' report never overwrites the manual's
    nothing = SimpleNamespace(followups=[], where=where)
    assert next_steps(nothing, [grid]).empty and next_commands(plan, nothing) == []

    todo = todo_status(plan, files).set_index("original manual's TODO")
    assert "next-grid.yaml" in todo.loc["More hyperparameter combinations", "in newslab"]
    assert all(name in todo.loc["Other positional encodings", "in newslab"] for name in POSITIONAL_ENCODINGS)
    assert set(todo["status"]) == {"available"}  # every item of the original manual's TODO list has its chapter
    for item, chapter in (
        ("Longer sequences", "quick-scale"),
        ("Other positional", "quick-pos-enc"),
        ("Pretraining", "quick-pretraining"),
    ):
        row = next(text for name, text in todo["in newslab"].items() if name.startswith(item))
        assert f"`{chapter}` chapter" in row and f"--preset {plan.preset} --chapter NAME" in row


# --------------------------------------------------------------- the real quick manual
@pytest.fixture(scope="module")
def quick_manual(stand_in_dir: Path, tmp_path_factory) -> SimpleNamespace:
    """Execute the notebook on the quick preset into a fresh output folder; fails on any cell error."""
    import nbformat
    from nbclient import NotebookClient

    out = tmp_path_factory.mktemp("manual") / "outputs"
    env = {"NEWSLAB_MANUAL_PRESET": "quick", "NEWSLAB_OUT_DIR": str(out), "NEWSLAB_DATA_DIR": str(stand_in_dir)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.time()
    try:
        NotebookClient(
            nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
        ).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        nbformat.write(nb, artefacts_dir() / "transformer_manual-quick.ipynb")  # executed, failed cells included
    seconds = time.time() - started
    print(f"notebook, quick preset, fresh: {seconds:.0f} s")
    # every figure of the report, for a reviewer to look at (.ci/run checks they are there)
    keep_artefacts(sorted((out / "report" / "figures").glob("*.png")), "quick-manual")
    return SimpleNamespace(out=out, nb=nb, seconds=seconds, data=stand_in_dir)


def _by_section(nb) -> dict[str, list[dict]]:
    """The outputs of the notebook's code cells, by the "## " heading they stand under."""
    outputs: dict[str, list[dict]] = {}
    heading = ""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            heading = cell.source.splitlines()[0]
        elif cell.cell_type == "code":
            outputs.setdefault(heading, []).extend(cell.outputs)
    return outputs


def _shows(outputs: list[dict], mime: str, marker: str = "") -> int:
    return sum(marker in str(o.get("data", {}).get(mime, "")) for o in outputs if mime in o.get("data", {}))


@pytest.mark.realdata
@pytest.mark.slow
def test_notebook_runs_the_quick_manual_end_to_end(quick_manual) -> None:
    outputs = "".join(o.get("text", "") for c in quick_manual.nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "rows sum to 1.0000..1.0000" in outputs and outputs.count("report:") == 1
    # each section shows DataFrames and figures drawn from the API (not the report's HTML), progress
    # bars as Jupyter widgets while the studies run, and no warning that widgets are missing
    sections = _by_section(quick_manual.nb)
    shown = lambda words, mime, marker="": next(_shows(o, mime, marker) for h, o in sections.items() if words in h)
    for words in ("Environment", "Baseline run", "Grid search", "Results table", "Ablations", "attention"):
        assert shown(words, "text/html", 'class="dataframe"') >= 1, words
    assert shown("Conclusions", "text/html", 'class="dataframe"') == 1
    assert shown("Next steps", "text/html", 'class="dataframe"') >= 1  # the TODO list, then the follow-ups if any
    assert shown("Plots", "image/png") >= 3 and shown("Ablations", "image/png") >= 2
    assert shown("attention", "image/png") >= 4  # the confusion matrix and the attention figures
    for words in ("Grid search", "Ablations"):
        assert shown(words, "application/vnd.jupyter.widget-view+json") >= 1, words
    everything = [o for cell_outputs in sections.values() for o in cell_outputs]
    assert not _shows(everything, "text/html", "<section")  # the report's sections stay in the report
    stderr = "".join(o.get("text", "") for o in everything if o.get("name") == "stderr")
    assert "IProgress" not in stderr and "TqdmWarning" not in stderr
    assert not [o for o in everything if o.get("output_type") == "error"]
    storage = open_storage(f"sqlite:///{quick_manual.out / 'studies.db'}")
    grid, ablations = study_results("quick-grid", storage), study_results("quick-ablations", storage)
    for study in (grid, ablations):  # every selection trial, then every point on each confirmation seed
        confirmations = len(study.points()) * len(study.spec.confirm_seed_list)
        assert study.counts()["complete"] == len(study.spec.trials()) + confirmations
        assert len(study.confirmed()) == len(study.points())
    markdown = (quick_manual.out / "report" / "report.md").read_text()
    for title in ("## Results", "## Ablations", "## Attention", "## Conclusions", "Baseline run"):
        assert title in markdown
    # a quick preset that means something: a trained model (confirmed on fresh seeds and rows), runs
    # that reached their plateau, and an attention sample made of words the model knows
    chosen = grid.confirmation(grid.best())
    assert chosen is not None and chosen.val_mean >= 0.80
    lrs = grid.spec.choices("lr")
    assert min(lrs) < grid.best().nuisance["lr"] < max(lrs)  # the pick lies inside its grid
    selection = [t for study in (grid, ablations) for t in study.trials if t.role == "select"]
    plateaued = [t for t in selection if t.best_epoch is not None and t.best_epoch < len(t.history)]
    assert len(plateaued) > len(selection) / 2
    plan = manual_plan("quick", out_dir=quick_manual.out, data_dir=quick_manual.data)
    assert analyse_attention(plan, grid).sample.unknown_share < 0.10
    print(f"quick manual: {quick_manual.seconds:.0f} s, selected {grid.best().point} {grid.best().nuisance}")


@pytest.mark.realdata
@pytest.mark.slow
def test_cli_manual_resumes_the_notebooks_work_without_redoing_it(quick_manual) -> None:
    baseline_final = quick_manual.out / "runs" / "manual-quick-baseline" / "final.json"
    before = baseline_final.stat().st_mtime_ns
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "newslab", "manual", "--preset", "quick", "--out-dir", str(quick_manual.out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NEWSLAB_DATA_DIR": str(quick_manual.data)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "baseline: already completed" in proc.stdout and baseline_final.stat().st_mtime_ns == before
    assert "study quick-grid: 0 trial(s) queued" in proc.stdout
    assert "study quick-ablations: 0 trial(s) queued" in proc.stdout
    assert "] trial " not in proc.stdout  # no trial ran ("[quick-grid] trial 3/18 (#2) started: ..." is how one starts)
    assert time.time() - started < 120


@pytest.mark.realdata
@pytest.mark.browser
def test_quick_manual_report_opens_in_headless_chromium(quick_manual) -> None:
    page = check_in_browser(quick_manual.out / "report" / "report.html", "report-quick-manual.png")
    assert len(page["images"]) >= 9 and "Conclusions" in page["text"]
