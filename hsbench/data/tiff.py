"""Reading (Geo)TIFF rasters with ``tifffile``: multi-band cubes and single-band label rasters.

GeoTIFF distributions (WHU-OHS, HSI-Road) store bands either pixel-interleaved (``(H, W, C)``, GDAL's default)
or as separate planes (``(C, H, W)``). tifffile names the axes of what it returns, so the cube reader puts the
band axis first from that, never by guessing from the sizes. tifffile is pure Python, so it needs no GDAL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from hsbench.errors import DataError

__all__ = ["read_tiff_cube", "read_tiff_labels"]

# tifffile's axis letters for a band / channel axis: S (samples, pixel-interleaved or planar), C, Q, I (pages).
_BAND_AXES = "SCQI"


def _read(path: Path, what: str) -> tuple[np.ndarray, str]:
    """The first series of a TIFF file and its axis letters (``YX``, ``YXS``, ``SYX``, ...)."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return series.asarray(), series.axes
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read the {what} ({reason}); the file is truncated or not a TIFF") from None


def read_tiff_cube(path: Path, num_bands: int) -> np.ndarray:
    """A multi-band TIFF as ``(num_bands, H, W)`` in stored dtype and band order.

    Raises:
        DataError: missing, unreadable or not a 3-D raster with ``num_bands`` bands (naming the file).
    """
    data, axes = _read(path, "image")
    if data.ndim == 3 and len(axes) == 3:
        band_axis = next((i for i, a in enumerate(axes) if a in _BAND_AXES), None)
        if band_axis is not None and data.shape[band_axis] == num_bands:
            return np.moveaxis(data, band_axis, 0)
    raise DataError(
        f"{path}: image raster is {data.dtype} {data.shape} (axes {axes}), expected {num_bands} bands "
        "(bands x height x width or height x width x bands)"
    )


def read_tiff_labels(path: Path) -> np.ndarray:
    """A single-band TIFF of class ids as ``(H, W)``, as stored (no remap).

    Raises:
        DataError: missing, unreadable or not a single-band raster (naming the file).
    """
    data, axes = _read(path, "label raster")
    if data.ndim != 2:
        raise DataError(f"{path}: label raster is {data.dtype} {data.shape} (axes {axes}), expected height x width ids")
    return data
