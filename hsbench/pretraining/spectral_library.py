"""The earthlib spectral library as a pretraining source (optional extra ``hsbench[spectra]``).

earthlib (MIT, https://github.com/earth-chris/earthlib) ships 7,261 reflectance spectra (``LEVEL_2`` of 1.1.0: 4,248
bare, 2,000 PROSAIL vegetation, 888 built, 104 non-photosynthetic, 21 burned) on a 10 nm grid from 400 to 2450 nm,
as an ENVI spectral library (``data/spectra.sli``) with a land-cover hierarchy (``data/spectra.csv``,
``LEVEL_1..3``). The library leaves out the water-vapour absorption windows, so its grid has 180 wavelengths with
two gaps (1360-1450 nm and 1800-1950 nm); :mod:`hsbench.pretraining.sensor_sim` never integrates across them.

earthlib is imported only when a library is loaded, so ``import hsbench`` works without it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hsbench.errors import HsbenchError
from hsbench.integrity import file_hash
from hsbench.options import config_hash

__all__ = ["LIBRARY_SOURCES", "MissingExtraError", "SpectralLibrary", "load_earthlib"]

LIBRARY_SOURCES = ("earthlib",)
"""Pretraining sources that are spectral libraries rather than registered datasets."""


class MissingExtraError(HsbenchError):
    """An optional dependency of hsbench is not installed."""


@dataclass(frozen=True, eq=False)
class SpectralLibrary:
    """Reflectance spectra on one wavelength grid, with their land-cover hierarchy and provenance.

    Attributes:
        name: source name (``earthlib``).
        spectra: ``(N, B)`` float32 reflectance.
        wavelengths_nm: ``(B,)`` float64 band centres in nm, increasing (may have gaps).
        levels: hierarchy labels per spectrum: ``{"LEVEL_1": (N,) str array, ...}``.
        version: the package version the spectra came from.
        spectra_sha256: SHA-256 of the spectra file, so another library release gives another zoo artifact.
    """

    name: str
    spectra: np.ndarray
    wavelengths_nm: np.ndarray
    levels: dict[str, np.ndarray]
    version: str
    spectra_sha256: str

    @property
    def fingerprint(self) -> str:
        """What the zoo keys on (in place of a dataset's content fingerprint)."""
        return config_hash({"library": self.name, "version": self.version, "spectra_sha256": self.spectra_sha256})

    def provenance(self) -> dict[str, str]:
        """Facts recorded in a zoo artifact's metadata."""
        return {"library": self.name, "library_version": self.version, "spectra_sha256": self.spectra_sha256}


def _import_earthlib_reader():
    try:
        config = importlib.import_module("earthlib.config")
        read = importlib.import_module("earthlib.read")
    except ImportError as exc:
        raise MissingExtraError(
            f'the earthlib spectral library is not installed ({exc}): pip install "hsbench[spectra]"'
        ) from None
    return config, read


@lru_cache(maxsize=2)
def load_earthlib() -> SpectralLibrary:
    """The earthlib library, read with its own ENVI reader; cached per process.

    Raises:
        MissingExtraError: earthlib is not installed.
    """
    config, read = _import_earthlib_reader()
    path = Path(config.full_endmember_path)
    spectra, names, sensor = read.envi_library(str(path))
    metadata = config.full_metadata
    # The CSV's rows follow the library's order (one name differs by a typo upstream), so align by position.
    if len(metadata) != len(spectra):
        raise HsbenchError(f"earthlib metadata has {len(metadata)} rows for {len(spectra)} spectra in {path}")
    wavelengths = np.asarray(sensor.band_centers, dtype=np.float64)
    if str(getattr(sensor, "wavelength_unit", "micrometers")).lower().startswith("micro"):
        wavelengths = wavelengths * 1000.0
    return SpectralLibrary(
        name="earthlib",
        spectra=np.ascontiguousarray(spectra, dtype=np.float32),
        wavelengths_nm=np.round(wavelengths, 3),
        levels={level: metadata[level].astype(str).to_numpy() for level in ("LEVEL_1", "LEVEL_2", "LEVEL_3")},
        version=importlib.metadata.version("earthlib"),
        spectra_sha256=file_hash(path),
    )
