"""Writing files so that a reader never sees half of one: write beside, then rename over."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write through `write(tmp)` to a temporary file beside `path`, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an advisory lock on `path` (created if missing) for the block; other processes wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_temporaries(folder: Path, older_than_s: float = 3600.0) -> int:
    """Delete the temporary files that processes killed mid-write left in `folder` (those older than
    any write takes, so a write in progress keeps its file); returns how many went."""
    removed = 0
    for stale in folder.glob("*.tmp"):
        try:
            if time.time() - stale.stat().st_mtime > older_than_s:
                stale.unlink()
                removed += 1
        except OSError:  # another process removed or renamed it first
            continue
    return removed


def write_json(path: Path, payload: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8"))
