"""Pixel-level sampling: per-class random orders, spatial blocks and the guard band around training regions.

Every random choice is made by sorting on one uniform key per pixel (drawn once per image, in raster order),
so the k-shot and fraction splits of one seed are nested: the first ``k`` pixels of a class in key order
are the first ``k`` of any larger ``k``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "ClassOrder",
    "ceil_share",
    "class_orders",
    "draw_keys",
    "block_regions",
    "guard_band",
    "masks_from_refs",
    "merge_orders",
]


@dataclass(frozen=True)
class ClassOrder:
    """The candidate pixels of one class, in random (key) order.

    Attributes:
        image: index of each pixel's image in the list the order was built from.
        flat: each pixel's raster index within its image.
        key: each pixel's random key (ascending).
    """

    image: np.ndarray
    flat: np.ndarray
    key: np.ndarray

    def __len__(self) -> int:
        return len(self.flat)

    def take(self, start: int, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(image, flat)`` of the pixels ranked ``start`` to ``stop`` (exclusive)."""
        return self.image[start:stop], self.flat[start:stop]


def ceil_share(p: float, n: int) -> int:
    """``ceil(p * n)`` that ignores floating-point fuzz (``0.07 * 100`` is ``7.000000000000001``, not 8)."""
    return math.ceil(round(p * n, 9))


def draw_keys(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """One uniform key per pixel of an image, raster order; drawn for every pixel so keys never depend on labels."""
    return rng.random(shape[0] * shape[1])


def class_orders(
    labels: Sequence[np.ndarray],
    keys: Sequence[np.ndarray],
    *,
    num_classes: int,
    ignore_index: int,
    allowed: Sequence[np.ndarray] | None = None,
    keep: int | None = None,
) -> list[ClassOrder]:
    """Rank the labelled (and allowed) pixels of each class by their keys, pooled over images.

    Args:
        labels: ``(H, W)`` label maps.
        keys: per image, one key per pixel in raster order (see :func:`draw_keys`).
        num_classes: K; one order per class, empty when a class has no candidate pixel.
        ignore_index: label of unlabelled pixels, never a candidate.
        allowed: optional per-image bool masks restricting the candidates (e.g. a training region).
        keep: if given, keep only the ``keep`` first pixels of each class; lets a caller stream many images
            while holding ``O(keep * K)`` candidates.
    """
    parts: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(num_classes)]
    for i, (lab, key) in enumerate(zip(labels, keys)):
        flat_labels = lab.ravel()
        ok = flat_labels != ignore_index
        if allowed is not None:
            ok &= allowed[i].ravel()
        idx = np.flatnonzero(ok)
        cls, k = flat_labels[idx], key[idx]
        order = np.lexsort((k, cls))  # by class, then by key within a class
        idx, cls, k = idx[order], cls[order], k[order]
        bounds = np.searchsorted(cls, np.arange(num_classes + 1))
        for c in range(num_classes):
            lo, hi = bounds[c], bounds[c + 1]
            if keep is not None:
                hi = min(hi, lo + keep)
            if hi > lo:
                parts[c].append((np.full(hi - lo, i, dtype=np.int64), idx[lo:hi], k[lo:hi]))
    return [_merge(p, keep) for p in parts]


def _merge(pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]], keep: int | None) -> ClassOrder:
    return merge_orders([ClassOrder(*piece) for piece in pieces], keep)


def merge_orders(orders: Sequence[ClassOrder], keep: int | None = None) -> ClassOrder:
    """One order from several (e.g. per image), re-ranked by key and cut to ``keep`` pixels."""
    if not orders:
        empty = np.zeros(0, dtype=np.int64)
        return ClassOrder(empty, empty, np.zeros(0))
    image, flat, key = (np.concatenate(a) for a in zip(*((o.image, o.flat, o.key) for o in orders)))
    top = np.argsort(key, kind="stable")[:keep]
    return ClassOrder(image[top], flat[top], key[top])


