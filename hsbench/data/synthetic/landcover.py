"""Nadir land-cover scenes, in the spirit of airborne or spaceborne imaging spectrometers (the source domain).

A scene is a patchwork of parcels (an anisotropic Voronoi tessellation, so fields are elongated and share one
orientation as in real field systems): crop fields with rows (crop and soil mixed below the pixel scale),
meadows, bare or ploughed soil, forest with gaps between crowns, lakes, and built-up blocks (pavement, roofs,
gardens, small trees, parked cars). Roads and rivers cross the patchwork. In sun, buildings and trees cast
shadows along one direction. The materials are the same library the driving scenes use, which is what makes
pretraining on these scenes physically relevant to the driving sets.
"""

from __future__ import annotations

import numpy as np

from hsbench.data.synthetic.canvas import Canvas, Scene, smooth_noise

__all__ = ["aerial_scene", "AERIAL_PARTS"]

AERIAL_PARTS = (
    "water", "forest", "tree", "grassland", "lawn", "cropland", "bare_soil", "pavement", "roof", "road", "car",
)
"""Every part an aerial scene can contain."""

_COVERS = ("cropland", "grassland", "bare_soil", "forest", "water", "urban")
_COVER_WEIGHTS = (0.25, 0.18, 0.12, 0.18, 0.06, 0.21)
_ROOFS = ("roof_tile", "concrete", "bare_metal", "car_paint", "asphalt")
_ROOF_WEIGHTS = (0.45, 0.2, 0.15, 0.1, 0.1)


def _parcels(rng: np.random.Generator, canvas: Canvas) -> tuple[np.ndarray, float]:
    """Parcel index per pixel and the field-system orientation (radians)."""
    n = int(rng.integers(5, 12))
    angle, stretch = rng.uniform(0.0, np.pi), rng.uniform(1.0, 2.5)
    seeds = rng.uniform(-0.1, 1.1, size=(n, 2)) * (canvas.height, canvas.width)
    dy, dx = canvas.yy[None] - seeds[:, 0, None, None], canvas.xx[None] - seeds[:, 1, None, None]
    along, across = dx * np.cos(angle) + dy * np.sin(angle), -dx * np.sin(angle) + dy * np.cos(angle)
    return np.argmin(along**2 + (stretch * across) ** 2, axis=0), angle


def _stripes(canvas: Canvas, angle: float, period_px: float, phase: float) -> np.ndarray:
    """A sinusoid across rows at ``angle``: crop rows or plough furrows."""
    u = canvas.xx * np.cos(angle) + canvas.yy * np.sin(angle)
    return np.sin(2.0 * np.pi * u / period_px + phase)


def _field(rng: np.random.Generator, canvas: Canvas, mask: np.ndarray, angle: float, cover: str) -> None:
    if cover == "cropland":
        fraction = rng.uniform(0.3, 0.95)  # canopy cover; soil shows between the rows
        rows = _stripes(canvas, angle + rng.choice([0.0, np.pi / 2]), rng.uniform(1.5, 4.0), rng.uniform(0, 6.3))
        soil = np.clip((1.0 - fraction) * (1.0 + 0.6 * rows) + 0.1 * (canvas.mix - 0.5), 0.0, 1.0)
        canvas.paint(mask, canvas.add("cropland", "crop", "soil"), mix=soil)
    elif cover == "bare_soil":
        furrows = 0.5 + 0.4 * _stripes(canvas, angle, rng.uniform(1.5, 3.0), rng.uniform(0, 6.3))
        canvas.paint(mask, canvas.add("bare_soil", "soil", "soil"), mix=furrows if rng.random() < 0.5 else None)
    elif cover == "grassland":
        canvas.paint(mask, canvas.add("grassland", "grass", "dry_grass"), mix=canvas.mix * rng.uniform(0.1, 0.8))
    elif cover == "forest":
        canvas.draw(mask, "forest", "tree", "tree")
    elif cover == "water":
        centre = np.argwhere(mask)[rng.integers(mask.sum())] + 0.5
        radius = rng.uniform(4.0, 14.0)
        d = np.hypot(canvas.yy - centre[0], canvas.xx - centre[1]) / radius + 0.25 * smooth_noise(rng, mask.shape, 3.0)
        canvas.draw(mask, "grassland", "grass", "soil")
        canvas.draw(mask & (d < 1.0), "water", "water", "water")
    else:
        _urban_block(rng, canvas, mask)


