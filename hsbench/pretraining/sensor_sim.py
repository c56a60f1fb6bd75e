"""Virtual hyperspectral sensors: library spectra resampled through a random sensor per batch, then augmented.

Each batch draws one sensor (:func:`draw_sensor`): a band count, a contiguous wavelength range (with probability
``vnir_probability`` inside 400-1000 nm, the silicon range of the HS3-Bench cameras; else anywhere in the
library's range), evenly spaced band centres with a little jitter, Gaussian spectral response functions (SRFs)
of one drawn FWHM (each band varied a little), and optionally a shuffled band order. Pixels are linear mixtures
of 1..``max_endmembers`` library spectra (Dirichlet weights), resampled through the sensor
(:func:`srf_matrix`), lit with a random brightness and spectral slope, and given Gaussian noise at a drawn SNR.

Resampling integrates each Gaussian SRF against the *piecewise-linear interpolant* of the library spectrum
(closed form with the normal CDF), not against the Gaussian sampled at the 10 nm grid nodes. The difference
matters for FWHM below the grid spacing: node sampling collapses a 3 nm SRF onto the nearest node (the simulated
band values would step from node to node as the centre moves), while the interpolant makes such a band tend to
linear interpolation at its centre. For wide SRFs both agree up to the trapezoid error. SRF mass falling outside
the library's coverage (beyond 400 / 2450 nm or in its water-vapour gaps) is dropped and the weights are
renormalised, and band centres are only placed where the library has data.

All randomness comes from the ``numpy.random.Generator`` passed in, so a seed fixes every batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from hsbench.config_files import reject_unknown_keys
from hsbench.errors import ConfigError

__all__ = ["SensorSimConfig", "VirtualSensor", "covered", "srf_matrix", "draw_sensor", "mix_spectra", "simulate_batch"]

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
_MAX_TRIES = 1000


@dataclass(frozen=True)
class SensorSimConfig:
    """Ranges of the virtual sensors and augmentations (every range inclusive; ``source_options`` override them).

    Attributes:
        min_bands: fewest bands of a sensor (after dropping centres in library gaps).
        max_bands: most bands of a sensor.
        min_span_nm: narrowest wavelength range a sensor covers (first to last band centre).
        vnir_probability: chance that a sensor's range lies inside ``vnir_range_nm``.
        vnir_range_nm: the VNIR range (silicon detectors, like HSI-Drive's and HyKo's cameras).
        fwhm_nm: range of a sensor's SRF full width at half maximum, drawn log-uniformly.
        fwhm_band_spread: each band's FWHM is the sensor's times ``1 +- spread`` (then clipped to ``fwhm_nm``).
        centre_jitter: band centres move by up to this fraction of the band spacing (at most 0.5: order kept).
        shuffle_probability: chance that a sensor delivers its bands in shuffled order (as HSI-Drive's cubes).
        max_endmembers: a pixel mixes 1..this many library spectra (uniform count).
        dirichlet_alpha: concentration of the mixing weights.
        scale: range of the illumination's brightness factor (uniform).
        slope_per_um: range of the illumination's relative slope per 1000 nm about the sensor's mean wavelength.
        snr: range of the signal-to-noise ratio (mean band value / noise sigma), drawn log-uniformly per batch.
    """

    min_bands: int = 8
    max_bands: int = 200
    min_span_nm: float = 100.0
    vnir_probability: float = 0.5
    vnir_range_nm: tuple[float, float] = (400.0, 1000.0)
    fwhm_nm: tuple[float, float] = (3.0, 30.0)
    fwhm_band_spread: float = 0.1
    centre_jitter: float = 0.25
    shuffle_probability: float = 0.5
    max_endmembers: int = 3
    dirichlet_alpha: float = 1.0
    scale: tuple[float, float] = (0.5, 1.5)
    slope_per_um: tuple[float, float] = (-0.3, 0.3)
    snr: tuple[float, float] = (20.0, 500.0)

    def __post_init__(self) -> None:
        for name in ("vnir_range_nm", "fwhm_nm", "scale", "slope_per_um", "snr"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or value[0] > value[1]:
                raise ConfigError(f"sensor simulator {name} must be a range [low, high], got {getattr(self, name)}")
            object.__setattr__(self, name, value)
        if not 2 <= self.min_bands <= self.max_bands:
            raise ConfigError(f"sensor simulator needs 2 <= min_bands <= max_bands, got {self.min_bands}, "
                              f"{self.max_bands}")
        checks = {"fwhm_nm": self.fwhm_nm[0] > 0, "snr": self.snr[0] > 0, "scale": self.scale[0] > 0,
                  "min_span_nm": self.min_span_nm > 0, "max_endmembers": self.max_endmembers >= 1,
                  "dirichlet_alpha": self.dirichlet_alpha > 0, "centre_jitter": 0 <= self.centre_jitter <= 0.5,
                  "vnir_probability": 0 <= self.vnir_probability <= 1,
                  "shuffle_probability": 0 <= self.shuffle_probability <= 1,
                  "fwhm_band_spread": 0 <= self.fwhm_band_spread < 1}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"sensor simulator options out of range: {', '.join(bad)} (see SensorSimConfig)")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SensorSimConfig:
        """The defaults with ``options`` (a recipe's ``source_options``) applied; unknown keys are an error."""
        reject_unknown_keys(options, (f.name for f in dataclasses.fields(cls)), "the sensor simulator's options")
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True, eq=False)
class VirtualSensor:
    """One drawn sensor: band centres and FWHM in delivery order, and its resampling matrix ``(B, L)``."""

    centres_nm: np.ndarray
    fwhm_nm: np.ndarray
    weights: np.ndarray

    def resample(self, spectra: np.ndarray) -> np.ndarray:
        """Band values ``(N, B)`` of library spectra ``(N, L)``."""
        return spectra @ self.weights.T


def _segments(grid_nm: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges ``[i, j]`` of the grid's gap-free runs (a step above 1.5x the median spacing is a gap)."""
    step = np.diff(grid_nm)
    breaks = np.flatnonzero(step > 1.5 * np.median(step))
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(grid_nm) - 1]])
    return list(zip(starts.tolist(), ends.tolist()))


