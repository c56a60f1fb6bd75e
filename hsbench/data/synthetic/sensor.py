"""The sensor model: Gaussian spectral response per band, neighbour crosstalk, quantum efficiency and noise.

Band values are integrals of the fine-grid spectrum against each band's normalised response, so a flat
spectrum reads the same in every band and a feature narrower than a band is smeared as a real filter smears
it. Snapshot mosaic cameras (the IMEC sensors of HSI-Drive and HyKo2) also leak light between neighbouring
filter pixels; that is modelled as a fraction of every band's signal coming from the mean of all bands.
Noise is photon shot noise plus read noise in electrons, with the quantum efficiency of silicon making the
near-infrared end noisier, as in every silicon VNIR camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hsbench.data.synthetic.spectra import FINE_WAVELENGTHS_NM, gaussian_band

__all__ = ["Sensor", "NoiseProfile", "silicon_qe", "add_sensor_noise"]


def silicon_qe(wl: np.ndarray) -> np.ndarray:
    """A smooth stand-in for a silicon photodiode's quantum efficiency: peak near 600 nm, about 0.35 at 950 nm."""
    return 0.05 + 0.8 * np.exp(-0.5 * ((wl - 600.0) / 250.0) ** 2)


@dataclass(frozen=True)
class Sensor:
    """Band centres and widths of a camera, in cube order.

    Attributes:
        name: for messages.
        centres_nm: band centres in cube order (need not be sorted).
        fwhm_nm: full width at half maximum of each band's Gaussian response.
        crosstalk: fraction of each band's signal leaking in from the other bands (0 for a grating imager).
    """

    name: str
    centres_nm: tuple[float, ...]
    fwhm_nm: tuple[float, ...]
    crosstalk: float = 0.0

    def __post_init__(self) -> None:
        if len(self.centres_nm) != len(self.fwhm_nm):
            raise ValueError(f"{self.name}: {len(self.centres_nm)} centres but {len(self.fwhm_nm)} widths")
        lo, hi = FINE_WAVELENGTHS_NM[0], FINE_WAVELENGTHS_NM[-1]
        if any(c - 2 * w < lo or c + 2 * w > hi for c, w in zip(self.centres_nm, self.fwhm_nm)):
            raise ValueError(f"{self.name}: a band response reaches beyond the {lo:.0f}-{hi:.0f} nm grid")

    @property
    def num_bands(self) -> int:
        return len(self.centres_nm)

    @cached_property
    def response(self) -> np.ndarray:
        """``(C, F)`` response matrix on the fine grid; every row sums to 1."""
        rows = np.stack([gaussian_band(FINE_WAVELENGTHS_NM, c, w) for c, w in zip(self.centres_nm, self.fwhm_nm)])
        rows /= rows.sum(axis=1, keepdims=True)
        rows = (1.0 - self.crosstalk) * rows + self.crosstalk * rows.mean(axis=0, keepdims=True)
        rows.flags.writeable = False
        return rows

    @cached_property
    def quantum_efficiency(self) -> np.ndarray:
        """``(C,)`` effective quantum efficiency of each band."""
        return self.sample(silicon_qe(FINE_WAVELENGTHS_NM))

    def sample(self, spectra: np.ndarray) -> np.ndarray:
        """Band values of fine-grid spectra ``(..., F)`` -> ``(..., C)``."""
        return spectra @ self.response.T


@dataclass(frozen=True)
class NoiseProfile:
    """Noise and optics of one camera.

    Attributes:
        electrons_per_unit: range of photo-electrons that a unit signal at quantum efficiency 1 produces (one
            value is drawn per image: exposure and aperture vary).
        read_noise_e: read noise in electrons (standard deviation).
        blur_px: standard deviation of the Gaussian point spread function in pixels (mixes boundary pixels).
        saturation: largest value the camera reports; brighter pixels clip (sky, white paint in full sun).
    """

    electrons_per_unit: tuple[float, float]
    read_noise_e: float
    blur_px: float
    saturation: float = 1.6


def add_sensor_noise(
    cube: np.ndarray, quantum_efficiency: np.ndarray, profile: NoiseProfile, rng: np.random.Generator
) -> np.ndarray:
    """Shot and read noise on a ``(..., C)`` signal, then clipping to the camera's range.

    The Gaussian approximation of Poisson noise is used (signals are hundreds of electrons or more), which is
    far cheaper than drawing Poisson numbers per pixel.
    """
    gain = rng.uniform(*profile.electrons_per_unit) * quantum_efficiency
    electrons = np.clip(cube, 0.0, None) * gain
    sigma = np.sqrt(electrons + profile.read_noise_e**2) / gain
    noisy = cube + sigma * rng.standard_normal(cube.shape)
    return np.clip(noisy, 0.0, profile.saturation)
