"""The fine wavelength grid and the smooth shapes every material spectrum is built from.

Spectra are written as sums and products of a few smooth primitives (logistic edges, Gaussian absorption
bands, power laws) rather than copied tables: the shapes carry the physics (a red edge is a logistic step, a
pigment or water absorption is a Gaussian dip), and their parameters are what varies between objects.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FINE_WAVELENGTHS_NM", "logistic", "gaussian_band", "normalised_position", "smooth_perturbation"]

FINE_WAVELENGTHS_NM: np.ndarray = np.arange(350.0, 1051.0, 1.0)
"""The grid every spectrum lives on: 350-1050 nm at 1 nm, wider than any sensor so band responses are whole."""
FINE_WAVELENGTHS_NM.flags.writeable = False

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def logistic(wl: np.ndarray, centre_nm: float, width_nm: float) -> np.ndarray:
    """A smooth step from 0 to 1 at ``centre_nm``; ``width_nm`` is the 27-73 % rise distance."""
    return 1.0 / (1.0 + np.exp(-(wl - centre_nm) / width_nm))


def gaussian_band(wl: np.ndarray, centre_nm: float, fwhm_nm: float) -> np.ndarray:
    """A unit-height Gaussian: the shape of an absorption band or of a filter's response."""
    sigma = fwhm_nm * _FWHM_TO_SIGMA
    return np.exp(-0.5 * ((wl - centre_nm) / sigma) ** 2)


def normalised_position(wl: np.ndarray) -> np.ndarray:
    """Wavelength mapped to -1 (400 nm) .. +1 (1000 nm), the argument of spectral tilts and perturbations."""
    return (wl - 700.0) / 300.0


def smooth_perturbation(wl: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """A random smooth multiplicative factor near 1 (quadratic in log space plus one broad bump).

    Models what makes two patches of one material differ (moisture, dirt, ageing, pigment load) without
    changing its characteristic features: a factor ``exp(small smooth curve)`` keeps edges where they are.
    """
    x = normalised_position(wl)
    a1, a2, bump = rng.normal(0.0, amount, size=3)
    centre = rng.uniform(400.0, 1000.0)
    return np.exp(a1 * x + a2 * (x * x - 1.0 / 3.0) + bump * gaussian_band(wl, centre, 150.0))
