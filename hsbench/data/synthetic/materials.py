"""A library of material spectra with per-object variability, on the fine grid of :mod:`.spectra`.

Every material is a function that draws one *instance* (one car, one lawn, one facade) from its own random
parameters, so two objects of a class differ and classes overlap partially, as in real scenes. The shapes
follow textbook spectroscopy, written as smooth functions (no measured tables are copied):

* green vegetation: chlorophyll absorption in the blue and near 675 nm, a green peak near 555 nm, the red edge
  (a steep rise between about 690 and 740 nm), a high near-infrared plateau from leaf cell scattering and a
  weak liquid-water band near 970 nm; senescence lowers chlorophyll and raises red reflectance;
* soils, bricks and roof tiles: a rising visible slope from iron-oxide charge transfer and a broad ferric
  crystal-field dip near 870-900 nm;
* asphalt: dark and slowly rising, lighter and flatter with age;
* paints: pigments separate colours in the visible, but most become transparent in the near infrared where
  the binder and primer dominate, so colours converge there (carbon black is the exception);
* bare metals: flat and partly specular (aluminium has its interband dip near 830 nm);
* glass: a dark interior seen through a green-tinted pane (Fe2+ absorption towards 1000 nm) plus Fresnel
  reflection of the sky and of the surroundings;
* water: a weak green-yellow peak, absorbing above 700 nm;
* skin: melanin absorption falling with wavelength and the haemoglobin double dip at 542 / 577 nm.

A :class:`Reflectance` is a Lambertian part (multiplied by the illumination) and a specular part (a fraction of
the sky radiance reflected into the sensor: gloss, glass, water, metal). Sky itself is pure "specular": its
radiance is the sky radiance of :mod:`.illumination`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from hsbench.data.synthetic.spectra import FINE_WAVELENGTHS_NM as WL
from hsbench.data.synthetic.spectra import gaussian_band, logistic, normalised_position

__all__ = ["Reflectance", "Material", "MATERIALS", "draw_reflectance"]

_X = normalised_position(WL)


@dataclass(frozen=True)
class Reflectance:
    """One material instance.

    Attributes:
        diffuse: ``(F,)`` Lambertian reflectance on the fine grid, multiplied by the illumination.
        specular: fraction of the sky radiance reflected towards the sensor.
    """

    diffuse: np.ndarray
    specular: float


@dataclass(frozen=True)
class Material:
    """A material: how to draw an instance, and how much it varies within one object.

    Attributes:
        name: library key, used by layouts.
        draw: ``draw(rng) -> Reflectance`` for one object.
        texture: relative standard deviation of per-pixel brightness inside an object (leaf clumping, folds,
            aggregate, highlights).
        variability: strength of the smooth spectral difference between an object's two endmembers.
    """

    name: str
    draw: Callable[[np.random.Generator], Reflectance]
    texture: float
    variability: float


MATERIALS: dict[str, Material] = {}


def _material(name: str, *, texture: float, variability: float = 0.06) -> Callable:
    def register(fn: Callable[[np.random.Generator], Reflectance]) -> Callable:
        if name in MATERIALS:
            raise ValueError(f"material {name!r} defined twice")
        MATERIALS[name] = Material(name, fn, texture, variability)
        return fn

    return register


def draw_reflectance(name: str, rng: np.random.Generator) -> Reflectance:
    """Draw one instance of the named material."""
    return MATERIALS[name].draw(rng)


def _flat(level: float) -> np.ndarray:
    return np.full_like(WL, level)


# --- vegetation -----------------------------------------------------------------------------------------------


_Range = tuple[float, float]
_CANOPIES: dict[str, tuple[_Range, _Range, _Range, _Range, _Range, float, float]] = {
    # name: chlorophyll, NIR plateau, red-edge centre (nm), green peak, dryness; texture, variability.
    # Grass: bright green peak, edge at shorter wavelengths; tree crowns: darker (crown shadowing), later edge.
    "grass": ((0.55, 1.0), (0.36, 0.55), (700.0, 714.0), (0.06, 0.13), (0.0, 0.3), 0.2, 0.12),
    "tree": ((0.7, 1.0), (0.26, 0.48), (706.0, 722.0), (0.03, 0.09), (0.0, 0.12), 0.3, 0.12),
    "crop": ((0.6, 1.0), (0.42, 0.62), (702.0, 718.0), (0.06, 0.12), (0.0, 0.2), 0.15, 0.1),
    "dry_grass": ((0.05, 0.45), (0.24, 0.38), (695.0, 712.0), (0.03, 0.07), (0.4, 1.0), 0.2, 0.12),
}


def _canopy(rng: np.random.Generator, ranges: tuple[_Range, ...]) -> Reflectance:
    """Vegetation reflectance from five leaf / canopy parameters, each drawn from its range (see the table)."""
    chl, plateau, edge, peak, dry = (rng.uniform(*r) for r in ranges)
    visible = 0.04 + peak * gaussian_band(WL, 555.0, 90.0) + 0.2 * dry * logistic(WL, 575.0, 20.0)
    visible *= (1.0 - 0.45 * chl * gaussian_band(WL, 675.0, 45.0)) * (1.0 - 0.35 * chl * gaussian_band(WL, 440.0, 70.0))
    water = 1.0 - rng.uniform(0.08, 0.2) * gaussian_band(WL, 970.0, 60.0)
    step = logistic(WL, edge, 9.0 + 10.0 * dry)
    return Reflectance(visible * (1.0 - step) + plateau * water * (1.0 + 0.04 * _X) * step, 0.0)


def _register_canopies() -> None:
    """One vegetation material per row of the table."""
    for name, (*ranges, texture, variability) in _CANOPIES.items():
        _material(name, texture=texture, variability=variability)(partial(_canopy, ranges=tuple(ranges)))


_register_canopies()


@_material("bark", texture=0.2)
def _bark(rng: np.random.Generator) -> Reflectance:
    low, high = rng.uniform(0.04, 0.08), rng.uniform(0.18, 0.35)
    return Reflectance(low + (high - low) * logistic(WL, rng.uniform(600.0, 680.0), 60.0), 0.0)


# --- ground and construction materials ------------------------------------------------------------------------


@_material("soil", texture=0.12, variability=0.08)
def _soil(rng: np.random.Generator) -> Reflectance:
    level, iron, moisture = rng.uniform(0.12, 0.34), rng.uniform(0.1, 1.0), rng.uniform(0.5, 1.0)
    shape = (0.3 + 0.7 * logistic(WL, 520.0 + 40.0 * (1.0 - iron), 50.0)) * (1.0 + 0.15 * _X)
    shape *= 1.0 - 0.12 * iron * gaussian_band(WL, 880.0, 130.0)
    shape *= 1.0 - 0.1 * (1.0 - moisture) * gaussian_band(WL, 970.0, 60.0)
    return Reflectance(level * moisture * shape, 0.0)


def _asphalt_diffuse(rng: np.random.Generator) -> np.ndarray:
    age = rng.uniform(0.0, 1.0)
    level = 0.045 + 0.085 * age + rng.normal(0.0, 0.008)
    rise = rng.uniform(0.25, 0.7) * (1.0 - 0.6 * age)
    aggregate = 0.02 * age * logistic(WL, 550.0, 50.0)
    return level * (1.0 + rise * (WL - 400.0) / 600.0) + aggregate


@_material("asphalt", texture=0.1)
def _asphalt(rng: np.random.Generator) -> Reflectance:
    return Reflectance(_asphalt_diffuse(rng), rng.uniform(0.0, 0.02))


@_material("concrete", texture=0.08)
def _concrete(rng: np.random.Generator) -> Reflectance:
    level = rng.uniform(0.2, 0.42)
    return Reflectance(level * (0.78 + 0.22 * logistic(WL, 470.0, 35.0)) * (1.0 + rng.uniform(0.0, 0.12) * _X), 0.0)


@_material("stone", texture=0.15)
def _stone(rng: np.random.Generator) -> Reflectance:
    level, warmth = rng.uniform(0.14, 0.34), rng.uniform(0.0, 1.0)
    shape = (0.7 + 0.3 * logistic(WL, 520.0, 50.0)) * (1.0 + 0.25 * warmth * logistic(WL, 560.0, 40.0))
    return Reflectance(level * shape * (1.0 - 0.06 * warmth * gaussian_band(WL, 880.0, 120.0)), 0.0)


def _brick_diffuse(rng: np.random.Generator, nir: tuple[float, float]) -> np.ndarray:
    low, high, edge = rng.uniform(0.05, 0.11), rng.uniform(*nir), rng.uniform(565.0, 595.0)
    ferric = 1.0 - rng.uniform(0.05, 0.12) * gaussian_band(WL, 870.0, 110.0)
    return (low + (high - low) * logistic(WL, edge, 22.0)) * ferric


@_material("brick", texture=0.12)
def _brick(rng: np.random.Generator) -> Reflectance:
    return Reflectance(_brick_diffuse(rng, (0.26, 0.44)), 0.0)


@_material("facade_paint", texture=0.05)
def _facade_paint(rng: np.random.Generator) -> Reflectance:
    """Painted plaster: light tints in the visible, pigment-transparent (bright) in the near infrared."""
    base, tint, hue = rng.uniform(0.4, 0.8), rng.uniform(0.0, 0.35), rng.uniform(500.0, 640.0)
    visible = base * (1.0 - tint * (1.0 - gaussian_band(WL, hue, 220.0))) * logistic(WL, 410.0, 8.0)
    step = logistic(WL, 700.0, 30.0)
    return Reflectance(visible * (1.0 - step) + base * rng.uniform(0.85, 1.0) * step, 0.0)


@_material("roof_tile", texture=0.12)
def _roof_tile(rng: np.random.Generator) -> Reflectance:
    kind = rng.choice(3, p=[0.55, 0.3, 0.15])
    if kind == 0:  # terracotta (fired clay: iron oxides, like brick but often redder)
        return Reflectance(_brick_diffuse(rng, (0.32, 0.5)), 0.01)
    if kind == 1:  # concrete tile, grey
        return Reflectance(_flat(rng.uniform(0.1, 0.22)) * (1.0 + 0.05 * _X), 0.01)
    return Reflectance(_flat(rng.uniform(0.05, 0.1)), 0.03)  # slate


# --- paints, metals, glass, rubber -----------------------------------------------------------------------------

_CAR_COLOURS = ("white", "black", "grey", "red", "blue", "green", "yellow")
_CAR_WEIGHTS = (0.26, 0.2, 0.26, 0.1, 0.1, 0.04, 0.04)
_SIGN_COLOURS = ("white", "red", "blue", "yellow", "green")
_SIGN_WEIGHTS = (0.3, 0.25, 0.25, 0.1, 0.1)


def _pigment(rng: np.random.Generator, colour: str) -> np.ndarray:
    """A paint's reflectance: the pigment's visible shape, then the shared near-infrared level of binder/primer."""
    nir = rng.uniform(0.42, 0.62)
    if colour == "white":
        level = rng.uniform(0.65, 0.85)
        return level * logistic(WL, 410.0, 8.0) * (1.0 - 0.05 * _X)
    if colour == "black":
        visible, nir = _flat(rng.uniform(0.03, 0.06)), rng.uniform(0.04, 0.35)
    elif colour == "grey":
        level = rng.uniform(0.18, 0.5)
        visible, nir = level * (0.9 + 0.1 * logistic(WL, 450.0, 30.0)), level * rng.uniform(0.9, 1.1)
    elif colour == "red":
        visible = 0.05 + rng.uniform(0.45, 0.6) * logistic(WL, rng.uniform(588.0, 612.0), 12.0)
    elif colour == "blue":
        visible = 0.04 + rng.uniform(0.12, 0.3) * gaussian_band(WL, rng.uniform(450.0, 480.0), 80.0)
    elif colour == "green":
        visible = 0.04 + rng.uniform(0.1, 0.2) * gaussian_band(WL, rng.uniform(510.0, 540.0), 70.0)
    else:  # yellow
        visible = 0.06 + rng.uniform(0.55, 0.7) * logistic(WL, rng.uniform(500.0, 520.0), 12.0)
    step = logistic(WL, rng.uniform(690.0, 760.0), 20.0)
    return visible * (1.0 - step) + nir * step


def _paint(rng: np.random.Generator, colours: tuple[str, ...], weights: tuple[float, ...]) -> Reflectance:
    colour = colours[rng.choice(len(colours), p=weights)]
    return Reflectance(_pigment(rng, colour), rng.uniform(0.03, 0.08))


@_material("car_paint", texture=0.05, variability=0.04)
def _car_paint(rng: np.random.Generator) -> Reflectance:
    return _paint(rng, _CAR_COLOURS, _CAR_WEIGHTS)


@_material("sign_paint", texture=0.03, variability=0.04)
def _sign_paint(rng: np.random.Generator) -> Reflectance:
    return _paint(rng, _SIGN_COLOURS, _SIGN_WEIGHTS)


@_material("dark_paint", texture=0.05, variability=0.04)
def _dark_paint(rng: np.random.Generator) -> Reflectance:
    """Traffic-light housings and dark trim: black or dark grey."""
    return _paint(rng, ("black", "grey"), (0.7, 0.3))


@_material("bare_metal", texture=0.3, variability=0.05)
def _bare_metal(rng: np.random.Generator) -> Reflectance:
    kind = rng.choice(4)
    if kind == 0:  # aluminium: interband absorption near 830 nm
        total = rng.uniform(0.55, 0.75) * (1.0 - rng.uniform(0.08, 0.15) * gaussian_band(WL, 830.0, 110.0))
    elif kind == 1:  # galvanised steel
        total = rng.uniform(0.35, 0.55) * (1.0 + 0.05 * _X)
    elif kind == 2:  # stainless steel / chrome: slowly rising
        total = rng.uniform(0.45, 0.6) * (1.0 + 0.12 * _X)
    else:  # weathered steel
        total = rng.uniform(0.12, 0.25) * (1.0 + 0.3 * _X)
    diffuse_fraction = rng.uniform(0.35, 0.75)
    return Reflectance(total * diffuse_fraction, float(total.mean() * (1.0 - diffuse_fraction)))


@_material("glass", texture=0.3, variability=0.1)
def _glass(rng: np.random.Generator) -> Reflectance:
    """Interior through a tinted pane, plus the reflected surroundings (a tree or a building) and sky."""
    tint = 1.0 - rng.uniform(0.1, 0.4) * logistic(WL, 870.0, 70.0)
    interior = rng.uniform(0.015, 0.06) * tint**2
    surroundings = draw_reflectance(str(rng.choice(["tree", "concrete", "brick"])), rng).diffuse
    return Reflectance(interior + rng.uniform(0.0, 0.08) * surroundings, rng.uniform(0.05, 0.2))


@_material("rubber", texture=0.1)
def _rubber(rng: np.random.Generator) -> Reflectance:
    return Reflectance(_flat(rng.uniform(0.025, 0.05)) * (1.0 + 0.1 * _X), 0.01)


# --- road markings, water, sky ---------------------------------------------------------------------------------


@_material("lane_paint", texture=0.1, variability=0.05)
def _lane_paint(rng: np.random.Generator) -> Reflectance:
    """White road paint, worn: a fraction of the underlying asphalt shows through."""
    white = rng.uniform(0.5, 0.8) * logistic(WL, 410.0, 8.0) * (1.0 - 0.05 * _X)
    wear = rng.uniform(0.0, 0.35)
    return Reflectance((1.0 - wear) * white + wear * _asphalt_diffuse(rng), 0.02)


@_material("water", texture=0.1, variability=0.08)
def _water(rng: np.random.Generator) -> Reflectance:
    turbidity = rng.uniform(0.0, 1.0)
    algae = rng.uniform(0.0, 0.6) if rng.random() < 0.3 else 0.0
    body = 0.008 + (0.015 + 0.05 * turbidity) * gaussian_band(WL, 570.0 + 40.0 * turbidity, 120.0)
    body = body * (1.0 - 0.9 * logistic(WL, 715.0, 18.0)) + 0.01 * algae * gaussian_band(WL, 705.0, 20.0)
    return Reflectance(body + 0.003, rng.uniform(0.02, 0.06))


@_material("sky", texture=0.03, variability=0.04)
def _sky(rng: np.random.Generator) -> Reflectance:
    return Reflectance(_flat(0.0), rng.uniform(0.85, 1.15))


@_material("haze", texture=0.03, variability=0.04)
def _haze(rng: np.random.Generator) -> Reflectance:
    """Sky near the horizon: more aerosol scattering of sunlight (spectrally flat), less Rayleigh blue."""
    return Reflectance(_flat(rng.uniform(0.15, 0.45)), rng.uniform(0.5, 0.9))


@_material("cloud", texture=0.15, variability=0.04)
def _cloud(rng: np.random.Generator) -> Reflectance:
    return Reflectance(_flat(rng.uniform(0.5, 0.95)), rng.uniform(0.1, 0.3))


# --- people ----------------------------------------------------------------------------------------------------


@_material("skin", texture=0.1, variability=0.05)
def _skin(rng: np.random.Generator) -> Reflectance:
    melanin, plateau = rng.uniform(0.05, 1.0), rng.uniform(0.45, 0.62)
    haemoglobin = 1.0 - 0.2 * (gaussian_band(WL, 542.0, 18.0) + gaussian_band(WL, 577.0, 18.0))
    shape = (0.35 + 0.65 * logistic(WL, 590.0, 25.0)) * haemoglobin
    shape *= np.exp(-1.5 * melanin * np.exp(-(WL - 400.0) / 150.0)) * (1.0 - 0.1 * gaussian_band(WL, 970.0, 60.0))
    return Reflectance((plateau - 0.15 * melanin) * shape, 0.01)


@_material("clothing", texture=0.2, variability=0.08)
def _clothing(rng: np.random.Generator) -> Reflectance:
    """Dyed textile: a random hue; most dyes turn transparent in the near infrared (cotton shows through)."""
    hue, width = rng.uniform(420.0, 660.0), rng.uniform(60.0, 160.0)
    visible = rng.uniform(0.03, 0.25) + rng.uniform(0.0, 0.4) * gaussian_band(WL, hue, width)
    nir = rng.uniform(0.03, 0.15) if rng.random() < 0.2 else rng.uniform(0.25, 0.7)
    step = logistic(WL, rng.uniform(650.0, 780.0), 25.0)
    return Reflectance(visible * (1.0 - step) + nir * step, 0.0)


@_material("hair", texture=0.15)
def _hair(rng: np.random.Generator) -> Reflectance:
    return Reflectance(0.03 + rng.uniform(0.05, 0.3) * logistic(WL, 750.0, 100.0), 0.01)
