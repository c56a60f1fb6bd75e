"""The label conventions of the scene datasets: their raw-id map and default class palettes.

Remapping raw ids itself is shared with every reader (:mod:`hsbench.data.labels`).
"""

from __future__ import annotations

import colorsys

from hsbench.data.labels import IGNORE_INDEX

__all__ = ["default_palette", "scene_label_map"]

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
