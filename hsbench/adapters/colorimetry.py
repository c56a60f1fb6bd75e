"""Colorimetry for true-colour renderings of hyperspectral cubes: CIE 1931 2-degree observer, D65, sRGB.

Sources (facts, not code):

* Colour matching functions: the multi-lobe piecewise-Gaussian fit of Wyman, Sloan and Shirley, "Simple Analytic
  Approximations to the CIE XYZ Color Matching Functions", JCGT 2(2), 2013 (their equation 2, 1931 2-degree
  observer). It stays within a few percent of the tabulated CIE 1931 functions over 380-780 nm, far below what a
  10-25 band sensor resolves, and needs nine lines instead of a 471-row table.
* Illuminant D65: the CIE relative spectral power distribution at 10 nm steps, 380-780 nm (ISO 11664-2 / CIE
  S 014-2), linearly interpolated in between.
* sRGB: the XYZ -> linear sRGB matrix and the transfer function of IEC 61966-2-1.

A rendering treats each band as the reflectance of its nearest-wavelength neighbourhood (nearest-neighbour cells
on the wavelength axis, the outermost cells extended to the ends of the visible range), integrates CMF x D65 over
the cells, and balances the three linear-sRGB rows so that a perfect white (flat reflectance 1) maps to exactly
(1, 1, 1). That balance absorbs the few-per-mille error of the analytic fit, so any flat spectrum renders exactly
neutral grey.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "VISIBLE_RANGE_NM",
    "cie_cmf",
    "d65_spd",
    "XYZ_TO_LINEAR_SRGB",
    "srgb_encode",
    "linear_srgb_weights",
    "VisibleCoverage",
    "visible_coverage",
]

VISIBLE_RANGE_NM = (380.0, 780.0)
"""Integration range of the renderings (where D65 is tabulated and the CMFs are non-negligible)."""
_GRID_NM = np.arange(VISIBLE_RANGE_NM[0], VISIBLE_RANGE_NM[1] + 0.5, 1.0)

# Wyman, Sloan & Shirley (2013), eq. 2: each lobe is (amplitude, centre nm, sigma below centre, sigma above centre).
_CMF_LOBES: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "x": ((1.056, 599.8, 37.9, 31.0), (0.362, 442.0, 16.0, 26.7), (-0.065, 501.1, 20.4, 26.2)),
    "y": ((0.821, 568.8, 46.9, 40.5), (0.286, 530.9, 16.3, 31.1)),
    "z": ((1.217, 437.0, 11.8, 36.0), (0.681, 459.0, 26.0, 13.8)),
}

# CIE standard illuminant D65, relative spectral power at 380, 390, ..., 780 nm (560 nm = 100).
_D65_10NM = np.array([
    49.9755, 54.6482, 82.7549, 91.4860, 93.4318, 86.6823, 104.865, 117.008, 117.812, 114.861, 115.923,
    108.811, 109.354, 107.802, 104.790, 107.689, 104.405, 104.046, 100.000, 96.3342, 95.7880, 88.6856,
    90.0062, 89.5991, 87.6987, 83.2886, 83.6992, 80.0268, 80.2146, 82.2778, 78.2842, 69.7213, 71.6091,
    74.3490, 61.6040, 69.8856, 75.0870, 63.5927, 46.4182, 66.8054, 63.3828,
])
_D65_WAVELENGTHS_NM = np.arange(380.0, 781.0, 10.0)

XYZ_TO_LINEAR_SRGB = np.array([
    [3.2406, -1.5372, -0.4986],
    [-0.9689, 1.8758, 0.0415],
    [0.0557, -0.2040, 1.0570],
])
"""IEC 61966-2-1 matrix from CIE XYZ (D65 white) to linear sRGB."""


def _piecewise_gaussian(wavelengths_nm: np.ndarray, centre: float, sigma_low: float, sigma_high: float) -> np.ndarray:
    sigma = np.where(wavelengths_nm < centre, sigma_low, sigma_high)
    return np.exp(-0.5 * ((wavelengths_nm - centre) / sigma) ** 2)


def cie_cmf(wavelengths_nm: np.ndarray) -> np.ndarray:
    """CIE 1931 2-degree colour matching functions ``(3, N)`` (x-bar, y-bar, z-bar) at ``wavelengths_nm``."""
    wl = np.asarray(wavelengths_nm, dtype=np.float64)
    return np.stack([
        sum(a * _piecewise_gaussian(wl, mu, s1, s2) for a, mu, s1, s2 in _CMF_LOBES[channel]) for channel in "xyz"
    ])


def d65_spd(wavelengths_nm: np.ndarray) -> np.ndarray:
    """D65 relative spectral power at ``wavelengths_nm`` (linear interpolation; 0 outside 380-780 nm)."""
    return np.interp(np.asarray(wavelengths_nm, dtype=np.float64), _D65_WAVELENGTHS_NM, _D65_10NM, left=0, right=0)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1) of linear values clipped to ``[0, 1]``."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _nearest_band(wavelengths_nm: np.ndarray) -> np.ndarray:
    """For every grid wavelength, the index (cube order) of the band with the nearest centre."""
    centres = np.asarray(wavelengths_nm, dtype=np.float64)
    return np.abs(_GRID_NM[:, None] - centres[None, :]).argmin(axis=1)


def linear_srgb_weights(wavelengths_nm: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Weights ``(3, C)`` so that ``weights @ spectrum`` is the linear sRGB colour of a reflectance spectrum.

    Bands may be in any order. Each grid wavelength of the visible range is attributed to the nearest band, so
    a band carries the CMF x D65 weight of its neighbourhood; bands outside the visible range get zero weight.
    Rows are scaled so that a flat reflectance of 1 maps to exactly ``(1, 1, 1)`` (D65 white).
    """
    stimulus = cie_cmf(_GRID_NM) * d65_spd(_GRID_NM)  # (3, G): what each wavelength contributes to X, Y, Z
    cells = np.zeros((len(_GRID_NM), len(wavelengths_nm)))
    cells[np.arange(len(_GRID_NM)), _nearest_band(np.asarray(wavelengths_nm))] = 1.0
    xyz = stimulus @ cells / stimulus[1].sum()  # (3, C), Y of the perfect white = 1
    rgb = XYZ_TO_LINEAR_SRGB @ xyz
    return rgb / rgb.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class VisibleCoverage:
    """How much of the visible stimulus a sensor's wavelength range sees.

    Attributes:
        low_nm: lower edge of the covered range (first band centre minus half a band).
        high_nm: upper edge (last band centre plus half a band).
        luminance: fraction of the D65-weighted y-bar integral (luminance) inside the range.
        xyz: the same fraction for x-bar, y-bar and z-bar.
    """

    low_nm: float
    high_nm: float
    luminance: float
    xyz: tuple[float, float, float]


