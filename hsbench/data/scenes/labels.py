"""Shared helpers of the scene readers: raw label ids to harness ids, finite-value checks, class palettes."""

from __future__ import annotations

import colorsys
from collections.abc import Mapping

import numpy as np

from hsbench.errors import DataError

__all__ = ["IGNORE_INDEX", "check_finite", "default_palette", "remap_labels", "scene_label_map"]

IGNORE_INDEX = 255
_SHOWN_IDS = 10

# Distinct colours for the first classes of a map (hand-picked to stay apart on screen and in print); further
# classes get golden-angle hues.
_BASE_PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40),
    (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)


def scene_label_map(num_classes: int, ignore_index: int = IGNORE_INDEX) -> dict[int, int]:
    """The convention of the classic scene ground truths: raw 0 = unlabelled, raw ``1..K`` -> ``0..K-1``."""
    return {0: ignore_index, **{k: k - 1 for k in range(1, num_classes + 1)}}


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """``num_classes`` distinct RGB colours, the same for the same count."""
    colours = list(_BASE_PALETTE[:num_classes])
    for i in range(len(colours), num_classes):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 0.9)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colours)


def _as_integer_ids(raw: np.ndarray, source: str) -> np.ndarray:
    if raw.dtype.kind in "biu":
        return raw.astype(np.int64, copy=False)
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all():
            raise DataError(f"{source}: the label raster holds NaN or infinite values")
        ids = raw.astype(np.int64)
        if not np.array_equal(ids, raw):
            raise DataError(f"{source}: the label raster holds non-integer values; expected class ids")
        return ids
    raise DataError(f"{source}: label raster of type {raw.dtype}; expected integer class ids")


def remap_labels(raw: np.ndarray, label_map: Mapping[int, int], *, source: str) -> np.ndarray:
    """Raw dataset ids -> harness ids through ``label_map`` (which also maps the unlabelled id to the ignore index).

    A raw id missing from the map means the file is not the one the card describes (or the map is incomplete),
    so it is an error rather than silently unlabelled.

    Raises:
        DataError: non-integer labels, or ids the map does not know (listed with their pixel counts).
    """
    ids = _as_integer_ids(np.asarray(raw), source)
    values, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    unknown = [(int(v), int(n)) for v, n in zip(values, counts) if int(v) not in label_map]
    if unknown:
        shown = ", ".join(f"{v} ({n} px)" for v, n in unknown[:_SHOWN_IDS])
        more = f" and {len(unknown) - _SHOWN_IDS} more" if len(unknown) > _SHOWN_IDS else ""
        raise DataError(
            f"{source}: label ids {shown}{more} are not in the label map (known raw ids: "
            f"{', '.join(str(k) for k in sorted(label_map))})"
        )
    lut = np.array([label_map[int(v)] for v in values], dtype=np.int64)
    return lut[inverse].reshape(ids.shape)


def check_finite(cube: np.ndarray, source: str) -> None:
    """Raise a :class:`DataError` naming ``source`` when the cube holds NaN or infinite values."""
    finite = np.isfinite(cube)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise DataError(
            f"{source}: the cube holds {bad} NaN or infinite values; clean or mask them (fill with a valid value) "
            "before preparing"
        )
