"""The ``envi`` source format: ENVI cubes (``.hdr`` + binary data, BSQ / BIL / BIP) with a label raster each.

ENVI is what most imaging-spectrometer software exports, and its header carries the band centres, so a dataset
read this way needs no wavelength table. Labels come as an ENVI classification (or any single-band ENVI file), a
single-channel PNG / TIFF, or a ``.npy`` array. Used by user datasets defined in a config file
(``hsbench.data.scenes.user_config``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from spectral.io import envi

from hsbench.data.card import DatasetCard
from hsbench.data.dataset import Sample, check_finite
from hsbench.data.labels import read_label_image, remap_labels
from hsbench.data.source import RawSample, SourceFormat
from hsbench.errors import DataError

__all__ = [
    "EnviSample", "EnviFormat", "EnviHeader", "open_envi_cube", "read_envi_header", "read_envi_cube",
    "read_label_raster",
]

_NM_PER_UNIT = {
    "nanometers": 1.0, "nanometer": 1.0, "nm": 1.0,
    "micrometers": 1000.0, "micrometer": 1000.0, "microns": 1000.0, "micron": 1000.0, "um": 1000.0, "µm": 1000.0,
    "millimeters": 1e6, "millimeter": 1e6, "mm": 1e6,
}
_UNSET_UNITS = {"", "unknown"}
# Without units, band centres below this are taken as micrometres: imaging spectrometers start above 300 nm and
# stop below 30 um, so the two readings cannot be confused.
_MICROMETRE_LIMIT = 30.0
_IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".bmp", ".gif"}
_WAVELENGTH_TOLERANCE_NM = 1e-3


@dataclass(frozen=True)
class EnviHeader:
    """What the harness needs from an ENVI header.

    Attributes:
        path: the ``.hdr`` file.
        shape: ``(bands, lines, samples)``, i.e. ``(C, H, W)``.
        wavelengths_nm: band centres in nm (converted from the header's units), or None when the header has none.
        fwhm_nm: band widths in nm, or None.
    """

    path: Path
    shape: tuple[int, int, int]
    wavelengths_nm: tuple[float, ...] | None
    fwhm_nm: tuple[float, ...] | None


def _parse_header(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: ENVI header not found")
    try:
        return envi.read_envi_header(str(path))
    except Exception as exc:  # spectral raises its own header errors, plus OSError / UnicodeDecodeError
        raise DataError(f"{path}: not a readable ENVI header ({type(exc).__name__}: {exc})") from exc


def _header_int(header: Mapping[str, Any], key: str, path: Path) -> int:
    try:
        return int(header[key])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: ENVI header lacks a valid {key!r} field") from None


def _nm_factor(units: str, values: Sequence[float], path: Path) -> float:
    """Multiplier from the header's ``wavelength units`` to nm (inferred from the magnitudes when unset)."""
    key = units.strip().lower()
    if key in _NM_PER_UNIT:
        return _NM_PER_UNIT[key]
    if key in _UNSET_UNITS:
        return 1000.0 if max(values) < _MICROMETRE_LIMIT else 1.0
    raise DataError(f"{path}: wavelength units {units!r} are not a length (expected nanometers or micrometers)")


def _band_values(header: Mapping[str, Any], key: str, bands: int, path: Path) -> tuple[float, ...] | None:
    if key not in header:
        return None
    try:
        values = [float(v) for v in header[key]]
    except (TypeError, ValueError):
        raise DataError(f"{path}: ENVI field {key!r} holds non-numeric values") from None
    if len(values) != bands:
        raise DataError(f"{path}: ENVI field {key!r} has {len(values)} values for {bands} bands")
    factor = _nm_factor(str(header.get("wavelength units", "")), values, path)
    return tuple(round(v * factor, 6) for v in values)


def read_envi_header(path: Path) -> EnviHeader:
    """Parse an ENVI header only (no data is read): size and band centres in nm."""
    path = Path(path)
    header = _parse_header(path)
    shape = tuple(_header_int(header, k, path) for k in ("bands", "lines", "samples"))
    bands = shape[0]
    return EnviHeader(
        path, shape, _band_values(header, "wavelength", bands, path), _band_values(header, "fwhm", bands, path)
    )


def _open_image(path: Path) -> Any:
    """``spectral`` image object, with a DataError when the data file is missing or not the size the header says."""
    header = read_envi_header(path)
    try:
        image = envi.open(str(path))
    except Exception as exc:  # EnviDataFileNotFoundError, unsupported data types, malformed fields
        raise DataError(f"{path}: cannot open the ENVI image ({type(exc).__name__}: {exc})") from exc
    _check_data_size(image, header)
    return image


def _check_data_size(image: Any, header: EnviHeader) -> None:
    """Exact size check: a data file longer than its header says is as wrong as a shorter one.

    A header that understates bands, lines or samples would otherwise be read as a valid, smaller image (a BSQ
    file silently loses bands, BIL / BIP files are scrambled), so both directions are one error.
    """
    bands, lines, samples = header.shape
    itemsize = np.dtype(image.dtype).itemsize
    offset = int(getattr(image, "offset", 0))
    expected = offset + bands * lines * samples * itemsize
    size = os.path.getsize(image.filename)
    if size == expected:
        return
    hint = "truncated?" if size < expected else "does the header give too few bands, lines or samples?"
    raise DataError(
        f"{image.filename}: data file has {size} bytes, but the header {header.path.name} implies {expected} "
        f"({lines} lines x {samples} samples x {bands} bands x {itemsize} bytes + {offset} header offset); {hint}"
    )


def read_envi_cube(path: Path) -> np.ndarray:
    """The cube as ``(C, H, W)`` float32 whatever the interleave, divided by any ``reflectance scale factor``."""
    image = _open_image(Path(path))
    try:
        bsq = image.open_memmap(interleave="bsq")
        cube = np.array(bsq, dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise DataError(f"{image.filename}: cannot read the ENVI data ({exc})") from exc
    scale = float(getattr(image, "scale_factor", 1.0) or 1.0)
    if scale != 1.0:
        cube /= np.float32(scale)
    return cube


def open_envi_cube(path: Path) -> tuple[np.ndarray, float]:
    """The cube as a lazy ``(C, H, W)`` memory-mapped view in its stored data type (a BIL / BIP file is transposed
    without copying), and the header's ``reflectance scale factor`` (1.0 when absent): divide what you read by it.

    For images too large to read at once (``hsbench predict`` reads them window by window).
    """
    image = _open_image(Path(path))
    try:
        cube = image.open_memmap(interleave="bsq")
    except (OSError, ValueError) as exc:
        raise DataError(f"{image.filename}: cannot read the ENVI data ({exc})") from exc
    return cube, float(getattr(image, "scale_factor", 1.0) or 1.0)


def read_label_raster(path: Path) -> np.ndarray:
    """Raw label ids ``(H, W)`` from an ENVI file (single band), a single-channel image or a ``.npy`` array."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".hdr":
        image = _open_image(path)
        if image.nbands != 1:
            raise DataError(f"{path}: a label raster needs one band, this ENVI file has {image.nbands}")
        return np.array(image.open_memmap(interleave="bsq")[0])
    if not path.is_file():
        raise DataError(f"{path}: label file not found")
    if suffix in _IMAGE_SUFFIXES:
        return read_label_image(path)
    if suffix == ".npy":
        try:
            labels = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path}: not a readable .npy array ({exc})") from exc
        if labels.ndim != 2:
            raise DataError(f"{path}: label array has shape {labels.shape}, expected (height, width)")
        return labels
    raise DataError(f"{path}: unsupported label file type {suffix!r} (use an ENVI .hdr, .png, .tif or .npy)")


@dataclass(frozen=True)
class EnviSample:
    """One sample of an ENVI dataset: its id, cube header and label raster (relative to the raw folder or absolute)."""

    id: str
    cube: Path
    labels: Path


class EnviFormat(SourceFormat):
    """Samples listed explicitly, each an ENVI cube plus a label raster.

    Args:
        samples: the samples, paths relative to the raw folder ``hsbench prepare --raw`` names (or absolute).
        check_wavelengths: compare each header's band centres with the card's (off when the card's wavelengths
            were given by hand because the headers have none or wrong ones).
    """

    name = "envi"
    description = "ENVI cubes (.hdr + data, BSQ / BIL / BIP) with label rasters (ENVI, PNG / TIFF or .npy)"

    def __init__(self, samples: Sequence[EnviSample], *, check_wavelengths: bool = True) -> None:
        self.samples = tuple(samples)
        self.check_wavelengths = check_wavelengths

    def discover(self, raw_dir: Path, card: DatasetCard) -> list[RawSample]:
        """Every listed sample; a listed file that is missing is an error (the list is the user's own)."""
        items = [RawSample(s.id, (raw_dir / s.cube, raw_dir / s.labels)) for s in self.samples]
        missing = [str(p) for item in items for p in item.paths if not p.is_file()]
        if missing:
            raise DataError(f"{card.name}: files named in the dataset config are missing: {', '.join(missing)}")
        return items

    def read(self, item: RawSample, card: DatasetCard) -> Sample:
        cube_path, labels_path = item.paths
        self._check_header(read_envi_header(cube_path), card)
        cube = read_envi_cube(cube_path)
        check_finite(cube, str(cube_path))
        raw = read_label_raster(labels_path)
        if raw.shape != cube.shape[1:]:
            raise DataError(f"{labels_path}: labels are {raw.shape}, the cube {cube_path.name} is {cube.shape[1:]}")
        return Sample(item.sample_id, cube, remap_labels(raw, card, source=labels_path))

    def _check_header(self, header: EnviHeader, card: DatasetCard) -> None:
        if header.shape[0] != card.num_bands:
            raise DataError(f"{header.path}: {header.shape[0]} bands, the card {card.name!r} expects {card.num_bands}")
        if not self.check_wavelengths or header.wavelengths_nm is None:
            return
        if not np.allclose(header.wavelengths_nm, card.wavelengths_nm, rtol=0.0, atol=_WAVELENGTH_TOLERANCE_NM):
            raise DataError(
                f"{header.path}: band centres {header.wavelengths_nm[0]:.1f}..{header.wavelengths_nm[-1]:.1f} nm "
                f"differ from the card's ({card.wavelengths_nm[0]:.1f}..{card.wavelengths_nm[-1]:.1f} nm); every "
                "sample of a dataset must come from the same band set"
            )