def visible_coverage(wavelengths_nm: tuple[float, ...], fwhm_nm: tuple[float, ...] | None = None) -> VisibleCoverage:
    """The part of the visible CIE stimulus (under D65) that lies inside the sensor's wavelength range.

    A band is taken to reach half its FWHM beyond its centre (half the median band spacing when the card gives
    no FWHM); a single band reaches 5 nm.
    """
    wl = np.sort(np.asarray(wavelengths_nm, dtype=np.float64))
    if fwhm_nm is not None:
        order = np.argsort(np.asarray(wavelengths_nm, dtype=np.float64), kind="stable")
        half_low, half_high = 0.5 * fwhm_nm[order[0]], 0.5 * fwhm_nm[order[-1]]
    else:
        half_low = half_high = 0.5 * float(np.median(np.diff(wl))) if len(wl) > 1 else 5.0
    low, high = float(wl[0] - half_low), float(wl[-1] + half_high)
    stimulus = cie_cmf(_GRID_NM) * d65_spd(_GRID_NM)
    inside = (_GRID_NM >= low) & (_GRID_NM <= high)
    fractions = stimulus[:, inside].sum(axis=1) / stimulus.sum(axis=1)
    return VisibleCoverage(low, high, float(fractions[1]), tuple(float(f) for f in fractions))  # type: ignore[arg-type]