def covered(grid_nm: np.ndarray, wavelengths_nm: np.ndarray) -> np.ndarray:
    """Whether each wavelength lies inside a gap-free run of the grid."""
    inside = np.zeros(len(wavelengths_nm), dtype=bool)
    for i, j in _segments(grid_nm):
        inside |= (wavelengths_nm >= grid_nm[i]) & (wavelengths_nm <= grid_nm[j])
    return inside


def srf_matrix(grid_nm: np.ndarray, centres_nm: np.ndarray, fwhm_nm: np.ndarray) -> np.ndarray:
    """Normalised resampling weights ``(B, L)``: Gaussian SRFs integrated against the linear interpolant.

    On a grid interval ``[a, b]`` the interpolant is ``s_a (b - x) / (b - a) + s_b (x - a) / (b - a)``; with the SRF
    a normal density of mean ``c`` and sd ``sigma``, ``I0 = P(a < x < b)`` and ``I1 = E[(x - c) 1(a < x < b)] =
    sigma (phi(z_a) - phi(z_b))`` give node ``a`` the weight ``((b - c) I0 - I1) / (b - a)`` and node ``b``
    ``((c - a) I0 + I1) / (b - a)``. Intervals across a gap of the grid are skipped.
    """
    grid = np.asarray(grid_nm, dtype=np.float64)
    centres = np.asarray(centres_nm, dtype=np.float64)[:, None]
    sigma = (np.asarray(fwhm_nm, dtype=np.float64) * FWHM_TO_SIGMA)[:, None]
    left = np.concatenate([np.arange(i, j) for i, j in _segments(grid)])
    a, b = grid[left][None], grid[left + 1][None]
    za, zb = (a - centres) / sigma, (b - centres) / sigma
    i0 = np.where(za > 0, ndtr(-za) - ndtr(-zb), ndtr(zb) - ndtr(za))  # no 1 - 1 cancellation in the right tail
    i1 = sigma * (np.exp(-0.5 * za**2) - np.exp(-0.5 * zb**2)) / np.sqrt(2.0 * np.pi)
    weights = np.zeros((len(centres), len(grid)))
    np.add.at(weights.T, left, (((b - centres) * i0 - i1) / (b - a)).T)
    np.add.at(weights.T, left + 1, (((centres - a) * i0 + i1) / (b - a)).T)
    weights = np.maximum(weights, 0.0)  # the terms cancel far out in the tails: clip rounding below zero
    total = weights.sum(axis=1, keepdims=True)
    if np.any(total <= 1e-12):
        raise ConfigError("a band's spectral response lies outside the library's wavelength coverage")
    return weights / total


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float], size: Any = None) -> Any:
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), size))


