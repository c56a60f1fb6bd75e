"""Reading one named numeric array from a MATLAB file, v5 (scipy) or v7.3 (HDF5, h5py).

Scene datasets circulate as ``.mat`` files saved by many hands: the same cube appears as v5 and v7.3, with keys
in varying case. :func:`read_mat_array` hides those differences and returns the array in MATLAB's own shape, so
callers reason about one layout. Every failure is a :class:`DataError` naming the file and the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from hsbench.errors import DataError

__all__ = ["mat_variable_names", "read_mat_array", "shape_matches"]

# Top-level HDF5 entries MATLAB writes for its own bookkeeping, never user variables.
_MATLAB_INTERNAL = frozenset({"#refs#", "#subsystem#"})
_NUMERIC_KINDS = frozenset("biuf")


def shape_matches(shape: Sequence[int], expected: Sequence[int | None]) -> bool:
    """Whether ``shape`` equals ``expected`` where ``None`` in ``expected`` accepts any size."""
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _unreadable(path: Path, exc: BaseException) -> DataError:
    return DataError(
        f"{path}: not a readable MATLAB file (truncated or corrupt? {type(exc).__name__}: {exc}); "
        "download it again"
    )


def _is_hdf5(path: Path) -> bool:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return bool(h5py.is_hdf5(path))
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def mat_variable_names(path: Path) -> list[str]:
    """Names of the variables stored in a ``.mat`` file (v5 or v7.3), without reading their data."""
    path = Path(path)
    try:
        if _is_hdf5(path):
            with h5py.File(path, "r") as f:
                return [k for k in f.keys() if k not in _MATLAB_INTERNAL]
        return [name for name, _, _ in scipy.io.whosmat(str(path))]
    except DataError:
        raise
    except Exception as exc:  # a corrupt file can make either parser fail in its own way
        raise _unreadable(path, exc) from exc


def _resolve_key(path: Path, key: str, names: Sequence[str]) -> str:
    """The stored variable name for ``key``: exact, else the one case-insensitive match."""
    if key in names:
        return key
    matches = [n for n in names if n.lower() == key.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DataError(f"{path}: variable {key!r} is ambiguous: the file holds {', '.join(matches)}")
    held = ", ".join(repr(n) for n in names) or "no variables"
    raise DataError(f"{path}: no variable {key!r} (case-insensitive); the file holds {held}")


def _check_numeric(path: Path, name: str, array: object) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.dtype.kind not in _NUMERIC_KINDS:
        kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise DataError(f"{path}: variable {name!r} is not a numeric array (found {kind})")
    return array


def _read_v5(path: Path, key: str) -> tuple[str, np.ndarray]:
    try:
        name = _resolve_key(path, key, [n for n, _, _ in scipy.io.whosmat(str(path))])
        data = scipy.io.loadmat(str(path), variable_names=[name])
    except DataError:
        raise
    except Exception as exc:  # scipy raises OSError, IndexError, ValueError, MatReadError, zlib.error, ...
        raise _unreadable(path, exc) from exc
    if name not in data:
        raise _unreadable(path, KeyError(name))
    return name, _check_numeric(path, name, data[name])


def _orient_hdf5(stored: np.ndarray, written_by_matlab: bool, expected: Sequence[int | None] | None) -> np.ndarray:
    """MATLAB writes column-major data, so HDF5 sees every axis reversed; undo that.

    A file without the ``MATLAB_class`` attribute was written by another tool (h5py, hdf5storage) that may or may
    not have reversed the axes: there the orientation that matches the expected shape wins.
    """
    reversed_ = stored.transpose()
    if written_by_matlab or expected is None:
        return reversed_
    for candidate in (stored, reversed_):
        if shape_matches(candidate.shape, expected):
            return candidate
    return reversed_


def _read_v73(path: Path, key: str, expected: Sequence[int | None] | None) -> tuple[str, np.ndarray]:
    try:
        with h5py.File(path, "r") as f:
            name = _resolve_key(path, key, [k for k in f.keys() if k not in _MATLAB_INTERNAL])
            node = f[name]
            if not isinstance(node, h5py.Dataset):
                raise DataError(f"{path}: variable {name!r} is a MATLAB struct or cell, not a numeric array")
            matlab_class = node.attrs.get("MATLAB_class")
            stored = node[()]
    except DataError:
        raise
    except Exception as exc:  # truncated HDF5 raises OSError, KeyError or RuntimeError depending on the damage
        raise _unreadable(path, exc) from exc
    array = _check_numeric(path, name, stored)
    return name, _orient_hdf5(array, matlab_class is not None, expected)


def read_mat_array(path: Path, key: str, *, expected_shape: Sequence[int | None] | None = None) -> np.ndarray:
    """Read variable ``key`` (case-insensitive when unambiguous) as a numeric array in MATLAB's shape.

    Args:
        path: a MATLAB v4/v5/v7 file (read by scipy) or v7.3 file (HDF5, read by h5py).
        key: the variable name.
        expected_shape: the shape the caller needs (``None`` entries accept any size); checked here so the error
            names the file, the variable and both shapes.

    Raises:
        DataError: missing file, truncated or corrupt file, missing or non-numeric variable, wrong shape.
    """
    path = Path(path)
    name, array = _read_v73(path, key, expected_shape) if _is_hdf5(path) else _read_v5(path, key)
    if expected_shape is not None and not shape_matches(array.shape, expected_shape):
        shown = tuple("any" if e is None else e for e in expected_shape)
        raise DataError(
            f"{path}: variable {name!r} has shape {array.shape}, expected {shown}; "
            "is this the right file (for example the corrected cube, with the water bands removed)?"
        )
    return array
