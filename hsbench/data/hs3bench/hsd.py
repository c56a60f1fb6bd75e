"""The Hyperspectral City V2 ``.hsd`` cube codec: a PCA-compressed, little-endian binary.

Layout (``shared/hs3bench/FORMATS.md``): int32 height, width, bands, D (components), start wavelength; float32
wavelength step; int32 end wavelength; then float32 ``averages[bands]``, ``coeffs[D, bands]`` (row-major) and
``scores[height * width, D]`` (row-major). The cube is ``scores @ coeffs + averages`` reshaped to
``(height, width, bands)``.

A full-size HCV2 cube (1422 x 1889 x 128) is 1.4 GB as float32, so the reader decodes blocks of rows straight
into one preallocated band-major output: the scores never sit in memory whole, no transposed copy of the cube is
made, and with ``step=2`` only the rows and columns that survive the half-size downscale are read and multiplied
(a quarter of the work). Each block is the same float32 product and sum as the textbook formula, and the output
is bit-identical to decoding all at once (checked by the tests and ``benchmarks/bench_hsd_reader.py``).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from hsbench.errors import DataError

__all__ = ["HsdHeader", "read_hsd_header", "read_hsd", "write_hsd"]

_HEADER = np.dtype(
    [
        ("height", "<i4"), ("width", "<i4"), ("bands", "<i4"), ("components", "<i4"),
        ("start_nm", "<i4"), ("step_nm", "<f4"), ("end_nm", "<i4"),
    ]
)
_FLOAT = np.dtype("<f4")
# Output pixels decoded per matmul. Blocks this large let a multi-threaded BLAS amortise its start-up per call
# (16k-pixel blocks were about 3x slower with 2 OpenBLAS threads), while the scores buffer stays about 13 MB.
_BLOCK_PIXELS = 131072


@dataclass(frozen=True)
class HsdHeader:
    """The fixed 28-byte header of an ``.hsd`` file and the byte offsets it implies."""

    height: int
    width: int
    bands: int
    components: int
    start_nm: int
    step_nm: float
    end_nm: int

    @property
    def averages_offset(self) -> int:
        return _HEADER.itemsize

    @property
    def coeffs_offset(self) -> int:
        return self.averages_offset + _FLOAT.itemsize * self.bands

    @property
    def scores_offset(self) -> int:
        return self.coeffs_offset + _FLOAT.itemsize * self.components * self.bands

    @property
    def file_bytes(self) -> int:
        """The exact size of a file with this header."""
        return self.scores_offset + _FLOAT.itemsize * self.height * self.width * self.components


def read_hsd_header(path: Path) -> HsdHeader:
    """Read and check the header of ``path`` against the file size.

    Raises:
        DataError: missing file, non-positive sizes in the header, or a file size other than the header implies
            (truncated or padded); the message names the file and both byte counts.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    size = path.stat().st_size
    if size < _HEADER.itemsize:
        raise DataError(f"{path}: truncated .hsd file: {size} bytes, but the header alone needs {_HEADER.itemsize}")
    record = np.fromfile(path, dtype=_HEADER, count=1)[0]
    header = HsdHeader(**{name: record[name].item() for name in _HEADER.names})
    dims = {"height": header.height, "width": header.width, "bands": header.bands, "components": header.components}
    bad = {k: v for k, v in dims.items() if v <= 0}
    if bad:
        raise DataError(f"{path}: corrupt .hsd header: {', '.join(f'{k} = {v}' for k, v in bad.items())}")
    if size != header.file_bytes:
        kind = "truncated" if size < header.file_bytes else "oversized"
        raise DataError(
            f"{path}: {kind} .hsd file: the header ({header.height} x {header.width} px, {header.bands} bands, "
            f"{header.components} components) implies {header.file_bytes} bytes, the file has {size}"
        )
    return header


def _read_exact(f: BinaryIO, offset: int, out: np.ndarray, path: Path) -> None:
    f.seek(offset)
    if f.readinto(out) != out.nbytes:  # the size check passed, so only a file changing underneath us gets here
        raise DataError(f"{path}: .hsd file ended early while reading at byte {offset}")