def _urban_block(rng: np.random.Generator, canvas: Canvas, mask: np.ndarray) -> None:
    """Pavement with buildings, garden lawns, small trees and parked cars."""
    canvas.draw(mask, "pavement", str(rng.choice(["concrete", "asphalt"], p=[0.6, 0.4])), "concrete")
    free = mask.copy()
    inside = np.argwhere(mask)
    for _ in range(rng.integers(20, 40)):
        h, w = rng.integers(3, 12, size=2)
        y0, x0 = inside[rng.integers(len(inside))]
        rect = (canvas.yy >= y0) & (canvas.yy < y0 + h) & (canvas.xx >= x0) & (canvas.xx < x0 + w)
        halo = (canvas.yy >= y0 - 1) & (canvas.yy < y0 + h + 1) & (canvas.xx >= x0 - 1) & (canvas.xx < x0 + w + 1)
        if not free[halo].all():
            continue
        free &= ~halo
        kind = rng.random()
        if kind < 0.7:
            canvas.draw(rect, "roof", str(rng.choice(_ROOFS, p=_ROOF_WEIGHTS)))
        elif kind < 0.85:
            canvas.draw(rect, "lawn", "grass", "dry_grass")
        else:
            r = rng.uniform(1.0, 2.5)
            crown = np.hypot(canvas.yy - y0 - h / 2, canvas.xx - x0 - w / 2) < r
            canvas.draw(crown, "tree", "tree", "tree")
    for _ in range(rng.integers(0, 6)):
        y0, x0 = rng.integers(0, canvas.height - 2), rng.integers(0, canvas.width - 2)
        dy, dx = (1, 2) if rng.random() < 0.5 else (2, 1)
        car = (canvas.yy >= y0) & (canvas.yy < y0 + dy) & (canvas.xx >= x0) & (canvas.xx < x0 + dx)
        if free[car].all():
            canvas.draw(car, "car", "car_paint")


def _linear_feature(rng: np.random.Generator, canvas: Canvas, width_px: float, meander: float) -> np.ndarray:
    """A band across the image (a road when straight, a river when it meanders)."""
    angle = rng.uniform(0.0, np.pi)
    cy, cx = rng.uniform(0.2, 0.8) * canvas.height, rng.uniform(0.2, 0.8) * canvas.width
    along = (canvas.xx - cx) * np.cos(angle) + (canvas.yy - cy) * np.sin(angle)
    across = -(canvas.xx - cx) * np.sin(angle) + (canvas.yy - cy) * np.cos(angle)
    across = across - meander * np.sin(2 * np.pi * along / rng.uniform(20.0, 60.0) + rng.uniform(0, 6.3))
    return np.abs(across) < width_px / 2.0


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` moved by whole pixels, with empty (not wrapped) borders."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _sun_shadows(rng: np.random.Generator, canvas: Canvas) -> None:
    """Shadows of roofs and tree crowns on lower surfaces, all along one sun azimuth."""
    azimuth = rng.uniform(0.0, 2 * np.pi)
    direction = np.array([np.sin(azimuth), np.cos(azimuth)])
    low = ("water", "grassland", "lawn", "cropland", "bare_soil", "pavement", "road", "car")
    for parts, length in ((("roof",), rng.uniform(1.0, 3.5)), (("tree", "forest"), rng.uniform(0.8, 2.5))):
        tall = canvas.parts_mask(parts)
        shade = np.zeros_like(tall)
        for step in np.arange(1.0, length + 1e-9, 1.0):
            dy, dx = np.rint(direction * step).astype(int)
            shade |= _shift(tall, int(dy), int(dx))
        canvas.cast_shadow(shade & ~tall, 1.0, onto=low)
    forest = canvas.parts_mask(("forest",))
    gaps = np.clip(0.45 + 0.35 * smooth_noise(rng, forest.shape, 1.0), 0.0, 0.9)
    canvas.cast_shadow(forest, gaps)


def aerial_scene(rng: np.random.Generator, height: int, width: int, *, direct_sun: bool = True) -> Scene:
    """Lay out one nadir land-cover scene.

    Args:
        rng: the image's random stream.
        height: rows.
        width: columns.
        direct_sun: whether the sun is out (cast shadows and shadowed gaps in forest canopies).
    """
    canvas = Canvas(height, width, rng)
    parcels, angle = _parcels(rng, canvas)
    for k in np.unique(parcels):
        cover = _COVERS[rng.choice(len(_COVERS), p=_COVER_WEIGHTS)]
        _field(rng, canvas, parcels == k, angle, cover)
    if rng.random() < 0.25:
        river = _linear_feature(rng, canvas, rng.uniform(1.5, 4.0), rng.uniform(2.0, 8.0))
        canvas.draw(river, "water", "water", "water")
    for _ in range(rng.integers(1, 4)):
        road = _linear_feature(rng, canvas, rng.uniform(1.2, 3.5), 0.0)
        canvas.draw(road & ~canvas.parts_mask(("roof",)), "road", "asphalt")
    if direct_sun:
        _sun_shadows(rng, canvas)
    return canvas.scene(soften_px=0.4)
