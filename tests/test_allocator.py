"""tcmalloc for training commands: when the CLI re-executes itself, and that runs record their allocator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import tiny_flags
from newslab import allocator
from test_cli import run_cli

LIB = "libtcmalloc_minimal.so.4"


def test_preload_environment_adds_the_library_once_and_keeps_the_users_preload() -> None:
    env = allocator.preload_environment({"PATH": "/bin", "LD_PRELOAD": "libfoo.so"}, LIB)
    assert env["LD_PRELOAD"] == f"{LIB} libfoo.so" and env["PATH"] == "/bin"
    assert env[allocator._REEXEC] == "libfoo.so"  # what the re-executed process restores
    assert allocator.preload_environment(env, LIB) is None  # never twice


@pytest.mark.parametrize(
    "environ, library",
    [
        ({"NEWSLAB_ALLOCATOR": "system"}, LIB),
        ({}, None),  # not installed
        ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, LIB),  # the user chose a malloc already
    ],
)
def test_preload_environment_leaves_the_process_alone(environ: dict, library: str | None) -> None:
    assert allocator.preload_environment(environ, library) is None


def test_unknown_allocator_setting_is_an_error() -> None:
    with pytest.raises(ValueError, match="NEWSLAB_ALLOCATOR='tc'"):
        allocator.preload_environment({"NEWSLAB_ALLOCATOR": "tc"}, LIB)


@pytest.mark.parametrize("original", ["", "libfoo.so"])
def test_reexecuted_process_restores_ld_preload_for_its_children(monkeypatch, original: str) -> None:
    monkeypatch.setenv(allocator._REEXEC, original)
    monkeypatch.setenv("LD_PRELOAD", f"{LIB} {original}".strip())
    allocator.reexec_with_tcmalloc(["train"])  # returns: this process is the re-executed one
    assert allocator._REEXEC not in os.environ
    assert os.environ.get("LD_PRELOAD", "") == original


@pytest.mark.parametrize(
    "program, expected",
    [(("-m", "newslab"), ["-m", "newslab"]), (["benchmarks/vs_peak.py"], ["benchmarks/vs_peak.py"])],
)
def test_reexec_runs_the_program_under_tcmalloc(monkeypatch, program, expected: list[str]) -> None:
    calls = []
    monkeypatch.delenv(allocator._REEXEC, raising=False)
    monkeypatch.delenv(allocator.ENV, raising=False)
    monkeypatch.setenv("LD_PRELOAD", "")
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: LIB)
    monkeypatch.setattr(allocator.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    allocator.reexec_with_tcmalloc(["--sizes", "256"], program=program)
    ((path, argv, env),) = calls
    assert argv == [path, *expected, "--sizes", "256"]
    assert env["LD_PRELOAD"] == LIB and env[allocator._REEXEC] == ""


def _allocator_of_cli_run(data_dir: Path, out_dir: Path, env: dict) -> str:
    proc = run_cli("train", *tiny_flags(data_dir, out_dir), "--epochs", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    (final,) = out_dir.glob("runs/*/final.json")
    return json.loads(final.read_text())["allocator"]


def test_train_command_runs_under_tcmalloc_unless_told_not_to(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    if allocator.find_tcmalloc() is None:
        message = "tcmalloc is not installed (Debian: libtcmalloc-minimal4; .ci/services.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    for name in ("LD_PRELOAD", allocator._REEXEC, allocator.ENV):
        monkeypatch.delenv(name, raising=False)
    assert _allocator_of_cli_run(data_dir, tmp_path / "auto", {}) == "tcmalloc"
    assert _allocator_of_cli_run(data_dir, tmp_path / "system", {allocator.ENV: "system"}) == "system"
