"""Rasterising procedural layouts: objects painted onto a pixel grid, plus the per-pixel maps renderers need.

A layout paints objects far to near (painter's algorithm). Each object has a *part* (what it is in the scene,
mapped to a class by each dataset), a *material* and optionally a second material: every pixel of an object is
a mixture of two endmembers with a per-pixel weight (``mix``), which gives texture in the spectral domain
(worn lane paint showing asphalt, soil between crop rows, haze near the horizon). The ``shadow`` map holds the
fraction of direct sunlight blocked at each pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = ["Scene", "Canvas", "smooth_noise"]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length about ``sigma_px``."""
    field = gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return field / max(float(field.std()), 1e-12)


@dataclass(frozen=True)
class Scene:
    """A rasterised layout, before any spectrum is drawn.

    Attributes:
        object_map: ``(H, W)`` int32 object index of every pixel.
        parts: per object, its part name (datasets map parts to classes).
        materials: per object, the material of its first endmember.
        alternates: per object, the material of its second endmember, or ``None`` for a perturbed copy of the
            first.
        mix: ``(H, W)`` weight of the second endmember, 0..1.
        shadow: ``(H, W)`` fraction of direct sunlight blocked, 0..1.
    """

    object_map: np.ndarray
    parts: tuple[str, ...]
    materials: tuple[str, ...]
    alternates: tuple[str | None, ...]
    mix: np.ndarray
    shadow: np.ndarray


class Canvas:
    """A pixel grid that layouts paint objects and shadows onto.

    Args:
        height: rows.
        width: columns.
        rng: draws the default endmember-mixing field.
    """

    def __init__(self, height: int, width: int, rng: np.random.Generator) -> None:
        self.height, self.width = height, width
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
        self.object_map = np.full((height, width), -1, dtype=np.int32)
        self.mix = np.clip(0.5 + 0.35 * smooth_noise(rng, (height, width), 2.0), 0.0, 1.0)
        self.shadow = np.zeros((height, width))
        self._parts: list[str] = []
        self._materials: list[str] = []
        self._alternates: list[str | None] = []

    @property
    def num_objects(self) -> int:
        """Objects declared so far; indices of later objects are at least this (to select "what came after")."""
        return len(self._parts)

    def add(self, part: str, material: str, alternate: str | None = None) -> int:
        """Declare an object; returns its index for :meth:`paint`."""
        self._parts.append(part)
        self._materials.append(material)
        self._alternates.append(alternate)
        return len(self._parts) - 1

    def paint(self, mask: np.ndarray, obj: int, mix: np.ndarray | float | None = None) -> None:
        """Paint ``obj`` over ``mask``; ``mix`` optionally overrides the endmember weight there.

        Painting clears the shadow under ``mask``: a shadow cast on the ground before a nearer object was painted
        in front of it does not fall on that object.
        """
        self.object_map[mask] = obj
        self.shadow[mask] = 0.0
        if mix is not None:
            self.mix[mask] = mix[mask] if isinstance(mix, np.ndarray) else mix

    def draw(self, mask: np.ndarray, part: str, material: str, alternate: str | None = None) -> int:
        """Declare and paint an object in one step (most objects)."""
        obj = self.add(part, material, alternate)
        self.paint(mask, obj)
        return obj

    def parts_mask(self, parts: tuple[str, ...]) -> np.ndarray:
        """Pixels currently showing an object whose part is one of ``parts``."""
        wanted = np.array([p in parts for p in self._parts] + [False])
        return wanted[self.object_map]

    def cast_shadow(self, mask: np.ndarray, strength: np.ndarray | float = 1.0, onto: tuple[str, ...] = ()) -> None:
        """Block direct sun over ``mask`` (only on pixels of the ``onto`` parts when given)."""
        if onto:
            mask = mask & self.parts_mask(onto)
        self.shadow = np.where(mask, np.maximum(self.shadow, strength), self.shadow)

    def scene(self, *, unshaded: tuple[str, ...] = (), soften_px: float = 0.6) -> Scene:
        """Freeze the canvas; shadow edges are softened (penumbra) and removed from ``unshaded`` parts."""
        if (self.object_map < 0).any():
            raise RuntimeError(f"layout left {int((self.object_map < 0).sum())} pixels unpainted")
        shadow = gaussian_filter(self.shadow, soften_px, mode="nearest") if soften_px > 0 else self.shadow
        if unshaded:
            shadow = np.where(self.parts_mask(unshaded), 0.0, shadow)
        return Scene(
            self.object_map.copy(),
            tuple(self._parts),
            tuple(self._materials),
            tuple(self._alternates),
            self.mix.copy(),
            np.clip(shadow, 0.0, 1.0),
        )
