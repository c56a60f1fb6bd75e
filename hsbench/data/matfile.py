"""Reading named numeric arrays from MATLAB files, v5 (scipy) or v7.3 (HDF5, h5py).

Datasets circulate as ``.mat`` files saved by many hands: the same cube appears as v5 and v7.3 (HSI-Drive ships
both, the scene datasets too), with keys in varying case. :func:`read_mat_arrays` hides those differences and
returns every array in MATLAB's own shape, so callers reason about one layout whichever version a distribution
used. It reads several variables with one open of the file, because the datasets that keep cube and labels in
one file (HyKo2) would otherwise parse it twice per sample. Every failure is a :class:`DataError` naming the
file, the variable and, for a missing one, the variables the file does hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from hsbench.errors import DataError

__all__ = ["Shape", "mat_variable_names", "read_mat_array", "read_mat_arrays", "shape_matches"]

Shape = Sequence[int | None]
"""An expected array shape; ``None`` accepts any size along that axis."""

# Top-level HDF5 entries MATLAB writes for its own bookkeeping, never user variables.
_MATLAB_INTERNAL = frozenset({"#refs#", "#subsystem#"})
_NUMERIC_KINDS = frozenset("biuf")


def shape_matches(shape: Sequence[int], expected: Shape) -> bool:
    """Whether ``shape`` equals ``expected`` where ``None`` in ``expected`` accepts any size."""
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _unreadable(path: Path, exc: BaseException) -> DataError:
    return DataError(
        f"{path}: not a readable MATLAB file (truncated or corrupt? {type(exc).__name__}: {exc}); "
        "download it again"
    )


def _is_hdf5(path: Path) -> bool:
    """Whether ``path`` is a v7.3 file (HDF5 behind MATLAB's 512-byte header block); checks that it exists."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return bool(h5py.is_hdf5(path))
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def _hdf5_variables(f: h5py.File) -> list[str]:
    return [k for k in f.keys() if k not in _MATLAB_INTERNAL]


def mat_variable_names(path: Path) -> list[str]:
    """Names of the variables stored in a ``.mat`` file (v5 or v7.3), without reading their data."""
    path = Path(path)
    if not _is_hdf5(path):
        return _v5_variable_names(path)
    try:
        with h5py.File(path, "r") as f:
            return _hdf5_variables(f)
    except Exception as exc:  # truncated HDF5 raises OSError, KeyError or RuntimeError depending on the damage
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


def _load_v5(path: Path, names: Sequence[str]) -> dict[str, object]:
    try:
        return scipy.io.loadmat(str(path), variable_names=list(names))
    except Exception as exc:  # scipy raises OSError, IndexError, ValueError, MatReadError, zlib.error, ...
        raise _unreadable(path, exc) from exc


def _v5_variable_names(path: Path) -> list[str]:
    try:
        return [name for name, _, _ in scipy.io.whosmat(str(path))]
    except Exception as exc:  # the same parser errors as loadmat
        raise _unreadable(path, exc) from exc


def _read_v5(path: Path, keys: Sequence[str]) -> dict[str, tuple[str, np.ndarray]]:
    """``key -> (stored name, array)``, reading the exact names first.

    One ``loadmat`` reads every exact name and, unlike ``whosmat``, fails on a variable cut short, so a truncated
    file reads as truncated rather than as one lacking its later variables. The variable list is consulted only
    for names stored in another case.
    """
    data = _load_v5(path, keys)
    absent = [key for key in keys if key not in data]
    resolved: dict[str, str] = {}
    if absent:
        held = _v5_variable_names(path)
        resolved = {key: _resolve_key(path, key, held) for key in absent}
        data = {**data, **_load_v5(path, sorted(set(resolved.values())))}
    names = {key: resolved.get(key, key) for key in keys}
    lost = [name for name in names.values() if name not in data]
    if lost:  # listed by whosmat but not loadable: the file is damaged after its directory entry
        raise _unreadable(path, KeyError(lost[0]))
    return {key: (name, _check_numeric(path, name, data[name])) for key, name in names.items()}


def _orient_hdf5(stored: np.ndarray, written_by_matlab: bool, expected: Shape | None) -> np.ndarray:
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


def _read_dataset(path: Path, f: h5py.File, name: str, expected: Shape | None) -> tuple[str, np.ndarray]:
    node = f[name]
    if not isinstance(node, h5py.Dataset):
        raise DataError(f"{path}: variable {name!r} is a MATLAB struct or cell, not a numeric array")
    written_by_matlab = node.attrs.get("MATLAB_class") is not None
    array = _check_numeric(path, name, node[()])
    return name, _orient_hdf5(array, written_by_matlab, expected)


def _read_v73(path: Path, keys: Sequence[str], expected: Mapping[str, Shape]) -> dict[str, tuple[str, np.ndarray]]:
    """``key -> (stored name, array)`` in MATLAB's axis order, all from one open HDF5 file."""
    try:
        with h5py.File(path, "r") as f:
            held = _hdf5_variables(f)
            names = {key: _resolve_key(path, key, held) for key in keys}
            return {key: _read_dataset(path, f, name, expected.get(key)) for key, name in names.items()}
    except DataError:
        raise
    except Exception as exc:  # truncated HDF5 raises OSError, KeyError or RuntimeError depending on the damage
        raise _unreadable(path, exc) from exc


def _check_shape(path: Path, name: str, array: np.ndarray, expected: Shape | None) -> np.ndarray:
    if expected is not None and not shape_matches(array.shape, expected):
        shown = tuple("any" if e is None else e for e in expected)
        raise DataError(
            f"{path}: variable {name!r} has shape {array.shape}, expected {shown}; "
            "is this the right file (for example the corrected cube, with the water bands removed)?"
        )
    return array


def read_mat_arrays(
    path: Path, keys: Sequence[str], *, expected_shapes: Mapping[str, Shape] | None = None
) -> dict[str, np.ndarray]:
    """Read the variables ``keys`` (case-insensitive when unambiguous) with one open of the file.

    Args:
        path: a MATLAB v4/v5/v7 file (read by scipy) or v7.3 file (HDF5, read by h5py).
        keys: the variable names.
        expected_shapes: the shape the caller needs per key (``None`` entries accept any size); checked here so
            the error names the file, the variable and both shapes. Keys not listed are not checked.

    Returns:
        ``key -> array`` in MATLAB's shape, keyed by the names asked for (not the stored spelling).

    Raises:
        DataError: missing file, truncated or corrupt file, missing or non-numeric variable, wrong shape.
    """
    path = Path(path)
    expected = dict(expected_shapes or {})
    found = _read_v73(path, keys, expected) if _is_hdf5(path) else _read_v5(path, keys)
    return {key: _check_shape(path, name, array, expected.get(key)) for key, (name, array) in found.items()}


def read_mat_array(path: Path, key: str, *, expected_shape: Shape | None = None) -> np.ndarray:
    """Read one variable; see :func:`read_mat_arrays`.

    Raises:
        DataError: missing file, truncated or corrupt file, missing or non-numeric variable, wrong shape.
    """
    shapes = {} if expected_shape is None else {key: expected_shape}
    return read_mat_arrays(path, [key], expected_shapes=shapes)[key]
