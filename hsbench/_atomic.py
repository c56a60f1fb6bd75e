"""Crash-safe file output: write next to the target, then rename over it (``os.replace`` is atomic on POSIX).

Used by the zoo and the feature cache, whose readers trust whatever exists under its final name: an interrupted
pretraining or feature extraction must leave either nothing or a complete file, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_file", "atomic_write_text", "publish_dir", "staging_dir", "file_lock"]


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it becomes ``path``, on error it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would make a shared cache unreadable to other users
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def staging_dir(parent: Path, name: str) -> Iterator[Path]:
    """A temporary folder under ``parent`` (removed on exit unless :func:`publish_dir` moved it away)."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would survive the rename into the shared store
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish_dir(staged: Path, final: Path) -> bool:
    """Rename a complete staged folder to ``final``; ``False`` when another process published it first."""
    try:
        os.replace(staged, final)
    except OSError:
        if final.exists():  # a concurrent writer won: its folder is complete, ours is discarded
            return False
        raise
    return True


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes do not compute the same artifact at once.

    Best effort: where ``fcntl`` does not exist (Windows) both compute, and the atomic rename keeps one result.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