def _decode_rows(f: BinaryIO, path: Path, header: HsdHeader, step: int, out: np.ndarray, cols: int) -> None:
    """Fill ``out`` (bands, rows * cols) from source rows/columns ``0, step, 2 step, ...``, block by block.

    Each block is one ``coeffs.T @ scores.T`` product written straight into the band-major output (BLAS takes
    the output's row stride), so no transposing copy of the cube is ever made.
    """
    rows = out.shape[1] // cols
    averages = np.empty(header.bands, dtype=_FLOAT)
    coeffs = np.empty((header.components, header.bands), dtype=_FLOAT)
    _read_exact(f, header.averages_offset, averages, path)
    _read_exact(f, header.coeffs_offset, coeffs, path)
    row_bytes = header.width * header.components * _FLOAT.itemsize
    block = max(1, _BLOCK_PIXELS // cols)
    scores = np.empty((block, header.width, header.components), dtype=_FLOAT)
    for top in range(0, rows, block):
        n = min(block, rows - top)
        for k in range(n):
            _read_exact(f, header.scores_offset + (top + k) * step * row_bytes, scores[k], path)
        kept = scores[:n, : cols * step : step].reshape(-1, header.components)
        target = out[:, top * cols : (top + n) * cols]
        np.matmul(coeffs.T, kept.T, out=target)
        target += averages[:, None]


def read_hsd(path: Path, *, step: int = 1, bands: int | None = None) -> np.ndarray:
    """Decode an ``.hsd`` file into a ``(bands, rows, cols)`` float32 cube.

    Args:
        path: the ``.hsd`` file.
        step: keep source rows and columns ``0, step, 2 step, ...`` (``height // step`` x ``width // step``);
            ``2`` is the HS3-Bench half-size nearest-neighbour downscale, ``1`` the full cube.
        bands: the band count the caller expects (the card's); a different header count is an error.

    Returns:
        A C-contiguous ``(bands, rows, cols)`` cube, equal bit for bit to ``(scores @ coeffs + averages)``
        reshaped to ``(rows, cols, bands)`` and transposed.

    Raises:
        DataError: missing, truncated or corrupt file, or a band count other than ``bands``.
    """
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    header = read_hsd_header(path)
    if bands is not None and header.bands != bands:
        raise DataError(f"{path}: .hsd header says {header.bands} bands, the dataset card expects {bands}")
    rows, cols = header.height // step, header.width // step
    if rows == 0 or cols == 0:
        raise DataError(f"{path}: a {header.height} x {header.width} px cube is too small to keep every {step}th pixel")
    out = np.empty((header.bands, rows * cols), dtype=np.float32)
    with path.open("rb") as f:
        _decode_rows(f, path, header, step, out, cols)
    return out.reshape(header.bands, rows, cols)


def write_hsd(
    path: Path,
    scores: np.ndarray,
    coeffs: np.ndarray,
    averages: np.ndarray,
    *,
    start_nm: int = 449,
    step_nm: float = 4.0,
    end_nm: int | None = None,
) -> HsdHeader:
    """Write an ``.hsd`` file (for tests and benchmarks; HCV2 ships its own).

    Args:
        path: output file.
        scores: ``(height, width, D)`` PCA scores.
        coeffs: ``(D, bands)`` PCA components.
        averages: ``(bands,)`` band means.
        start_nm: first band centre (header field, int32).
        step_nm: band spacing (header field, float32).
        end_nm: last band centre; default ``start_nm + step_nm * (bands - 1)``.

    Returns:
        The header written.
    """
    height, width, components = scores.shape
    bands = averages.shape[0]
    if coeffs.shape != (components, bands):
        raise ValueError(f"coeffs have shape {coeffs.shape}, expected ({components}, {bands})")
    end = round(start_nm + step_nm * (bands - 1)) if end_nm is None else end_nm
    header = HsdHeader(height, width, bands, components, start_nm, step_nm, end)
    with path.open("wb") as f:
        np.array([astuple(header)], dtype=_HEADER).tofile(f)
        for array in (averages, coeffs, scores):
            np.ascontiguousarray(array, dtype=_FLOAT).tofile(f)
    return header
