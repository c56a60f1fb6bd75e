"""Content hashes of the files hsbench writes and later trusts, checked when they are opened.

A zoo artifact, a feature cache or a prepared sample is trusted by every run that reads it, so a zeroed,
truncated or edited file would silently change published numbers. Each such file gets a content hash when it is
written; readers call :func:`verify`. A cache that fails is :func:`move_aside` (kept for inspection, rebuilt by
its owner, one warning line); a user's file that fails is an :class:`IntegrityError` naming the file and both
hashes.

The hash is SHA-256, chosen by measurement (``benchmarks/bench_integrity_overhead.py``): with the CPU's SHA
instructions it streams at about 2 GB/s, faster than BLAKE2b (1.4 GB/s); xxh3 (31 GB/s) would need a new
dependency and is not collision-resistant, and verification with SHA-256 already costs well under the 2 % budget
of a warm ``cross_domain`` run. It is also the hash that weight publishers print, so a user's expected hash
(``weights_sha256``) is compared directly. Hashes are remembered per process by (resolved path, size, mtime),
so opening the same file again costs one ``stat``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from pathlib import Path

from hsbench.errors import DataError

__all__ = ["HASH_NAME", "IntegrityError", "file_hash", "verify", "move_aside", "forget"]

log = logging.getLogger("hsbench")

HASH_NAME = "sha256"
"""The content hash of every trusted file (``hashlib`` name)."""
_CHUNK = 1 << 20
_MEMO: dict[tuple[str, int, int, int], str] = {}


class IntegrityError(DataError):
    """A file whose content is not what was recorded when it was written (or what the user said it is)."""

    def __init__(self, path: Path, expected: str, actual: str | None, *, reason: str = "",
                 source: str = "its recorded hash") -> None:
        self.path, self.expected, self.actual = Path(path), expected, actual
        found = reason or f"{HASH_NAME} {actual}"
        self.detail = f"content does not match {source} (expected {HASH_NAME} {expected}, found {found})"
        super().__init__(f"{path}: {self.detail}")


def _memo_key(path: Path) -> tuple[tuple[str, int, int, int], Path]:
    resolved = path.resolve()
    st = resolved.stat()
    return (str(resolved), st.st_size, st.st_mtime_ns, st.st_ino), resolved


def file_hash(path: Path) -> str:
    """The hex content hash of a file, streamed in 1 MiB chunks; remembered while size and mtime stay the same.

    Raises:
        OSError: the file does not exist or cannot be read.
    """
    key, resolved = _memo_key(Path(path))
    found = _MEMO.get(key)
    if found is not None:
        return found
    digest = hashlib.new(HASH_NAME)
    with open(resolved, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    _MEMO[key] = value = digest.hexdigest()
    return value


def verify(path: Path, expected: str, *, source: str = "its recorded hash") -> str:
    """The file's hash, after checking that it equals ``expected`` (``source`` says where ``expected`` came from).

    Raises:
        IntegrityError: the file is missing, unreadable or has another hash (the message names the file and both).
    """
    try:
        actual = file_hash(path)
    except OSError as exc:
        raise IntegrityError(path, expected, None, reason=f"unreadable: {exc.strerror or exc}",
                             source=source) from None
    if actual != expected.lower():
        raise IntegrityError(path, expected, actual, source=source)
    return actual


def move_aside(path: Path, why: str) -> Path | None:
    """Rename a bad cache entry to ``<name>.corrupt-<UTC time>`` (kept for inspection) with one warning line.

    Returns the new path, or ``None`` when the entry is already gone (another process moved it first).
    """
    path = Path(path)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    log.warning("%s failed its integrity check (%s); moved aside to %s and rebuilding it", path, why, target.name)
    return target


def forget() -> None:
    """Drop remembered hashes (tests; a process that rewrites files in place within one mtime tick)."""
    _MEMO.clear()