def _draw_centres(rng: np.random.Generator, grid_nm: np.ndarray, config: SensorSimConfig) -> np.ndarray:
    full = (float(grid_nm[0]), float(grid_nm[-1]))
    for _ in range(_MAX_TRIES):
        low, high = full
        if rng.random() < config.vnir_probability:
            low, high = max(low, config.vnir_range_nm[0]), min(high, config.vnir_range_nm[1])
            if high <= low:
                raise ConfigError(f"vnir_range_nm {list(config.vnir_range_nm)} lies outside the library's "
                                  f"{full[0]:g}-{full[1]:g} nm")
        span = rng.uniform(min(config.min_span_nm, high - low), high - low)
        start = rng.uniform(low, high - span)
        count = int(rng.integers(config.min_bands, config.max_bands + 1))
        centres = np.linspace(start, start + span, count)
        jitter = rng.uniform(-config.centre_jitter, config.centre_jitter, count) * span / (count - 1)
        centres = np.clip(centres + jitter, start, start + span)
        centres = centres[covered(grid_nm, centres)]  # no band where the library has no data
        if len(centres) >= config.min_bands:
            return centres
    raise ConfigError(f"could not place {config.min_bands} bands inside the library's coverage in {_MAX_TRIES} "
                      "tries; lower min_bands or widen min_span_nm")


def draw_sensor(rng: np.random.Generator, grid_nm: np.ndarray, config: SensorSimConfig) -> VirtualSensor:
    """A random sensor over the library grid ``grid_nm`` (see the module docstring for the draws)."""
    centres = _draw_centres(rng, np.asarray(grid_nm, dtype=np.float64), config)
    spread = rng.uniform(1 - config.fwhm_band_spread, 1 + config.fwhm_band_spread, len(centres))
    fwhm = np.clip(_log_uniform(rng, config.fwhm_nm) * spread, *config.fwhm_nm)
    if rng.random() < config.shuffle_probability:
        order = rng.permutation(len(centres))
        centres, fwhm = centres[order], fwhm[order]
    return VirtualSensor(centres, fwhm, srf_matrix(grid_nm, centres, fwhm))


def mix_spectra(
    spectra: np.ndarray, rng: np.random.Generator, count: int, config: SensorSimConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` linear mixtures of library ``spectra`` ``(N, L)``: mixtures ``(count, L)``, the indices
    ``(count, M)`` and weights ``(count, M)`` (zero beyond each pixel's drawn number of endmembers)."""
    m = config.max_endmembers
    index = rng.integers(0, len(spectra), (count, m))
    used = rng.integers(1, m + 1, count)
    gamma = rng.gamma(config.dirichlet_alpha, size=(count, m)) * (np.arange(m)[None] < used[:, None])
    weights = gamma / gamma.sum(axis=1, keepdims=True)  # Dirichlet(alpha) over the used endmembers
    mixtures = np.einsum("nm,nml->nl", weights, spectra[index])
    return mixtures, index, weights


def simulate_batch(
    spectra: np.ndarray, grid_nm: np.ndarray, rng: np.random.Generator, count: int, config: SensorSimConfig
) -> tuple[np.ndarray, VirtualSensor]:
    """``count`` simulated pixels ``(count, B)`` float32 as one random sensor sees them, and the sensor."""
    sensor = draw_sensor(rng, grid_nm, config)
    mixtures, _, _ = mix_spectra(spectra, rng, count, config)
    values = sensor.resample(mixtures)
    scale = rng.uniform(*config.scale, (count, 1))
    slope = rng.uniform(*config.slope_per_um, (count, 1))
    tilt = np.maximum(1.0 + slope * (sensor.centres_nm - sensor.centres_nm.mean())[None] / 1000.0, 0.0)
    values = values * scale * tilt
    sigma = np.abs(values).mean(axis=1, keepdims=True) / _log_uniform(rng, config.snr)
    values = values + rng.standard_normal(values.shape) * sigma
    return values.astype(np.float32), sensor
