"""Resampling cubes from a sensor's band centres to one fixed, sorted wavelength grid.

Cross-sensor models need "input channel g" to mean the same wavelength on every sensor. A fixed grid does that
without learning anything: each grid point is a normalised triangular-kernel average of the sensor's bands. The
kernel's half-width is the larger of the grid step and the gap between the two sensor bands around the point, so

* a dense sensor (the 4.7 nm source spectrometer on a 19 nm grid) is averaged over the grid step (anti-aliasing:
  plain interpolation would read one band in four and keep its noise);
* a sparse sensor (a 6-band camera) reduces to exact linear interpolation between its two neighbouring bands.

Grid points outside the sensor's range are marked invalid (all-zero weights) rather than extrapolated: a model
can then treat them as missing, the way it treats masked bands during pretraining. Bands may come in any order
(cube order is not sorted for HSI-Drive-like sensors); the grid is always ascending.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hsbench.data.transforms import PixelTransform
from hsbench.errors import ConfigError, DataError

__all__ = ["SpectralGrid", "resampling_matrix", "resample_cube", "fit_grid_standardizer"]


@dataclass(frozen=True)
class SpectralGrid:
    """An evenly spaced, ascending wavelength grid.

    Attributes:
        start_nm: first grid wavelength.
        stop_nm: last grid wavelength (inclusive).
        num_bands: number of grid points.
    """

    start_nm: float = 400.0
    stop_nm: float = 1000.0
    num_bands: int = 32

    def __post_init__(self) -> None:
        if self.num_bands < 2 or not self.stop_nm > self.start_nm:
            raise ConfigError(f"a spectral grid needs >= 2 bands and stop > start, got {self}")

    @property
    def wavelengths_nm(self) -> np.ndarray:
        return np.linspace(self.start_nm, self.stop_nm, self.num_bands)

    @property
    def step_nm(self) -> float:
        return (self.stop_nm - self.start_nm) / (self.num_bands - 1)


def resampling_matrix(
    wavelengths_nm: tuple[float, ...] | np.ndarray, grid: SpectralGrid
) -> tuple[np.ndarray, np.ndarray]:
    """Weights mapping a sensor's bands (any order) onto the grid.

    Args:
        wavelengths_nm: band centres in cube order.
        grid: the target grid.

    Returns:
        ``weights`` of shape ``(grid.num_bands, len(wavelengths_nm))`` (rows sum to 1 on valid points, 0 elsewhere)
        and ``valid`` ``(grid.num_bands,)`` bool: whether the grid point lies within the sensor's range.
    """
    bands = np.asarray(wavelengths_nm, dtype=np.float64)
    if bands.ndim != 1 or len(bands) == 0:
        raise ConfigError("resampling needs at least one band wavelength")
    order = np.argsort(bands, kind="stable")
    ordered = bands[order]
    points = grid.wavelengths_nm
    # A small tolerance keeps grid points that coincide with the first or last band despite rounding.
    tolerance = 1e-6 * grid.step_nm
    valid = (points >= ordered[0] - tolerance) & (points <= ordered[-1] + tolerance)
    weights = np.zeros((len(points), len(bands)))
    for g in np.flatnonzero(valid):
        weights[g, order] = _triangle_weights(ordered, points[g], grid.step_nm)
    return weights, valid


def _triangle_weights(ordered: np.ndarray, point: float, step_nm: float) -> np.ndarray:
    """Normalised triangular-kernel weights of sorted band centres around one grid point."""
    if len(ordered) == 1:
        return np.ones(1)
    right = int(np.clip(np.searchsorted(ordered, point), 1, len(ordered) - 1))
    gap = ordered[right] - ordered[right - 1]
    half_width = max(step_nm, gap)
    weights = np.clip(1.0 - np.abs(ordered - point) / half_width, 0.0, None)
    if weights.sum() <= 0:  # duplicate band centres with a zero gap: fall back to the nearest band
        weights[np.argmin(np.abs(ordered - point))] = 1.0
    return weights / weights.sum()


def resample_cube(
    cube: np.ndarray, wavelengths_nm: tuple[float, ...] | np.ndarray, grid: SpectralGrid
) -> tuple[np.ndarray, np.ndarray]:
    """A ``(C, H, W)`` cube in cube order as a ``(G, H, W)`` float32 cube on the grid (zeros where invalid).

    Returns:
        The resampled cube and the ``(G,)`` validity mask of :func:`resampling_matrix`.
    """
    weights, valid = resampling_matrix(wavelengths_nm, grid)
    c, h, w = cube.shape
    if c != weights.shape[1]:
        raise ConfigError(f"cube has {c} bands but {weights.shape[1]} wavelengths were given")
    flat = np.asarray(cube, dtype=np.float32).reshape(c, -1)
    return (weights.astype(np.float32) @ flat).reshape(-1, h, w), valid


def fit_grid_standardizer(
    wavelengths_nm: tuple[float, ...] | np.ndarray, grid: SpectralGrid, pixels: np.ndarray
) -> tuple[PixelTransform, np.ndarray]:
    """Resampling to the grid and per-grid-band standardisation, folded into one affine :class:`PixelTransform`.

    ``(x - mean_x) @ weights.T / std_grid`` equals standardising the resampled pixels, because resampling is
    linear; invalid grid bands come out as exact zeros. Fit on the pixels the caller is allowed to use (a
    domain's own training pixels: per-domain statistics absorb the sensors' different radiometric scales).

    Args:
        wavelengths_nm: band centres in cube order.
        grid: the target grid.
        pixels: ``(N, C)`` pixel spectra in cube order.

    Returns:
        The transform (``apply(cube)`` gives ``(G, H, W)``) and the ``(G,)`` validity mask.
    """
    if pixels.ndim != 2 or len(pixels) == 0:
        raise DataError("cannot fit the grid standardisation: no pixels")
    weights, valid = resampling_matrix(wavelengths_nm, grid)
    pixels = pixels.astype(np.float64)
    mean = pixels.mean(axis=0)
    std = ((pixels - mean) @ weights.T).std(axis=0)
    scale = np.where(valid & (std > 1e-12), 1.0 / np.where(std > 1e-12, std, 1.0), 0.0)
    scale[valid & (std <= 1e-12)] = 1.0  # a constant band carries no information: keep it, do not divide by 0
    transform = PixelTransform("grid", out_channels=grid.num_bands, mean=mean, matrix=weights.T * scale)
    return transform, valid
