"""Band centres of the sensors behind the classic scene datasets, derived from published sensor facts.

The ``.mat`` files these datasets are distributed as carry no wavelengths, so the cards compute them here.
Hyperion's centres rest on the published calibrated-band endpoints; AVIRIS, ROSIS, CASI and the Samson camera
are *nominal*: evenly spaced over the documented range. A wavelength-aware model gets the right region of the
spectrum from them, not the exact centre; use a header's wavelengths (ENVI datasets) when you have one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "AVIRIS_CHANNELS",
    "PSEUDO_RGB_NM",
    "aviris_nominal_nm",
    "evenly_spaced_nm",
    "hyperion_nm",
    "kept_channels",
    "nearest_bands",
]

AVIRIS_CHANNELS = 224
PSEUDO_RGB_NM = (640.0, 550.0, 460.0)
"""Red, green and blue targets for pseudo-RGB renderings (the nearest band to each is used)."""

# AVIRIS anchors: the 220-band Indian Pines file spans 400-2500 nm, and its water-vapour band numbers are those of
# the 224-channel Salinas and Jasper Ridge files minus 4 (104 vs 108, 150 vs 154, 220 vs 224), so its first band is
# channel 5. Channels 5 and 224 at 400 and 2500 nm give 9.59 nm spacing, close to AVIRIS's ~10 nm.
_AVIRIS_ANCHORS = ((5, 400.0), (224, 2500.0))

# EO-1 Hyperion calibrated bands (USGS / NASA user guide): VNIR bands 8-57 span 426.82-925.41 nm, SWIR bands
# 77-224 span 912.45-2395.50 nm; bands 1-70 are on the VNIR array, 71-242 on the SWIR array.
_HYPERION_VNIR = ((8, 426.82), (57, 925.41))
_HYPERION_SWIR = ((77, 912.45), (224, 2395.50))
_HYPERION_LAST_VNIR, _HYPERION_BANDS = 70, 242


def _linear(channel: int, anchors: tuple[tuple[int, float], tuple[int, float]]) -> float:
    (c0, w0), (c1, w1) = anchors
    return w0 + (channel - c0) * (w1 - w0) / (c1 - c0)


def kept_channels(total: int, removed: Iterable[tuple[int, int] | int]) -> tuple[int, ...]:
    """1-based channel numbers of ``1..total`` that survive the removal of the given ranges (inclusive).

    Papers describe band removal in 1-based inclusive ranges ("[104-108], [150-163], 220"); keeping that form in
    the cards lets a reader check them against the paper.
    """
    drop: set[int] = set()
    for item in removed:
        lo, hi = (item, item) if isinstance(item, int) else item
        drop.update(range(lo, hi + 1))
    return tuple(c for c in range(1, total + 1) if c not in drop)


def aviris_nominal_nm(channels: Sequence[int]) -> tuple[float, ...]:
    """Nominal centres of 1-based AVIRIS channels: channel 5 at 400 nm, channel 224 at 2500 nm, evenly spaced.

    AVIRIS's four spectrometers have slightly different spacings, so true centres deviate most near their joins
    (about 650, 1250 and 1850 nm); one grid for every AVIRIS dataset keeps a channel at the same wavelength across
    Indian Pines, Salinas, KSC and Jasper Ridge.
    """
    bad = [c for c in channels if not 1 <= c <= AVIRIS_CHANNELS]
    if bad:
        raise ValueError(f"AVIRIS channels must be 1..{AVIRIS_CHANNELS}, got {bad[:5]}")
    return tuple(round(_linear(c, _AVIRIS_ANCHORS), 2) for c in channels)


def hyperion_nm(bands: Sequence[int]) -> tuple[float, ...]:
    """Centres of 1-based Hyperion bands, linear within each array between its published calibrated endpoints."""
    bad = [b for b in bands if not 1 <= b <= _HYPERION_BANDS]
    if bad:
        raise ValueError(f"Hyperion bands must be 1..{_HYPERION_BANDS}, got {bad[:5]}")
    return tuple(
        round(_linear(b, _HYPERION_VNIR if b <= _HYPERION_LAST_VNIR else _HYPERION_SWIR), 2) for b in bands
    )


def evenly_spaced_nm(first_nm: float, last_nm: float, count: int) -> tuple[float, ...]:
    """``count`` nominal centres from ``first_nm`` to ``last_nm`` inclusive."""
    return tuple(round(float(w), 2) for w in np.linspace(first_nm, last_nm, count))


def nearest_bands(
    wavelengths_nm: Sequence[float], targets_nm: Sequence[float] = PSEUDO_RGB_NM
) -> tuple[int, int, int]:
    """Cube-order indices of the bands nearest to each target (red, green, blue by default).

    Works on unsorted band orders; a sensor that does not reach a target simply gets its nearest band.
    """
    waves = np.asarray(wavelengths_nm, dtype=float)
    if waves.size == 0:
        raise ValueError("no bands to choose pseudo-RGB bands from")
    r, g, b = (int(np.argmin(np.abs(waves - t))) for t in targets_nm)
    return r, g, b
