"""`newslab manual` and the handbook notebook: the notebook runs the quick preset end to end on the
stand-in (executed headless by nbclient), then the CLI resumes it with nothing left to redo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from browser import check_in_browser
from newslab import manual
from newslab.cli import main
from newslab.config import RunConfig
from newslab.errors import NewslabError
from newslab.manual import analyse_attention, manual_plan, run_baseline
from newslab.runs import finished_result
from newslab.study import open_storage, study_results

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
    seconds = time.time() - started
    print(f"notebook, quick preset, fresh: {seconds:.0f} s")
    return SimpleNamespace(out=out, nb=nb, seconds=seconds, data=stand_in_dir)


@pytest.mark.realdata
@pytest.mark.slow
def test_notebook_runs_the_quick_manual_end_to_end(quick_manual) -> None:
    outputs = "".join(o.get("text", "") for c in quick_manual.nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "rows sum to 1.0000..1.0000" in outputs and "report:" in outputs
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
    assert "] trial " not in proc.stdout  # no trial ran ("[quick-grid] trial 3: ..." is how one starts)
    assert time.time() - started < 120


@pytest.mark.realdata
@pytest.mark.browser
def test_quick_manual_report_opens_in_headless_chromium(quick_manual) -> None:
    page = check_in_browser(quick_manual.out / "report" / "report.html", "report-quick-manual.png")
    assert len(page["images"]) >= 9 and "Conclusions" in page["text"]
