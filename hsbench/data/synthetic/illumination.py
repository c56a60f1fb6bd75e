"""Per-image illumination: sun and sky, relative to the illumination the camera was calibrated under.

Cube values are reflectance times *relative* illumination: a white Lambertian panel in full sun under the
calibration light reads 1 in every band. An image's light differs from that reference by an overall scale
(time of day, exposure), a smooth spectral tilt (sun elevation and colour temperature: low sun is redder), and
a changed depth of the atmospheric absorptions (oxygen A band at 761 nm, water vapour near 720, 820 and 940 nm)
that a flat-field calibration leaves behind when humidity or air mass change. In a cast shadow only diffuse
skylight remains: weaker, and bluer because Rayleigh scattering grows towards short wavelengths. Overcast
images have no direct sun at all: light is diffuse, shadows are faint, and the sky is a bright, flat grey.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hsbench.data.synthetic.spectra import FINE_WAVELENGTHS_NM as WL
from hsbench.data.synthetic.spectra import gaussian_band, normalised_position

__all__ = ["LightingProfile", "Illumination", "draw_illumination"]

Range = tuple[float, float]


@dataclass(frozen=True)
class LightingProfile:
    """Ranges the per-image light is drawn from (one profile per dataset).

    Attributes:
        scale: overall brightness relative to the calibration light.
        tilt: change of log illumination from 700 to 1000 nm (positive: redder light).
        shade_level: skylight left in a cast shadow, as a fraction of full illumination at 550 nm.
        shade_blueness: power-law exponent of that skylight relative to full light (``lambda ** -p``).
        sky_level: sky radiance at 550 nm in the same units (a white panel in sun reads 1).
        sky_blueness: Rayleigh-like exponent of the sky radiance (4 for a pure Rayleigh sky).
        absorption: change of the atmospheric absorption depths relative to the calibration.
        overcast: probability that an image is overcast.
    """

    scale: Range
    tilt: Range
    shade_level: Range
    shade_blueness: Range
    sky_level: Range
    sky_blueness: Range
    absorption: Range
    overcast: float


@dataclass(frozen=True)
class Illumination:
    """The light of one image on the fine grid.

    Attributes:
        sunlit: illumination of a surface in the open.
        shaded: illumination of a surface in a cast shadow.
        sky: sky radiance (what a mirror pointing at the sky would read).
        overcast: whether the image has no direct sun (layouts then draw no cast shadows).
    """

    sunlit: np.ndarray
    shaded: np.ndarray
    sky: np.ndarray
    overcast: bool


def _atmosphere(depth_o2: float, depth_h2o: float) -> np.ndarray:
    """Relative transmission change from the oxygen A band and the water-vapour bands."""
    water = gaussian_band(WL, 940.0, 50.0) + 0.35 * gaussian_band(WL, 820.0, 30.0)
    water += 0.15 * gaussian_band(WL, 725.0, 20.0)
    return np.exp(-depth_o2 * gaussian_band(WL, 761.0, 8.0) - depth_h2o * water)


def draw_illumination(profile: LightingProfile, rng: np.random.Generator) -> Illumination:
    """Draw one image's light (always the same number of random draws, so streams stay aligned)."""
    scale, tilt = rng.uniform(*profile.scale), rng.uniform(*profile.tilt)
    shade_level, shade_blue = rng.uniform(*profile.shade_level), rng.uniform(*profile.shade_blueness)
    sky_level, sky_blue = rng.uniform(*profile.sky_level), rng.uniform(*profile.sky_blueness)
    atmosphere = _atmosphere(rng.uniform(*profile.absorption), rng.uniform(*profile.absorption))
    overcast = bool(rng.random() < profile.overcast)
    relative = WL / 550.0
    if overcast:
        diffuse = scale * rng.uniform(0.45, 0.75) * relative**-0.3 * atmosphere
        return Illumination(diffuse, diffuse * rng.uniform(0.5, 0.8), diffuse * rng.uniform(0.8, 1.2), True)
    sunlit = scale * np.exp(tilt * (normalised_position(WL) + 0.5)) * atmosphere
    shaded = sunlit * shade_level * relative**-shade_blue
    sky = scale * sky_level * relative**-sky_blue * atmosphere
    return Illumination(sunlit, shaded, sky, False)
