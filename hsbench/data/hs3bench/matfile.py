"""Named arrays from MATLAB ``.mat`` files, version 5 (scipy) or 7.3 (HDF5, h5py).

MATLAB writes v7.3 files as HDF5 with column-major arrays: a MATLAB ``(25, H, W)`` array appears to h5py as
``(W, H, 25)``. Reversing all axes restores MATLAB's order, so callers see the same shape whichever version a
distribution used (HSI-Drive cubes exist in both). Callers still check the shape they expect.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

from hsbench.errors import DataError

__all__ = ["read_mat_variables", "is_mat_v73"]


def is_mat_v73(path: Path) -> bool:
    """Whether ``path`` is a MATLAB v7.3 file (an HDF5 file with a 512-byte MATLAB header block)."""
    return h5py.is_hdf5(path)


def _missing(path: Path, names: list[str], present: list[str]) -> DataError:
    lacking = [n for n in names if n not in present]
    return DataError(
        f"{path}: no variable {', '.join(repr(n) for n in lacking)} in this MATLAB file "
        f"(it holds {', '.join(repr(p) for p in present) or 'nothing'})"
    )


def _read_v5(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    try:
        content = scipy.io.loadmat(path, variable_names=names)
        if any(n not in content for n in names):
            raise _missing(path, names, [entry[0] for entry in scipy.io.whosmat(path)])
    except DataError:
        raise
    except Exception as exc:  # scipy raises many types for a damaged file; each means "unreadable"
        raise DataError(f"{path}: cannot read the MATLAB file ({type(exc).__name__}: {exc}); it is truncated or "
                        "corrupt") from None
    return {n: np.asarray(content[n]) for n in names}


def _read_v73(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    try:
        with h5py.File(path, "r") as f:
            present = [k for k in f if isinstance(f[k], h5py.Dataset)]
            if any(n not in present for n in names):
                raise _missing(path, names, present)
            return {n: np.asarray(f[n][()]).transpose() for n in names}
    except DataError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot read the MATLAB v7.3 (HDF5) file ({exc}); it is truncated or corrupt"
        ) from None


def read_mat_variables(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Read the variables ``names`` from a ``.mat`` file, in MATLAB's axis order.

    Raises:
        DataError: the file is missing, unreadable (truncated, corrupt) or lacks one of ``names``; the message
            names the file and, for a missing variable, the variables it does hold.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return _read_v73(path, names) if is_mat_v73(path) else _read_v5(path, names)