def masks_from_refs(
    shapes: Sequence[tuple[int, int]], refs: Sequence[tuple[np.ndarray, np.ndarray]]
) -> list[np.ndarray]:
    """Per-image bool masks holding the referenced ``(image, flat)`` pixels."""
    masks = [np.zeros(h * w, dtype=bool) for h, w in shapes]
    for image, flat in refs:
        for i in np.unique(image):
            masks[i][flat[image == i]] = True
    return [m.reshape(shape) for m, shape in zip(masks, shapes)]


def block_regions(
    labels: Sequence[np.ndarray],
    *,
    num_classes: int,
    ignore_index: int,
    block_size: int,
    margin: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Tile each image into square blocks and draw about half of the labelled blocks as the training region.

    Blocks are what keep train and test apart: neighbouring pixels of a hyperspectral scene are strongly
    correlated, so random pixel splits overstate accuracy (Nalepa et al., IEEE GRSL 2019). The draw is
    stratified: for each class, rarest first, a block holding it goes to the training region and, if the class
    lives in more than one block, another to the test region, preferring one where the class has pixels more
    than ``margin`` from the block edge (those survive the guard band whatever the neighbours are). The
    remaining blocks are dealt in random order to whichever region has fewer labelled pixels.

    Returns:
        Per image, a bool ``(H, W)`` mask of the training region.
    """
    block_maps, counts, cores = [], [], []
    offset = 0
    for lab in labels:
        h, w = lab.shape
        rows, cols = math.ceil(h / block_size), math.ceil(w / block_size)
        r, c = np.arange(h)[:, None], np.arange(w)[None, :]
        ids = (r // block_size) * cols + c // block_size
        inner = (_inside(r, block_size, margin)) & (_inside(c, block_size, margin))
        valid = lab != ignore_index
        size = rows * cols * num_classes
        flat = ids * num_classes + np.where(valid, lab, 0)
        counts.append(np.bincount(flat[valid], minlength=size).reshape(rows * cols, num_classes))
        cores.append(np.bincount(flat[valid & inner], minlength=size).reshape(rows * cols, num_classes))
        block_maps.append(ids + offset)
        offset += rows * cols
    is_train = _assign_blocks(np.concatenate(counts), np.concatenate(cores), rng)
    return [is_train[ids] for ids in block_maps]


def _inside(index: np.ndarray, block_size: int, margin: int) -> np.ndarray:
    """Positions more than ``margin`` from both edges of their block along one axis."""
    offset = index % block_size
    return (offset >= margin) & (offset < block_size - margin)


def _assign_blocks(counts: np.ndarray, cores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bool per block: in the training region.

    Args:
        counts: ``(blocks, K)`` labelled pixels per class.
        cores: the same, counting only pixels away from the block edges.
        rng: the block stream.
    """
    order = rng.permutation(len(counts))
    pixels = counts.sum(axis=1)
    order = order[pixels[order] > 0]
    present, core = counts > 0, cores > 0
    region = np.full(len(counts), -1)  # 1 train, 0 test, -1 not yet dealt

    def claim(target: int, holds: np.ndarray) -> bool:
        free = order[(region[order] == -1) & holds[order]]
        if len(free):
            region[free[0]] = target
        return bool(len(free))

    for c in np.argsort(present.sum(axis=0), kind="stable"):
        if not present[region == 1, c].any():
            claim(1, present[:, c])
        if not core[region == 0, c].any() and not claim(0, core[:, c]) and not present[region == 0, c].any():
            claim(0, present[:, c])
    totals = {t: int(pixels[region == t].sum()) for t in (0, 1)}
    for b in order:
        if region[b] == -1:
            target = 1 if totals[1] <= totals[0] else 0
            region[b] = target
            totals[target] += int(pixels[b])
    return region == 1


def guard_band(region: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within Chebyshev distance ``radius`` of ``region`` (the region included).

    A square maximum filter of side ``2 * radius + 1`` is exactly a Chebyshev-ball dilation, and separable,
    so it costs a few milliseconds on a 610 x 340 scene.
    """
    if radius <= 0:
        return region.copy()
    grown = ndimage.maximum_filter(region.astype(np.uint8), size=2 * radius + 1, mode="constant", cval=0)
    return grown.astype(bool)
