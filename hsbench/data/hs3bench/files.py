"""Finding raw files below the folder a user passes to ``hsbench prepare --raw``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hsbench.errors import DataError

__all__ = ["index_files", "layout_dir"]


def index_files(raw_dir: Path, pattern: str, key: Callable[[Path], str], *, what: str) -> dict[str, Path]:
    """Files matching ``pattern`` anywhere below ``raw_dir``, by ``key`` (sorted by key).

    Distributions nest their files differently (one folder, ``train/`` and ``test/``, unpacked archives), so the
    whole tree is searched; a key found twice would make the sample ambiguous and is an error.

    Raises:
        DataError: ``raw_dir`` is not a folder, nothing matches, or two files share a key.
    """
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: not a folder; pass the folder holding the {what}")
    found: dict[str, Path] = {}
    for path in sorted(raw_dir.rglob(pattern)):
        name = key(path)
        if name in found:
            raise DataError(f"{raw_dir}: sample {name!r} is there twice ({found[name]} and {path}); keep one")
        found[name] = path
    if not found:
        raise DataError(f"{raw_dir}: no {what} ({pattern}) anywhere below this folder")
    return dict(sorted(found.items()))


def layout_dir(raw_dir: Path, nested: str, children: tuple[str, str], *, dataset: str) -> Path:
    """The folder holding both ``children``: ``raw_dir/nested`` or ``raw_dir`` itself.

    Raises:
        DataError: neither folder holds both children.
    """
    for base in (raw_dir / nested, raw_dir):
        if all((base / child).is_dir() for child in children):
            return base
    first, second = children
    raise DataError(
        f"{raw_dir}: no {dataset} layout here; expected {nested}/{first}/ and {nested}/{second}/ inside this folder, "
        f"or {first}/ and {second}/ directly in it"
    )
