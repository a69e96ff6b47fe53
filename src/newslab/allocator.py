"""The memory allocator of training processes: tcmalloc where installed, glibc's malloc otherwise.

Bucketed batches change shape every step; glibc's malloc keeps the freed memory in pieces that
fit the next shapes badly, so a run's resident memory grows well past what its tensors need
(embed 256, 30,000 rows: 1742 MB under glibc, 1032 MB under tcmalloc, at the same speed;
benchmarks/README.md, "Memory"). A malloc cannot be swapped inside a running process, so the
`newslab` command's training commands re-execute the process once with tcmalloc in LD_PRELOAD.
NEWSLAB_ALLOCATOR=system turns this off. The Python API runs under whatever allocator its
process has (start it with LD_PRELOAD=libtcmalloc_minimal.so.4 for the same effect).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ENV = "NEWSLAB_ALLOCATOR"  # "auto" (default): tcmalloc when installed; "system": leave malloc alone
_REEXEC = "NEWSLAB_ALLOCATOR_REEXEC"  # set for the re-executed process; holds the LD_PRELOAD to restore
_LIBRARY = "tcmalloc_minimal"  # Debian/Ubuntu: libtcmalloc-minimal4; Fedora: gperftools-libs; conda: gperftools


def find_tcmalloc() -> str | None:
    """The tcmalloc shared library's name as the dynamic loader resolves it, or None (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.util.find_library(_LIBRARY)


def current() -> str:
    """Which allocator this process runs: "tcmalloc", "jemalloc" or "system"."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "system"
    for name in ("tcmalloc", "jemalloc"):
        if f"lib{name}" in maps:
            return name
    return "system"


def preload_environment(environ: Mapping[str, str], library: str | None) -> dict[str, str] | None:
    """The environment to re-execute with tcmalloc preloaded, or None when there is nothing to do."""
    choice = environ.get(ENV, "auto")
    if choice not in ("auto", "system"):
        raise ValueError(f"{ENV}={choice!r}: expected 'auto' or 'system'")
    if choice == "system" or library is None or _REEXEC in environ or "malloc" in environ.get("LD_PRELOAD", ""):
        return None
    env = dict(environ)
    env[_REEXEC] = environ.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = " ".join(filter(None, [library, environ.get("LD_PRELOAD", "")]))
    return env


def reexec_with_tcmalloc(argv: Sequence[str], program: Sequence[str] = ("-m", "newslab")) -> None:
    """Replace this process by `python PROGRAM ARGV` under tcmalloc when that applies; else return.

    PROGRAM: `-m newslab` for the command, a script's path for a benchmark that times training as it runs.

    In the re-executed process, LD_PRELOAD is set back to what it was, so the programs it starts
    (a browser for PDF reports, study workers, which re-execute on their own) inherit none of it.
    """
    if _REEXEC in os.environ:
        original = os.environ.pop(_REEXEC)
        if original:
            os.environ["LD_PRELOAD"] = original
        else:
            os.environ.pop("LD_PRELOAD", None)
        return
    try:
        env = preload_environment(os.environ, find_tcmalloc())
    except ValueError as exc:
        print(f"newslab: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *program, *argv], env)
