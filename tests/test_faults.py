"""Fault injection on runs: full and read-only disks, signals at every phase, concurrent writers,
and the CLI's one-line errors. Each test checks the exact outcome and that no earlier result changed."""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import tiny_flags
from newslab.config import RunConfig
from newslab.errors import NewslabError
from newslab.runs import RunFolder, load_run, predict
from newslab.train import train

train_mod = importlib.import_module("newslab.train")  # the module; `newslab.train` is also the function
runs_mod = importlib.import_module("newslab.runs.recorder")


def quiet(config: RunConfig, **kwargs):
    return train(config, log=None, progress=False, **kwargs)


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "newslab", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NEWSLAB_ALLOCATOR": "system", **(env or {})},
        timeout=300,
    )


def tiny_train(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["train", *tiny_flags(data_dir, out), *extra]


@contextlib.contextmanager
def small_filesystem(path: Path, size_kb: int, readonly: bool = False) -> Iterator[bool]:
    """A tmpfs of `size_kb` at `path` (True), where this machine lets a test mount one (root in CI);
    else False, and the test simulates the fault instead."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k" + (",ro" if readonly else "")
    mounted = (
        os.environ.get("NEWSLAB_TEST_NO_MOUNT") != "1"  # to exercise the simulated faults
        and shutil.which("mount") is not None
        and subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=True)


def fill(path: Path, leave_kb: int) -> None:
    """Fill the file system of `path` until about `leave_kb` KB are free."""
    stat = os.statvfs(path)
    free = stat.f_bavail * stat.f_frsize
    (path / "filler").write_bytes(b"\0" * max(0, free - leave_kb * 1024))


# ------------------------------------------------------------------------------- disks
def test_a_full_disk_ends_the_run_failed_with_a_one_line_error(
    data_dir: Path, tmp_path: Path, tiny_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "small"
    with small_filesystem(out, 512) as mounted:
        if mounted:  # room for the folder's first files, not for the checkpoint
            (out / "runs").mkdir()
            fill(out, leave_kb=28)
            proc = cli(*tiny_train(data_dir, out, "--run-name", "full"))
            assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
            assert "No space left on device" in proc.stderr and proc.stderr.startswith("newslab: error: ")
            final = RunFolder(out / "runs" / "full").final()
        else:  # simulated: every write after the first epoch's files fails with ENOSPC
            real = runs_mod.atomic_write

            def enospc(path, write):
                if path.name == "model.safetensors":
                    raise OSError(errno.ENOSPC, "No space left on device", str(path))
                return real(path, write)

            monkeypatch.setattr(runs_mod, "atomic_write", enospc)
            with pytest.raises(OSError):
                quiet(tiny_config.replace(out_dir=str(out), run_name="full"))
            final = RunFolder(out / "runs" / "full").final()
    assert final["status"] == "failed" and "No space left on device" in final["reason"]


def test_a_read_only_output_folder_is_one_line_and_writes_nothing(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ro"
    with small_filesystem(out, 64, readonly=True) as mounted:
        if not mounted:  # simulated: the output root is a file, so nothing can be created under it
            out.rmdir()
            out.write_text("not a folder")
        proc = cli(*tiny_train(data_dir, out / "sub"))
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert str(out / "sub") in proc.stderr and "Traceback" not in proc.stderr
        assert ("Read-only file system" if mounted else "Not a directory") in proc.stderr
        if mounted:
            assert not any(out.iterdir())


# ----------------------------------------------------------------------------- signals
def test_ctrl_c_before_the_first_epoch(tiny_config: RunConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "load_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        quiet(tiny_config.replace(run_name="early"))
    folder = RunFolder(Path(tiny_config.execution.out_dir) / "runs" / "early")
    assert folder.final()["status"] == "interrupted" and folder.final()["epochs_completed"] == 0
    assert not folder.weights_file.exists()


def test_a_signal_while_writing_the_checkpoint_keeps_the_previous_one(
    tiny_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = Path.write_bytes, []

    def interrupted_midway(self: Path, data: bytes) -> int:
        if self.name.startswith("model.safetensors."):
            calls.append(self)
            if len(calls) == 2:  # the second checkpoint: half a file, then the signal
                real(self, data[: len(data) // 2])
                raise KeyboardInterrupt
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", interrupted_midway)
    config = tiny_config.replace(epochs=6, lr=1e-2, run_name="mid-write")
    with pytest.raises(KeyboardInterrupt):
        quiet(config)
    folder = RunFolder(Path(config.execution.out_dir) / "runs" / "mid-write")
    final = folder.final()
    assert final["status"] == "interrupted" and final["best_epoch"] == load_run(folder.path).checkpoint["epoch"]
    assert not list(folder.path.glob("*.tmp"))  # no half-written file is left behind


def test_an_overwrite_interrupted_early_leaves_no_old_checkpoint(
    tiny_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config.replace(run_name="again")
    quiet(config)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "load_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        quiet(config.replace(lr=1e-2), overwrite=True)
    folder = RunFolder(Path(config.execution.out_dir) / "runs" / "again")
    assert folder.final()["status"] == "interrupted" and folder.config().optim.lr == 1e-2
    with pytest.raises(NewslabError, match="no checkpoint"):  # never the old run's weights as this run's
        load_run(folder.path)


# ------------------------------------------------------------------------- concurrency
def test_two_runs_of_one_name_started_together(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "newslab", *tiny_train(data_dir, out, "--run-name", "same")]
    env = {**os.environ, "NEWSLAB_ALLOCATOR": "system"}
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert loser.count("\n") == 1 and "same" in loser
    folder = RunFolder(out / "runs" / "same")
    assert folder.final()["status"] == "completed" and len(folder.metrics()) == 2
    assert load_run(folder.path).checkpoint["epoch"] == folder.final()["best_epoch"]


# ------------------------------------------------------------------------ bad requests
def test_predict_refuses_an_empty_text(tiny_config: RunConfig) -> None:
    run = load_run(quiet(tiny_config).run_dir)
    with pytest.raises(NewslabError, match="text 2 is empty"):
        predict(run, ["striker league", "  "])


def test_evaluate_names_a_missing_csv_and_finds_data_from_elsewhere(data_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    for name in ("train.csv", "test.csv", "classes.txt"):
        (work / "data" / name).write_bytes((data_dir / name).read_bytes())
    flags = tiny_train(Path("data"), Path("out"), "--run-name", "rel")  # relative to `work`
    assert cli(*flags, cwd=work).returncode == 0
    run_dir = work / "out" / "runs" / "rel"
    assert RunFolder(run_dir).config().data.data_dir == str(work / "data")  # absolute in the record
    proc = cli("evaluate", str(run_dir), cwd=tmp_path)  # another working directory
    assert proc.returncode == 0 and "matches the run's recorded test accuracy" in proc.stdout, proc.stderr
    proc = cli("evaluate", str(run_dir), "--csv", str(tmp_path / "nope.csv"))
    assert proc.returncode == 2 and proc.stderr == f"newslab: error: --csv {tmp_path / 'nope.csv'}: no such file\n"
    proc = cli("predict", str(run_dir), "")
    assert proc.returncode == 2 and proc.stderr == "newslab: error: text 1 is empty: there is nothing to classify\n"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    assert "Traceback" not in cli("evaluate", str(tmp_path)).stderr
    proc = cli("evaluate", str(tmp_path), "--debug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "NewslabError" in proc.stderr
    assert "Traceback" in cli("evaluate", str(tmp_path), env={"NEWSLAB_DEBUG": "1"}).stderr


@pytest.mark.parametrize(
    "exc, line",
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/out/runs/x/model.safetensors"),
            "/out/runs/x/model.safetensors: No space left on device",
        ),
        (PermissionError(errno.EACCES, "Permission denied", "/data/train.csv"), "/data/train.csv: Permission denied"),
        (
            RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried"),
            "out of memory (",
        ),
        (MemoryError(), "out of memory (MemoryError)"),
        (NewslabError("study 'x' not found\nsecond line"), "study 'x' not found second line"),
        (ValueError("a bug"), None),
    ],
)
def test_every_expected_failure_is_one_line_and_a_bug_keeps_its_traceback(exc: Exception, line: str | None) -> None:
    from newslab.cli import failure_line

    got = failure_line(exc)
    assert got is None if line is None else (got is not None and got.startswith(line) and "\n" not in got)


def test_out_of_memory_in_a_run_is_one_line(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from newslab.cli import main

    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 44964000000 bytes")

    monkeypatch.setattr(train_mod.TextClassifier, "from_config", no_memory)
    assert main(tiny_train(data_dir, tmp_path, "--run-name", "oom")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of memory" in err and "--embed-dim" in err
    assert RunFolder(tmp_path / "runs" / "oom").final()["status"] == "failed"
